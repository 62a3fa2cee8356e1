"""`nperf server` with `use_https: 1` on its own TAP port against the Linux side's curl, openssl
s_client and wrk, and bad TLS counted by cause while others are served."""
import json
import re
import ssl
import sys
from dataclasses import dataclass

import pytest

from nperf import tls
from tests.dpdk.test_server_tap import BIG, pattern_digest
from tests.netns import Netns
from tests.procs import Session
from tests.server_setup import ADDRESSES, SERVER_IP, start_tap_server


@dataclass
class Served:
    session: Session
    ns: Netns
    proc: object

    @property
    def cert(self) -> str:
        return self.session.path("server.crt")


def _serve(netns: str, *extra: str, name: str = "server"):
    s = Session()
    ns = Netns(netns)
    try:
        tls.self_signed(s.dir, [SERVER_IP, ADDRESSES[4][2]])       # the seed's ./server.crt, ./server.key
        return Served(s, ns, start_tap_server(s, ns, *extra, name=name, https=True))
    except BaseException:
        s.close()
        ns.close()
        raise


@pytest.fixture(scope="module")
def served():
    srv = _serve("tls")
    try:
        yield srv
    finally:
        srv.session.close()
        srv.ns.close()


def curl(srv, *args, timeout=60):
    return srv.ns.run("curl", "-sS", "--max-time", str(timeout), "--cacert", srv.cert, *args,
                      timeout=timeout + 10, check=False)


def headers_and_body(srv, path, version, port=8000):
    r = curl(srv, f"--tlsv{version}", "--tls-max", version, "-D", "-", "-o", "/dev/null",
             "-w", "BODYLEN=%{size_download} SSL=%{ssl_verify_result}", f"https://{SERVER_IP}:{port}{path}")
    assert r.returncode == 0, r.stderr
    head, _, tail = r.stdout.partition("\n\n")       # text mode: CRLF reads as LF
    m = re.fullmatch(r"BODYLEN=(\d+) SSL=0", tail)
    assert m, repr(r.stdout)
    return head.split("\n"), int(m.group(1))


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_curl_gets_exact_answers_over_each_tls_version(served, version):
    """The certificate checked against the one written (curl --cacert), two paths and a 404."""
    lines, n = headers_and_body(served, "/hello", version)
    assert lines == ["HTTP/1.1 200 OK", "Server: unetbsd", "Content-Type: text/plain", "Content-Length: 100"]
    assert n == 100
    lines, n = headers_and_body(served, "/", version, port=8001)
    assert lines == ["HTTP/1.1 200 OK", "Server: unetbsd", "Content-Type: text/plain", "Content-Length: 1024"]
    assert n == 1024
    lines, n = headers_and_body(served, "/nope", version)
    assert lines[0] == "HTTP/1.1 404 Not Found"
    assert n == len(b"not found\n")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_5mib_body_arrives_intact(served, version, close):
    """Also when the request asks to close: the FIN waits until the last record is encrypted."""
    extra = "-H 'Connection: close'" if close else ""
    r = served.ns.run("sh", "-c", f"curl -sS --max-time 60 --cacert {served.cert} --tlsv{version} {extra} "
                                  f"--tls-max {version} https://{SERVER_IP}:8000/another | sha256sum", timeout=90)
    assert r.stdout.split()[0] == pattern_digest(BIG), r.stderr


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_s_client_sees_the_certificate_and_the_version(served, version):
    r = served.ns.run("sh", "-c", f"openssl s_client -brief -connect {SERVER_IP}:8000 -CAfile {served.cert} "
                                  f"-tls{version.replace('.', '_')} </dev/null", timeout=30, check=False)
    out = r.stdout + r.stderr
    assert f"Protocol version: TLSv{version}" in out, out
    assert f"Peer certificate: CN = {SERVER_IP}" in out, out
    assert "Verification: OK" in out, out


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_wrk_over_https_ten_seconds_without_errors(served, close):
    extra = ["-H", "Connection: close"] if close else []
    r = served.ns.run("wrk", "-t1", "-c10", "-d10s", *extra, f"https://{SERVER_IP}:8000/hello", timeout=60)
    assert "Socket errors" not in r.stdout, r.stdout
    assert "Non-2xx" not in r.stdout, r.stdout
    done = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    assert done > 100, r.stdout


