"""`nperf client` with `use_https: 1` against nginx serving TLS in a test namespace, through a TAP
port: every request nginx logged is one the client counted, and nginx's $ssl_protocol and
$ssl_session_reused agree with the client's handshake counters."""
import pytest

from nperf import tls
from tests.dpdk.test_client_matrix import PATH, PHASES, check_exact, http_config, ns  # noqa: F401 (a fixture)
from tests.http_servers import BODY, KERNEL_IP, client_against, served_requests


def _run(session, ns, tag, version, resumption, rpc):
    """The client against nginx on 10.77.0.1:443 over TLS `version`; nginx's log lines as
    (protocol, reused) pairs, and the client's report."""
    tls.self_signed(session.dir, [KERNEL_IP])
    cfg = http_config(PATH)
    cfg.update(use_https=1, tls_versions=[version], session_resumption=resumption)
    srv, _, rep = client_against(
        session, ns, tag, "nginx", 100, https=True, scheduler=PHASES, http_config=cfg,
        network={"l2": {"mac_address": "02:00:00:77:00:0a"},
                 "l3": {"src_ip_start": "10.77.0.10", "src_ip_end": "10.77.0.11", "dst_ip_start": KERNEL_IP,
                        "dst_ip_end": KERNEL_IP},
                 "l4": {"protocol": "TCP", "src_port_start": 10000, "src_port_end": 60000, "dst_port_start": 443,
                        "dst_port_end": 443}},
        objective={"type": "HTTP_REQUESTS", "value": 16, "requests_per_connection": rpc})
    srv.stop()
    check_exact(rep, served_requests(session), len(BODY))
    lines = [line.split() for line in open(session.path("access.log")) if line.strip()]
    assert {(ln[1], ln[3]) for ln in lines} == {(f"TLSv{version}", "200")}, lines[:5]
    return [ln[2] == "r" for ln in lines], rep


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_over_tls_against_nginx_without_failures(session, ns, version):
    """Keep-alive past nginx's 100 requests per connection: full handshakes only, one per
    connection but for those the ramp-down closed mid-handshake (unused), and every byte accounted
    for."""
    reused, rep = _run(session, ns, f"tls{version[-1]}", version, "off", 150)
    c = rep["counters"]
    unused = rep["notes"].get("closed_unused", 0)
    assert not any(reused) and unused <= 16
    assert 0 < c["tls_full"] <= c["conn_opened"] <= c["tls_full"] + unused and c["tls_resumed"] == 0
    assert c["tls_failed_alert"] == c["tls_failed_certificate"] == c["tls_failed_timeout"] == 0
    assert c["tls_failed_peer_closed"] == c["tls_record_errors"] == c["tls_no_slot"] == 0
    assert c["tls_bytes_decrypted"] > rep["http"]["body_bytes"]


@pytest.mark.parametrize("version, resumption", [("1.2", "ids"), ("1.2", "tickets"), ("1.3", "tickets")])
def test_client_resumes_sessions_as_nginx_logs_them(session, ns, version, resumption):
    """One request per connection, so nginx logs each handshake once, but for connections the client
    closed unused (ramping down; those shed in their handshake count none): as many resumed ones as the
    client counted, and the rest full."""
    reused, rep = _run(session, ns, f"res{version[-1]}{resumption[0]}", version, resumption, 1)
    c = rep["counters"]
    unused = rep["notes"].get("closed_unused", 0)
    assert unused <= 16 and sum(reused) > len(reused) // 2
    assert len(reused) <= c["tls_full"] + c["tls_resumed"] <= len(reused) + unused
    assert sum(reused) <= c["tls_resumed"] <= sum(reused) + unused
    assert c["tls_failed_alert"] == c["tls_failed_certificate"] == c["tls_record_errors"] == 0
