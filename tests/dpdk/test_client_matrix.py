"""The nperf client against the HTTP servers people run, from apt, through a TAP port in a test namespace.

Each server logs every request it answered; its count must equal the
client's `responses_ok` exactly, with no failure and every body byte
accounted for. Where a server limits requests per kept-alive connection
(nginx `keepalive_requests`, Apache `MaxKeepAliveRequests`, lighttpd
`max-keep-alive-requests`: 100 here), the client asks for more than that
per connection: the server's `Connection: close` on its last response
must end the connection as a success, and the client reconnects.
"""
import pytest

from tests.http_servers import BODY, CLIENT_IP6, KERNEL_IP, SERVERS, client_against, served_requests
from tests.netns import Netns
from tests.topologies import failures

PHASES = {"prepare_duration_sec": 3, "ramp_up_duration_sec": 1, "sustain_duration_sec": 4,
          "ramp_down_duration_sec": 1, "close_duration_sec": 2}
PATH = {"path": "/index.html", "request_headers": ["User-Agent: nperf/0.1", "Accept: */*"],
        "response_headers": [], "response_body_size": 0}


def http_config(*paths):
    return {"use_https": 0, "cert_path": "", "key_path": "", "paths": list(paths)}


def check_exact(rep, served, body_per_response):
    assert rep["responses_failed"] == 0 and failures(rep) == 0, rep["errors"]
    assert rep["accounting"]["connections"]["open_now"] == 0 and rep["accounting"]["requests"]["open_now"] == 0
    assert rep["responses_ok"] > 500
    assert rep["responses_ok"] == rep["requests_sent"] - rep["notes"].get("retried", 0)
    assert rep["http"]["status_2xx"] == rep["responses_ok"]
    assert rep["http"]["body_bytes"] == rep["responses_ok"] * body_per_response
    assert served == rep["responses_ok"], (served, rep["notes"])


@pytest.fixture
def ns(request):
    n = Netns(request.node.name[-5:].strip("[]"))
    yield n
    n.close()


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_keep_alive_past_the_servers_limit_without_failures(session, ns, server):
    limit = SERVERS[server][0].max_requests
    rpc = 150 if limit else 300
    srv, _, rep = client_against(session, ns, server, server, limit, scheduler=PHASES, http_config=http_config(PATH),
                                 objective={"type": "HTTP_REQUESTS", "value": 16, "requests_per_connection": rpc})
    srv.stop()
    check_exact(rep, served_requests(session), len(BODY))
    if limit:           # the server ended each connection at its limit (Apache: 1 + 100 kept alive), not at rpc
        assert rep["connections_opened"] * (limit + 1) >= rep["responses_ok"]


def test_head_and_204_against_nginx(session, ns):
    head = {**PATH, "method": "HEAD"}
    nc = {**PATH, "path": "/nc"}
    srv, _, rep = client_against(session, ns, "head", "nginx", 100, scheduler=PHASES, http_config=http_config(head, nc),
                                 objective={"type": "HTTP_REQUESTS", "value": 16, "requests_per_connection": 50})
    srv.stop()
    check_exact(rep, served_requests(session), 0)


def test_chunked_bodies_from_nginx(session, ns):
    chunked = {**PATH, "path": "/chunked"}
    srv, _, rep = client_against(session, ns, "chunk", "nginx", 100, scheduler=PHASES,
                                 http_config=http_config(chunked),
                                 objective={"type": "HTTP_REQUESTS", "value": 16, "requests_per_connection": 150})
    ns.run("ip", "addr", "add", f"{KERNEL_IP}/32", "dev", "lo")     # the client's TAP went with it
    r = ns.run("curl", "-sS", "--raw", "-D", "-", f"http://{KERNEL_IP}/chunked")       # what nginx sent
    # (text mode: CRLF reads as LF) one chunk of 0x64 = 100 bytes, then the last chunk
    assert "Transfer-Encoding: chunked" in r.stdout and r.stdout.endswith("\n64\n" + BODY.decode() + "\n0\n\n")
    srv.stop()
    check_exact(rep, served_requests(session) - 1, len(BODY))


def test_client_over_ipv6_against_nginx_without_failures(session, ns):
    """The client's ranges are IPv6 (fd00:77::10-11 to fd00:77::1): it solicits nginx's address,
    answers the kernel's solicitations for its own, and every request nginx logged came from them."""
    srv, _, rep = client_against(session, ns, "ngx6", "nginx", 100, version=6, scheduler=PHASES,
                                 http_config=http_config(PATH),
                                 objective={"type": "HTTP_REQUESTS", "value": 16, "requests_per_connection": 150})
    srv.stop()
    check_exact(rep, served_requests(session), len(BODY))
    sources = {line.split()[0] for line in open(session.path("access.log")) if line.strip()}
    assert sources == set(CLIENT_IP6), sources
    assert rep["counters"]["nd_solicits"] >= 1 and rep["counters"]["nd_in"] >= 1, rep["counters"]


def test_client_against_nginx_ten_seconds(session, ns):
    srv, _, rep = client_against(session, ns, "ngx", scheduler={
        "prepare_duration_sec": 3, "ramp_up_duration_sec": 1, "sustain_duration_sec": 10,
        "ramp_down_duration_sec": 1, "close_duration_sec": 2})
    srv.stop()
    check_exact(rep, served_requests(session), len(BODY))
