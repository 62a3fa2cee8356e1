"""`nperf run` of the example topologies: every role starts, the client sees no failure,
and the load balancers' counters agree with the workers'."""
import json
import os
import re
import subprocess
import sys

from nperf import tls
from tests.netns import Netns
from tests.topologies import SHORT, copy_topology, failures, https_on, ipv6_beside, ipv6_only

NPERF = [sys.executable, "-m", "nperf"]


def nperf_run(session, directory, *extra, netns=None, timeout=300):
    report = session.path("run_report.json")
    argv = NPERF + ["run", directory, "--report", report, *extra]
    if netns:
        argv = netns.argv(*argv)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert os.path.exists(report), f"status {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r, json.load(open(report))


def by_name(rep, name):
    return next(x for x in rep["roles"] if x["name"] == name)["report"]


def sustain_seconds(rep, client):
    return [s for s in by_name(rep, client)["per_second"] if s["phase"] == "sustain"]


THIRTY = {**SHORT, "sustain_duration_sec": 30}


def check_test3(r, rep):
    """test3 ran without a failure, and every frame is accounted for: client -> lb_c -> memif -> lb_s
    -> server and back; each lb's received frames went to a worker, or are counted drops or peers'
    announcements. Returns the reports of (client, server, lb_c, lb_s)."""
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert rep["ok"] is True
    secs = sustain_seconds(rep, "client c")
    assert len(secs) >= 3 and all(s["cps"] > 0 and s["fail"] == 0 for s in secs), secs
    client, server = by_name(rep, "client c"), by_name(rep, "server s")
    lb_c, lb_s = by_name(rep, "lb lb_c"), by_name(rep, "lb lb_s")
    assert client["responses_failed"] == 0 and failures(client) == 0
    assert client["responses_ok"] == client["requests_sent"] > 0
    # frames: client -> lb_c -> memif -> lb_s -> server, and back
    assert lb_c["workers"][0]["from_worker"] == client["counters"]["tx_frames"]
    assert lb_c["workers"][0]["to_worker"] == client["counters"]["rx_frames"]
    assert lb_s["workers"][0]["to_worker"] == server["counters"]["rx_frames"]
    assert lb_s["workers"][0]["from_worker"] == server["counters"]["tx_frames"]
    assert lb_c["port"]["tx_packets"] == lb_s["port"]["rx_packets"]
    assert lb_s["port"]["tx_packets"] == lb_c["port"]["rx_packets"]
    for lb in (lb_c, lb_s):
        assert lb["port"]["rx_packets"] == (sum(w["to_worker"] for w in lb["workers"]) + sum(lb["drops"].values())
                                            + lb["announcements"])
    # the client's announcements reach lb_s, which has no worker for them: counted, not dropped
    assert lb_s["announcements"] >= 1 and lb_s["drops"]["no_worker"] == 0
    return client, server, lb_c, lb_s


def test_memif_test3_four_processes(session):
    """Also the leak check: after 30 s of load each lb's pool holds exactly what it held at start."""
    d = copy_topology(session, "memif/test3", phases=THIRTY)
    r, rep = nperf_run(session, d)
    _, _, lb_c, lb_s = check_test3(r, rep)
    # the printed statistics came over IPC, one line per role per second
    assert re.search(r"\[client c\] \[ *\d+s\] sustain \(target 1,000\)", r.stdout)
    assert "result: ok" in r.stdout
    for lb, name in ((lb_c, "lb_c"), (lb_s, "lb_s")):
        assert lb["pool"]["in_use_end"] == lb["pool"]["in_use_start"], lb["pool"]
        assert lb["pool"]["freed_from_rings"] == 0 and lb["pool"]["size"] > lb["pool"]["in_use_start"]
        line = rf"\[lb {name}\] \[ *\d+s\] .* pool ([\d,]+)/[\d,]+  drops"
        in_use = [int(n.replace(",", "")) for n in re.findall(line, r.stdout)]
        assert len(in_use) >= 30 and max(in_use) > lb["pool"]["in_use_start"], in_use    # the load held buffers
    for role in ("client c", "server s"):
        assert re.search(rf"\[{role}\] \[ *\d+s\] .* table [1-9][\d,]*/[\d,]+  mbufs \d", r.stdout), role


