"""Two `nperf lb` processes linked over memif, with test workers attached as DPDK secondaries.

Frames injected at a worker on one side must arrive byte-identical at the
worker owning the destination on the other side; everything else is counted.
"""
import json
import sys

import numpy as np

from tests import packets as P

RING_WORKER = [sys.executable, "-m", "tests.ring_worker"]


def lb_config(s, tag, role, core, clients):
    vdev = f"--vdev=net_memif,id=0,role={role},socket={s.path('memif.sock')},socket-abstract=no"
    return s.write_json(f"lb_{tag}.json", {
        "dpdk_args": f"{vdev} --proc-type=primary --file-prefix={s.prefix(tag)}",
        "core_id": core, "num_clients": len(clients),
        "clients": [{"id": i, "ips": ips} for i, ips in enumerate(clients)]})


def start_lb(s, cfg, tag):
    p = s.nperf("lb", cfg, "--report", s.path(f"report_{tag}.json"), name=f"lb_{tag}")
    p.wait_for(r"\] ready: port net_memif")
    return p


def worker(s, prefix, ring, lcore, tag, send=None, expect=0):
    argv = RING_WORKER + ["--prefix", prefix, "--ring", str(ring), "--lcore", str(lcore),
                          "--expect", str(expect), "--seconds", "20", "--out", s.path(f"{tag}.npz")]
    if send:
        frames, lens = P.as_arrays(send)
        np.savez(s.path(f"{tag}_send.npz"), frames=frames, lens=lens)
        argv += ["--send", s.path(f"{tag}_send.npz")]
    p = s.start(argv, tag, stdin=-1)
    return p


def received(s, tag):
    data = np.load(s.path(f"{tag}.npz"))
    return [bytes(data["frames"][i, :data["lens"][i]]) for i in range(len(data["lens"]))], int(data["sent"])


def test_frames_cross_the_memif_link_to_their_owner(session):
    s = session
    srv_cfg = lb_config(s, "s", "server", 5, [["10.0.0.100"], ["10.0.0.101", "fd00::101"]])
    cli_cfg = lb_config(s, "c", "client", 4, [["10.0.0.10", "fd00::10"]])
    lb_s = start_lb(s, srv_cfg, "s")
    lb_c = start_lb(s, cli_cfg, "c")
    lb_s.wait_for(r"link up", 30)
    lb_c.wait_for(r"link up", 30)

    to_w0 = [P.ipv4("10.0.0.10", "10.0.0.100", payload=bytes(range(200))),
             P.arp(1, "10.0.0.10", "10.0.0.100")]
    to_w1 = [P.ipv4("10.0.0.10", "10.0.0.101", payload=b"z" * 1400),
             P.ipv6("fd00::10", "fd00::101", payload=b"six" * 100),
             P.neighbour_solicitation("fd00::10", "fd00::101")]
    unknown = [P.ipv4("10.0.0.10", "10.0.0.99"), P.ipv6("fd00::10", "fd00::99")]
    not_ip = [P.vlan(P.ipv4("10.0.0.10", "10.0.0.100")), P.eth(P.BCAST, P.MAC_A, 0x88CC, b"\1" * 50)]
    back = [P.ipv4("10.0.0.100", "10.0.0.10", payload=b"reply" * 10), P.arp(2, "10.0.0.100", "10.0.0.10"),
            P.ipv6("fd00::101", "fd00::10")]

    prefix_s, prefix_c = s.prefixes
    w0 = worker(s, prefix_s, 0, 3, "w0", send=back, expect=len(to_w0))
    w1 = worker(s, prefix_s, 1, 2, "w1", expect=len(to_w1))
    wc = worker(s, prefix_c, 0, 1, "wc", send=to_w0 + unknown + to_w1 + not_ip, expect=len(back))
    for w in (w0, w1, wc):
        w.wait_for(r"^attached ([0-9a-f]{12})")
    for w in (w0, w1, wc):
        w.send("go\n")
    for w in (w0, w1, wc):
        w.wait_for(r"^done", 40)
        assert w.p.wait(10) == 0, w.text()

    got0, sent0 = received(s, "w0")
    got1, _ = received(s, "w1")
    gotc, sentc = received(s, "wc")
    assert (sent0, sentc) == (3, 9)
    assert got0 == to_w0
    assert got1 == to_w1
    assert gotc == back

    assert lb_s.stop() == 0 and lb_c.stop() == 0
    rs = json.load(open(s.path("report_s.json")))
    rc = json.load(open(s.path("report_c.json")))
    assert rc["port"]["tx_packets"] == 9 and rc["port"]["rx_packets"] == 3
    assert rs["port"]["rx_packets"] == 9 and rs["port"]["tx_packets"] == 3
    assert rs["port"]["rx_bytes"] == sum(map(len, to_w0 + unknown + to_w1 + not_ip))
    assert rs["drops"] == {"no_worker": 2, "not_ip_or_arp": 2, "truncated": 0, "worker_ring_full": 0,
                           "port_tx_full": 0, "no_mbuf": 0, "port_rx_missed": 0}
    assert [w["to_worker"] for w in rs["workers"]] == [2, 3]
    assert [w["from_worker"] for w in rs["workers"]] == [3, 0]
    assert rc["workers"][0] == {"id": 0, "to_worker": 3, "from_worker": 9, "ring_full": 0, "unread_at_stop": 0}
    assert sum(rc["drops"].values()) == 0
