"""nperf.tls: `nperf cert` writes a certificate OpenSSL's own tools accept, and every TLS
mistake in a worker file is one error line naming the file and the key, checked by
OpenSSL before anything starts."""
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from nperf import tls
from nperf.config import ConfigError, HttpConfig, load_worker
from tests.procs import run_nperf

HERE = Path(__file__).resolve().parent.parent      # tests/
SEED_SERVER = HERE / "seed_configs" / "memif" / "test4" / "s.json"


def openssl(*argv) -> str:
    return subprocess.run(["openssl", *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("cert")
    return tls.self_signed(str(d), ["10.1.0.1", "nperf.test"])


@pytest.fixture(scope="module")
def other_pair(tmp_path_factory) -> tuple[str, str]:
    return tls.self_signed(str(tmp_path_factory.mktemp("other")), ["localhost"])


def test_cert_command_writes_a_pair_openssl_accepts(tmp_path):
    out = tmp_path / "certs"
    r = run_nperf("cert", str(out), "--name", "10.1.0.1", "--name", "nperf.test", "--days", "30")
    assert r.returncode == 0, r.stderr
    cert, key = out / "server.crt", out / "server.key"
    assert r.stdout == f"wrote {cert} and {key} (self-signed, for 10.1.0.1, nperf.test, 30 days)\n"
    assert os.stat(key).st_mode & 0o777 == 0o600
    text = openssl("x509", "-in", str(cert), "-noout", "-subject", "-ext", "subjectAltName,basicConstraints")
    assert "subject=CN = 10.1.0.1\n" in text
    assert "IP Address:10.1.0.1, DNS:nperf.test" in text
    assert "CA:TRUE" in text
    assert openssl("x509", "-in", str(cert), "-noout", "-pubkey") == openssl("pkey", "-in", str(key), "-pubout")
    assert "ASN1 OID: prime256v1" in openssl("pkey", "-in", str(key), "-noout", "-text")
    assert openssl("verify", "-CAfile", str(cert), str(cert)).strip() == f"{cert}: OK"
    days = openssl("x509", "-in", str(cert), "-noout", "-checkend", str(29 * 86400))
    assert days.strip() == "Certificate will not expire"


def test_cert_command_keeps_existing_files(tmp_path):
    assert run_nperf("cert", str(tmp_path)).returncode == 0
    before = (tmp_path / "server.key").read_bytes()
    r = run_nperf("cert", str(tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'server.crt'} exists (--force replaces it)\n"
    assert (tmp_path / "server.key").read_bytes() == before
    assert run_nperf("cert", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "server.key").read_bytes() != before


def http(**kw) -> HttpConfig:
    return HttpConfig(use_https=1, **kw)


def error(http_config: HttpConfig, role: str = "server", config_file: str = "/cfg/s.json") -> str:
    with pytest.raises(ConfigError) as e:
        tls.Context(http_config, role, config_file)
    return str(e.value)


def test_a_matching_pair_loads(pair):
    cert, key = pair
    ctx = tls.Context(http(cert_path=cert, key_path=key), "server", "/cfg/s.json")
    assert ctx.ctx != tls.ffi.NULL
    ctx.close()
    assert ctx.ctx == tls.ffi.NULL


def test_paths_are_relative_to_the_config_file(pair, tmp_path):
    cert, key = pair
    cfg_dir = Path(cert).parent
    ctx = tls.Context(http(cert_path="./server.crt", key_path="server.key"), "server", str(cfg_dir / "s.json"))
    ctx.close()
    msg = error(http(cert_path="./server.crt", key_path="./server.key"), config_file=str(tmp_path / "s.json"))
    assert msg == (f"{tmp_path}/s.json: $.http_config.cert_path: cannot read {tmp_path}/server.crt: "
                   "No such file or directory")


def test_missing_or_empty_paths(pair):
    cert, key = pair
    assert error(http(cert_path="", key_path=key)) == (
        "/cfg/s.json: $.http_config.cert_path: use_https is 1, so the server needs this file")
    assert error(http(cert_path=cert, key_path="/nonexistent/k.pem")) == (
        "/cfg/s.json: $.http_config.key_path: cannot read /nonexistent/k.pem: No such file or directory")
    assert error(http(cert_path=os.path.dirname(cert), key_path=key)) == (
        f"/cfg/s.json: $.http_config.cert_path: cannot read {os.path.dirname(cert)}: Is a directory")


def test_files_without_pem_content(pair, tmp_path):
    cert, key = pair
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert error(http(cert_path=str(junk), key_path=key)).startswith(
        f"/cfg/s.json: $.http_config.cert_path: {junk} holds no PEM certificate (OpenSSL: ")
    assert error(http(cert_path=cert, key_path=cert)).startswith(
        f"/cfg/s.json: $.http_config.key_path: {cert} holds no PEM private key")


def test_a_key_of_another_certificate(pair, other_pair):
    cert, _ = pair
    assert error(http(cert_path=cert, key_path=other_pair[1])) == (
        f"/cfg/s.json: $.http_config.key_path: {other_pair[1]} is not the private key of the certificate "
        "(OpenSSL: key values mismatch)")


@pytest.mark.parametrize("key, value", [("tls_ciphers", "NO-SUCH-CIPHER"), ("tls_ciphersuites", "TLS_NO_SUCH"),
                                        ("tls_groups", "no-such-group")])
def test_algorithms_openssl_refuses(pair, key, value):
    cert, k = pair
    msg = error(http(cert_path=cert, key_path=k, **{key: value}))
    assert msg.startswith(f"/cfg/s.json: $.http_config.{key}: OpenSSL accepts none of {value!r}")


def test_algorithms_and_versions_openssl_accepts(pair):
    cert, key = pair
    tls.Context(http(cert_path=cert, key_path=key, tls_versions=["1.3"], tls_ciphersuites="TLS_AES_128_GCM_SHA256",
                     tls_groups="X25519:P-256"), "server", "/cfg/s.json").close()
    tls.Context(http(tls_versions=["1.2"], tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"), "client",
                "/cfg/c.json").close()


def test_a_client_needs_no_certificate():
    tls.Context(http(cert_path="./server.crt", key_path="./server.key"), "client", "/nonexistent/c.json").close()


def seed_server(tmp_path, **http_keys) -> str:
    cfg = json.loads(SEED_SERVER.read_text())
    cfg["http_config"].update(use_https=1, **http_keys)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_config_keys_and_their_types(tmp_path):
    cfg, warnings = load_worker(seed_server(tmp_path, tls_versions=["1.3"], sni="nperf.test",
                                            session_resumption="tickets"))
    h = cfg.http_config
    assert warnings == []
    assert (h.tls_versions, h.sni, h.session_resumption, h.tls_ciphers) == (["1.3"], "nperf.test", "tickets", "")
    with pytest.raises(ConfigError) as e:
        load_worker(seed_server(tmp_path, tls_versions=["1.4"]))
    assert str(e.value).startswith(f"{tmp_path}/s.json: $.http_config.tls_versions[0]: expected one of")
    with pytest.raises(ConfigError) as e:
        load_worker(seed_server(tmp_path, session_resumption="always"))
    assert "$.http_config.session_resumption" in str(e.value)


def test_server_role_names_the_bad_file_and_stops(tmp_path):
    """The seed's server with use_https 1 and its cert_path "./server.crt" missing: one line, exit 2."""
    r = run_nperf("server", seed_server(tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines()[-1] == (f"error: {tmp_path}/s.json: $.http_config.cert_path: cannot read "
                                         f"{tmp_path}/server.crt: No such file or directory")
    assert "Traceback" not in r.stderr


# --------------------------------------------------- one connection, in memory


def addr(cdata) -> int:
    return int(tls.ffi.cast("uintptr_t", cdata))


class Peer:
    """One side of a TLS connection through the per-connection C calls, as a kernel makes them:
    ciphertext in (`feed`) and out (`take`), plaintext in (`send`) and out (`plain`)."""

    def __init__(self, ctx: tls.Context, server: bool, sni: str = "", session: int = 0):
        self.sni = tls.ffi.new("char[]", sni.encode()) if sni else tls.ffi.NULL
        self.ssl = tls.lib.np_tls_new(addr(ctx.ctx), int(server), addr(self.sni), session)
        assert self.ssl != 0
        self.buf = tls.ffi.new("char[]", 1 << 14)
        self.plain = bytearray()
        self.status = 0

    def read(self) -> None:
        while (n := tls.lib.np_tls_read(self.ssl, addr(self.buf), len(self.buf), 0)) > 0:
            self.plain += tls.ffi.buffer(self.buf, n)
        self.status = n

    def feed(self, data: bytes) -> None:
        assert tls.lib.np_tls_input(self.ssl, addr(tls.ffi.from_buffer(data)), len(data), 0) == len(data)
        self.read()

    def take(self) -> bytes:
        pending = tls.lib.np_tls_pending(self.ssl, 0, 0, 0)
        out = bytearray()
        while (n := tls.lib.np_tls_output(self.ssl, addr(self.buf), len(self.buf), 0)) > 0:
            out += tls.ffi.buffer(self.buf, n)
        assert len(out) == pending and tls.lib.np_tls_pending(self.ssl, 0, 0, 0) == 0
        return bytes(out)

    def send(self, data: bytes) -> None:
        assert tls.lib.np_tls_write(self.ssl, addr(tls.ffi.from_buffer(data)), len(data), 0) == len(data)

    @property
    def state(self) -> tuple[bool, bool, bool, int]:
        """(handshake done, resumed, ALPN http/1.1, protocol version)"""
        st = tls.lib.np_tls_state(self.ssl, 0, 0, 0)
        return bool(st & 1), bool(st & 2), bool(st & 4), st >> 8

    def free(self) -> None:
        tls.lib.np_tls_free(self.ssl, 0, 0, 0)


def shuttle(client: Peer, server: Peer) -> None:
    """Carry ciphertext both ways until neither side has any to send."""
    for _ in range(20):
        c = client.take()
        if c:
            server.feed(c)
        s = server.take()
        if s:
            client.feed(s)
        if not c and not s:
            return
    raise AssertionError("the exchange did not settle")


def contexts(pair, client_versions=("1.2", "1.3"), server_versions=("1.2", "1.3"), resumption="off"):
    cert, key = pair
    server = tls.Context(http(cert_path=cert, key_path=key, tls_versions=list(server_versions)), "server", "/s.json")
    client = tls.Context(http(tls_versions=list(client_versions), session_resumption=resumption), "client", "/c.json")
    return client, server


def open_pair(client_ctx, server_ctx, session: int = 0) -> tuple[Peer, Peer]:
    client, server = Peer(client_ctx, False, sni="nperf.test", session=session), Peer(server_ctx, True)
    client.read()                       # the ClientHello
    assert client.status == 0 and not client.state[0]
    shuttle(client, server)
    return client, server


@pytest.mark.parametrize("version, wire", [("1.2", 0x0303), ("1.3", 0x0304)])
def test_handshake_then_exact_bytes_both_ways(pair, version, wire):
    client_ctx, server_ctx = contexts(pair, client_versions=[version])
    client, server = open_pair(client_ctx, server_ctx)
    assert client.state == server.state == (True, False, True, wire)
    request = b"GET /hello HTTP/1.1\r\nHost: nperf.test\r\n\r\n"
    client.send(request)
    records = client.take()
    assert request not in records and len(records) > len(request)
    server.feed(records)
    assert bytes(server.plain) == request and server.status == 0
    body = hashlib.sha256(b"nperf").digest() * (1 << 15)          # 1 MiB, many records
    server.send(body)
    shuttle(client, server)
    assert bytes(client.plain) == body and client.status == 0
    for p in (client, server):
        p.free()
    for c in (client_ctx, server_ctx):
        c.close()


@pytest.mark.parametrize("mode, version", [("tickets", "1.3"), ("tickets", "1.2"), ("ids", "1.2")])
def test_session_resumption(pair, mode, version):
    client_ctx, server_ctx = contexts(pair, client_versions=[version], resumption=mode)
    first, server = open_pair(client_ctx, server_ctx)
    session = tls.lib.np_tls_session(first.ssl, 0, 0, 0)
    assert session != 0
    again, server2 = open_pair(client_ctx, server_ctx, session=session)
    assert again.state[:2] == server2.state[:2] == (True, True)
    fresh, server3 = open_pair(client_ctx, server_ctx)
    assert fresh.state[:2] == (True, False)
    tls.lib.np_tls_session_free(session, 0, 0, 0)
    for p in (first, server, again, server2, fresh, server3):
        p.free()


def test_no_common_version_fails_both_sides(pair):
    client_ctx, server_ctx = contexts(pair, client_versions=["1.2"], server_versions=["1.3"])
    client, server = open_pair(client_ctx, server_ctx)
    assert server.status == client.status == tls.lib.NP_TLS_FAILED
    assert not client.state[0] and not server.state[0]


def test_plain_http_to_a_tls_port_fails(pair):
    """OpenSSL knows an HTTP request when it sees one and answers no alert to a peer that speaks no TLS."""
    _, server_ctx = contexts(pair)
    server = Peer(server_ctx, True)
    server.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert server.status == tls.lib.NP_TLS_FAILED
    assert server.take() == b""


def test_a_malformed_client_hello_gets_an_alert(pair):
    _, server_ctx = contexts(pair)
    server = Peer(server_ctx, True)
    server.feed(b"\x16\x03\x01\x00\x05" + b"\x01\x00\x00\x01\x00")    # a ClientHello of one byte
    assert server.status == tls.lib.NP_TLS_FAILED
    alert = server.take()
    assert len(alert) == 7 and alert[:1] == b"\x15" and alert[5] == 2         # one fatal alert record


def test_close_notify_reaches_the_peer(pair):
    client_ctx, server_ctx = contexts(pair)
    client, server = open_pair(client_ctx, server_ctx)
    assert tls.lib.np_tls_close(client.ssl, 0, 0, 0) == 0
    server.feed(client.take())
    assert server.status == tls.lib.NP_TLS_CLOSED


def test_writes_wait_for_the_handshake(pair):
    client_ctx, _ = contexts(pair)
    client = Peer(client_ctx, False)
    assert tls.lib.np_tls_write(client.ssl, addr(tls.ffi.from_buffer(b"early")), 5, 0) == 0
    client.read()
    assert client.take()[:1] == b"\x16"                  # a handshake record: the ClientHello