def test_memif_test3_over_ipv6(session):
    """The seed's test3 with every address moved to IPv6 (192.168.1.x to fd00:1::x): the client
    resolves the servers by neighbour discovery through both lbs, and asks over IPv6."""
    d = copy_topology(session, "memif/test3", phases=SHORT, tag="6", change=ipv6_only)
    r, rep = nperf_run(session, d)
    client, server, lb_c, lb_s = check_test3(r, rep)
    assert client["counters"]["nd_solicits"] >= 8 and client["counters"]["arp_requests"] == 0
    assert server["counters"]["nd_in"] >= 8 and server["counters"]["nd_adverts"] >= 16     # answers + announcements
    assert lb_c["announcements"] >= 1 and lb_c["drops"]["no_worker"] == 0


def test_memif_test3_both_families_at_once(session):
    """test3 with network.l3.ipv6 beside the seed's IPv4 ranges (mixed): the client asks the servers'
    IPv4 and IPv6 addresses in turn, each from a source of its family, and reports each family."""
    d = copy_topology(session, "memif/test3", phases=SHORT, tag="m", change=ipv6_beside)
    r, rep = nperf_run(session, d)
    client, server, lb_c, lb_s = check_test3(r, rep)
    families = client["families"]
    assert min(families["ipv4"]["responses_ok"], families["ipv6"]["responses_ok"]) > 0, families
    assert all(f["connections_failed"] == f["responses_failed"] == 0 for f in families.values()), families
    for total in ("connections_opened", "responses_ok"):
        assert families["ipv4"][total] + families["ipv6"][total] == client[total], (total, families)
    opened = families["ipv4"]["connections_opened"] / client["connections_opened"]
    assert 0.4 < opened < 0.6, families             # the 8 + 8 destinations in turn
    assert client["counters"]["arp_requests"] >= 8 and client["counters"]["nd_solicits"] >= 8


def test_memif_test3_over_https(session):
    """The seed's test3 with use_https: 1 on both sides (the certificate `nperf cert` writes): every
    sustain second has TLS handshakes and no failure, and both sides count the same handshakes."""
    d = copy_topology(session, "memif/test3", phases=SHORT, tag="s", change=https_on)
    tls.self_signed(d, ["nperf.test"])
    r, rep = nperf_run(session, d)
    client, server, _, _ = check_test3(r, rep)
    secs = sustain_seconds(rep, "client c")
    assert all(s["tls_handshakes"] > 0 and s["tls_failed"] == 0 for s in secs), secs
    assert re.search(r"\[client c\] \[ *\d+s\] sustain .* tls hs/s [1-9]", r.stdout)
    opened, unused = client["connections_opened"], client["notes"]["closed_unused"]    # (shed at ramp-down)
    assert opened - unused <= client["tls"]["handshakes_full"] <= opened
    assert server["tls"]["handshakes_full"] == client["tls"]["handshakes_full"]
    assert not any(client["tls"]["failed_by_cause"].values()), client["tls"]
    # the server sees the client shed connections in their handshake as peers closing (and nothing else),
    # and the client sends nothing after its FIN: no reset, no connection the server no longer knows
    assert server["tls"]["failed_by_cause"]["peer_closed"] + server["tls"]["handshakes_full"] == opened
    assert client["counters"]["conn_reset"] == server["counters"]["tcp_no_listener"] == 0
    for side in (client, server):
        t = side["tls"]
        assert t["handshakes_resumed"] == t["record_errors"] == t["no_slot"] == 0, t
        assert t["failed_by_cause"]["alert"] == t["failed_by_cause"]["certificate"] == 0, t
        assert t["failed_by_cause"]["timeout"] == 0, t
        assert 0 < t["handshake_ms"]["p50"] <= t["handshake_ms"]["max"], t
    assert client["tls"]["bytes_encrypted"] == server["tls"]["bytes_decrypted"] > 0
    assert server["tls"]["bytes_encrypted"] == client["tls"]["bytes_decrypted"] > 0
    assert "TLS handshakes" in r.stdout


def test_memif_test4_direct(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    r, rep = nperf_run(session, d)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    client = by_name(rep, "client c")
    assert client["responses_failed"] == 0 and client["responses_ok"] > 0
    assert all(s["cps"] > 0 for s in sustain_seconds(rep, "client c"))


def test_veth_pair_two_servers_two_clients(session):
    ns = Netns("veth")
    try:
        ns.run("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        for dev in ("veth0", "veth1"):
            ns.run("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            ns.run("ip", "link", "set", dev, "mtu", "2000", "up")
        d = copy_topology(session, "veth_pair/test1", phases=SHORT, objective={"value": 200})
        r, rep = nperf_run(session, d, netns=ns)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        for c in ("client c", "client c1"):
            rc = by_name(rep, c)
            assert rc["responses_failed"] == 0 and rc["responses_ok"] > 0, rc["errors"]
        for s in ("server s", "server s1"):
            assert by_name(rep, s)["http"]["requests"] > 0
    finally:
        ns.close()
