"""Client objectives over the direct memif layout (test4): exact counts and the rate limit."""
import json
import os

from tests.dpdk.test_run_topologies import by_name, nperf_run, sustain_seconds
from tests.topologies import SHORT, copy_topology


def test_total_connections_opens_exactly_value_with_five_requests_each(session):
    d = copy_topology(session, "memif/test4", phases=dict(SHORT, sustain_duration_sec=20),
                      objective={"type": "TOTAL_CONNECTIONS", "value": 300, "requests_per_connection": 5})
    r, rep = nperf_run(session, d)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    client, server = by_name(rep, "client c"), by_name(rep, "server s")
    assert client["connections_opened"] == 300
    assert client["counters"]["conn_opened"] == 300
    assert client["requests_sent"] == client["responses_ok"] == 1500
    assert server["counters"]["conn_opened"] == 300
    assert server["http"]["requests"] == 1500


def test_rate_limit_is_held_within_five_percent(session):
    d = copy_topology(session, "memif/test4", phases=dict(SHORT, sustain_duration_sec=6),
                      objective={"type": "HTTP_REQUESTS", "value": 64, "requests_per_connection": 100,
                                 "requests_per_second": 2000}, tag="r")
    r, rep = nperf_run(session, d)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    secs = sustain_seconds(rep, "client c")[1:]        # the first sustain second may be partial
    assert len(secs) >= 4
    avg = sum(s["rps"] for s in secs) / len(secs)
    assert abs(avg - 2000) <= 100, [s["rps"] for s in secs]
    assert by_name(rep, "client c")["responses_failed"] == 0


def test_tcp_concurrent_holds_the_target_without_requests(session):
    d = copy_topology(session, "memif/test4", phases=dict(SHORT, sustain_duration_sec=3),
                      objective={"type": "TCP_CONCURRENT", "value": 400}, tag="k")
    r, rep = nperf_run(session, d)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    client, server = by_name(rep, "client c"), by_name(rep, "server s")
    secs = sustain_seconds(rep, "client c")
    assert secs and all(s["conc"] == 400 for s in secs), [s["conc"] for s in secs]
    assert client["connections_opened"] == 400 and client["requests_sent"] == 0
    assert server["counters"]["conn_opened"] == 400 and server["http"]["requests"] == 0
    assert server["active_connections"] == 0          # all closed in the close phase


def test_udp_stream_sends_value_per_second_and_the_server_counts_them(session):
    d = copy_topology(session, "memif/test4", phases=dict(SHORT, sustain_duration_sec=3),
                      objective={"type": "UDP_STREAM", "value": 5000}, tag="u")
    for name in ("c.json", "s.json"):
        path = os.path.join(d, name)
        cfg = json.load(open(path))
        cfg["network"]["l4"]["protocol"] = "UDP"
        if name == "s.json":
            cfg["objective"]["type"] = "UDP_STREAM"
        json.dump(cfg, open(path, "w"))
    r, rep = nperf_run(session, d)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    client, server = by_name(rep, "client c"), by_name(rep, "server s")
    secs = sustain_seconds(rep, "client c")[1:]
    assert secs and all(abs(s["udp_pps"] - 5000) <= 250 for s in secs), [s["udp_pps"] for s in secs]
    assert client["udp_sent"] > 0 and server["counters"]["udp_in"] == client["udp_sent"]
    assert server["counters"]["udp_bytes_in"] == client["udp_sent"] * len("Hello from client!")
