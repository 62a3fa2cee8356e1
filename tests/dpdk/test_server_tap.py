"""`nperf server` on its own TAP port against the Linux kernel's curl, ping and wrk, over IPv4 and
over IPv6 (the module's tests run once per family, each against its own server)."""
import hashlib
import json
import re
import sys
from dataclasses import dataclass

import pytest

from nperf.roles.http_tables import BODY_PATTERN
from tests.netns import Netns
from tests.procs import Session
from tests.server_setup import ADDRESSES, SERVER_IP, start_tap_server, url_host

BIG = 5 * 1024 * 1024


def pattern_digest(n: int) -> str:
    reps = -(-n // len(BODY_PATTERN))
    return hashlib.sha256((BODY_PATTERN * reps)[:n]).hexdigest()


@dataclass
class Served:
    session: Session
    ns: Netns
    proc: object
    version: int

    def url(self, path: str, port: int = 8000) -> str:
        return f"http://{url_host(self.version)}:{port}{path}"


@pytest.fixture(scope="module", params=[4, 6], ids=["ipv4", "ipv6"])
def served(request):
    s = Session()
    ns = Netns("srv")
    try:
        proc = start_tap_server(s, ns, version=request.param)
        yield Served(s, ns, proc, request.param)
    finally:
        s.close()
        ns.close()


def curl(ns, *args, timeout=60):
    return ns.run("curl", "-sS", "--max-time", str(timeout), *args, timeout=timeout + 10, check=False)


def headers_and_body(served, path, port=8000):
    r = curl(served.ns, "-D", "-", "-o", "/dev/null", "-w", "BODYLEN=%{size_download}", served.url(path, port))
    assert r.returncode == 0, r.stderr
    head, _, tail = r.stdout.partition("\n\n")       # text mode: CRLF reads as LF
    assert tail.startswith("BODYLEN="), repr(r.stdout)
    return head.split("\n"), int(tail[len("BODYLEN="):])


def test_configured_paths_exact_headers_and_length(served):
    lines, n = headers_and_body(served, "/hello")
    assert lines == ["HTTP/1.1 200 OK", "Server: unetbsd", "Content-Type: text/plain", "Content-Length: 100"]
    assert n == 100
    lines, n = headers_and_body(served, "/", port=8001)
    assert lines == ["HTTP/1.1 200 OK", "Server: unetbsd", "Content-Type: text/plain", "Content-Length: 1024"]
    assert n == 1024


def test_unknown_path_is_404(served):
    lines, n = headers_and_body(served, "/nope")
    assert lines[0] == "HTTP/1.1 404 Not Found"
    assert n == len(b"not found\n")


def test_methods_answered_like_nginx_on_one_connection(served):
    """POST gets 405 with Allow, an unknown method 501; both keep the connection for the next request."""
    ns, url = served.ns, served.url("/hello")
    each = ["-D", "-", "-o", "/dev/null", "-w", "CODE=%{http_code} CONNECTS=%{num_connects}\n"]
    r = curl(ns, *each, "-X", "POST", url, "--next", *each, "-X", "FOO", url, "--next", *each, url)
    assert r.returncode == 0, r.stderr
    assert re.findall(r"CODE=(\d+) CONNECTS=(\d+)", r.stdout) == [("405", "1"), ("501", "0"), ("200", "0")], r.stdout
    assert "HTTP/1.1 405 Method Not Allowed\nAllow: GET, HEAD\n" in r.stdout, r.stdout


def test_expect_100_continue_answered_before_the_body(served):
    """curl sends the body only after the 100 (or its timeout, set far past --max-time here)."""
    r = served.ns.run("sh", "-c", f"head -c 3000 /dev/zero | curl -sS -v --max-time 10 --expect100-timeout 60 "
                                  f"-X GET -H 'Expect: 100-continue' --data-binary @- -o /dev/null "
                                  f"-w 'CODE=%{{http_code}}' '{served.url('/hello')}'", timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    assert "< HTTP/1.1 100 Continue" in r.stderr and r.stdout == "CODE=200", (r.stdout, r.stderr)


def test_5mib_body_arrives_intact(served):
    r = served.ns.run("sh", "-c", f"curl -sS --max-time 60 '{served.url('/another')}' | sha256sum", timeout=90)
    assert r.stdout.split()[0] == pattern_digest(BIG)


def test_ping_is_answered(served):
    r = served.ns.run("ping", f"-{served.version}", "-c", "3", "-i", "0.2", "-W", "2", ADDRESSES[served.version][1],
                      check=False)
    assert " 0% packet loss" in r.stdout, r.stdout


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_wrk_ten_seconds_without_errors(served, close):
    extra = ["-H", "Connection: close"] if close else []
    r = served.ns.run("wrk", "-t1", "-c10", "-d10s", *extra, served.url("/hello"), timeout=60)
    assert "Socket errors" not in r.stdout, r.stdout
    assert "Non-2xx" not in r.stdout, r.stdout
    done = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    assert done > 1000, r.stdout


UDP_DATAGRAMS, UDP_BYTES = 100, 64


def test_udp_datagrams_from_the_kernel(served):
    """Counted in the report below, exactly (UDP_STREAM's server side; checksummed by the kernel)."""
    send = (f"import socket; s = socket.socket(socket.AF_INET{'6' if served.version == 6 else ''}, socket.SOCK_DGRAM)\n"
            f"for i in range({UDP_DATAGRAMS}): s.sendto(bytes({UDP_BYTES}), ('{ADDRESSES[served.version][1]}', 8001))")
    served.ns.run(sys.executable, "-c", send, timeout=30)


def test_server_report_counts_what_it_served(served):
    assert served.proc.stop() == 0
    rep = json.load(open(served.session.path("server_report.json")))
    assert rep["http"]["not_found"] >= 1
    assert rep["http"]["bad_request"] == 0
    assert (rep["http"]["not_allowed"], rep["http"]["not_implemented"], rep["http"]["continue_sent"]) == (1, 1, 1)
    assert rep["counters"]["icmp_echo"] >= 3
    assert rep["counters"]["drop_tcp_checksum"] == 0 and rep["counters"]["drop_ip_checksum"] == 0
    # a TAP port verifies received checksums (RX offload): the stack took its word for every IPv4 frame
    # and every TCP segment over IPv6 (ICMPv6 it sums itself)
    c = rep["counters"]
    assert (c["udp_in"], c["udp_bytes_in"], c["drop_udp_checksum"]) == (UDP_DATAGRAMS, UDP_DATAGRAMS * UDP_BYTES, 0)
    assert c["rx_csum_by_port"] >= c["tcp_segs_in"] + (c["icmp_echo"] if served.version == 4 else 0) > 0
    if served.version == 6:     # the kernel resolved the server's address; nothing was malformed
        assert c["nd_in"] >= 1 and c["nd_adverts"] == c["nd_in"] + 2 and c["drop_bad_nd"] == 0   # + 2 at start


def test_five_mib_survives_one_percent_loss():
    """1 % of frames dropped at random each way in the server's port path (the --loss knob)."""
    s = Session()
    ns = Netns("loss")
    try:
        proc = start_tap_server(s, ns, "--loss", "0.01", name="lossy")
        r = ns.run("sh", "-c", f"curl -sS --max-time 120 http://{SERVER_IP}:8000/another | sha256sum", timeout=150)
        assert r.stdout.split()[0] == pattern_digest(BIG)
        assert proc.stop() == 0
        rep = json.load(open(s.path("lossy_report.json")))
        assert rep["counters"]["drop_test_loss"] > 0
        assert rep["counters"]["tcp_retransmits"] > 0
    finally:
        s.close()
        ns.close()