CLOSE_NOTIFY_CLIENT = """
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection((sys.argv[1], 8000), timeout=30) as raw:
    s = ctx.wrap_socket(raw, server_hostname=sys.argv[1], suppress_ragged_eofs=False)
    s.sendall(b"GET /another HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(1 << 20):    # a FIN without close_notify raises SSLEOFError here
        data += chunk
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    print(head.split(b"\\r\\n")[0].decode(), len(body), hashlib.sha256(body).hexdigest())
"""


def test_a_close_asked_for_ends_with_close_notify_after_the_whole_body(served):
    """`Connection: close` on the 5 MiB path: all of the body (encrypted as the ring drains), then our
    close_notify, then TCP's FIN (Python's ssl, told not to forgive a bare FIN, reads to a clean end)."""
    r = served.ns.run(sys.executable, "-c", CLOSE_NOTIFY_CLIENT, SERVER_IP, served.cert, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["HTTP/1.1", "200", "OK", str(BIG), pattern_digest(BIG)], r.stdout


def test_server_report_counts_handshakes_and_bytes(served):
    assert served.proc.stop() == 0
    c = json.load(open(served.session.path("server_report.json")))["counters"]
    print({k: v for k, v in c.items() if k.startswith("tls_")})
    assert c["tls_full"] + c["tls_resumed"] > 100     # one per curl and s_client, and per wrk connection
    assert c["tls_resumed"] > 0        # wrk, reconnecting after each Connection: close, resumes its session
    assert c["tls_failed_alert"] == c["tls_failed_certificate"] == c["tls_record_errors"] == c["tls_no_slot"] == 0
    assert c["tls_bytes_encrypted"] > 2 * BIG and c["tls_bytes_decrypted"] > 0
    assert c["tcp_bytes_out"] > c["tls_bytes_encrypted"]      # records cost more than their text


def _client_hello() -> bytes:
    """The first flight of Python's TLS client: a real ClientHello record."""
    ctx = ssl.create_default_context()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="x")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


SEND_AND_CLOSE = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], 8000), timeout=10)
s.sendall(bytes.fromhex(sys.argv[2]))
time.sleep(0.5)
s.close()
"""


def test_bad_tls_is_counted_by_cause_and_others_are_served():
    """Plain HTTP to the TLS port (an alert), a ClientHello cut short then closed, and a client that
    closes after its ClientHello (both: peer closed); curl is served all along."""
    srv = _serve("badtls", name="bad")
    try:
        hello = _client_hello()
        r = srv.ns.run("curl", "-sS", "--max-time", "10", f"http://{SERVER_IP}:8000/hello", check=False)
        assert r.returncode != 0
        for data in (hello[:len(hello) // 2], hello):
            srv.ns.run(sys.executable, "-c", SEND_AND_CLOSE, SERVER_IP, data.hex(), timeout=30)
        lines, n = headers_and_body(srv, "/hello", "1.3")
        assert lines[0] == "HTTP/1.1 200 OK" and n == 100
        assert srv.proc.stop() == 0
        c = json.load(open(srv.session.path("bad_report.json")))["counters"]
        assert (c["tls_failed_alert"], c["tls_failed_peer_closed"], c["tls_full"]) == (1, 2, 1)
        assert c["tls_failed_certificate"] == c["tls_failed_timeout"] == 0
    finally:
        srv.session.close()
        srv.ns.close()


def test_5mib_over_tls_survives_one_percent_loss_each_way():
    """1 % of frames dropped at random each way in the server's port path (the --loss knob): the
    ciphertext ring resends what was lost, byte for byte (a record is never encrypted twice)."""
    srv = _serve("tlsloss", "--loss", "0.01", name="lossy")
    try:
        r = srv.ns.run("sh", "-c", f"curl -sS --max-time 120 --cacert {srv.cert} https://{SERVER_IP}:8000/another "
                                   "| sha256sum", timeout=150)
        assert r.stdout.split()[0] == pattern_digest(BIG)
        assert srv.proc.stop() == 0
        c = json.load(open(srv.session.path("lossy_report.json")))["counters"]
        assert c["drop_test_loss"] > 0 and c["tcp_retransmits"] > 0
        assert c["tls_full"] == 1 and c["tls_record_errors"] == 0
    finally:
        srv.session.close()
        srv.ns.close()
