"""nperf.tls: `nperf cert` writes a certificate OpenSSL's own tools accept, and every TLS
mistake in a worker file is one error line naming the file and the key, checked by
OpenSSL before anything starts."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nperf import tls
from nperf.config import ConfigError, HttpConfig, load_worker

HERE = Path(__file__).resolve().parent.parent      # tests/
SEED_SERVER = HERE / "seed_configs" / "memif" / "test4" / "s.json"


def nperf(*argv, cwd="/"):
    return subprocess.run([sys.executable, "-m", "nperf", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


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
    r = nperf("cert", str(out), "--name", "10.1.0.1", "--name", "nperf.test", "--days", "30")
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
    assert nperf("cert", str(tmp_path)).returncode == 0
    before = (tmp_path / "server.key").read_bytes()
    r = nperf("cert", str(tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'server.crt'} exists (--force replaces it)\n"
    assert (tmp_path / "server.key").read_bytes() == before
    assert nperf("cert", str(tmp_path), "--force").returncode == 0
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
    r = nperf("server", seed_server(tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines()[-1] == (f"error: {tmp_path}/s.json: $.http_config.cert_path: cannot read "
                                         f"{tmp_path}/server.crt: No such file or directory")
    assert "Traceback" not in r.stderr


def test_server_role_with_valid_settings_says_https_does_not_run_yet(tmp_path):
    assert nperf("cert", str(tmp_path)).returncode == 0
    r = nperf("server", seed_server(tmp_path))
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == (f"error: {tmp_path}/s.json: $.http_config.use_https: the TLS settings "
                                         "are valid, but HTTPS does not run yet: use 0")
