"""Interop: `nperf lb` as memif master against DPDK's own testpmd as memif client."""
import json
import re

TESTPMD_IP = "198.18.0.2"      # testpmd's default txonly/tx-first destination


def start(s, mode_args, interactive=False):
    sock = s.path("memif.sock")
    cfg = s.write_json("lb.json", {
        "dpdk_args": f"--vdev=net_memif,id=0,role=server,socket={sock},socket-abstract=no "
                     f"--proc-type=primary --file-prefix={s.prefix('t')}",
        "core_id": 1, "num_clients": 1, "clients": [{"id": 0, "ips": [TESTPMD_IP]}]})
    lb = s.nperf("lb", cfg, "--report", s.path("report.json"), "--ring-size", "256", name="lb")
    lb.wait_for(r"\] ready")
    mode = ["-i"] if interactive else ["--auto-start", "--stats-period=1"]
    pmd = s.start(["stdbuf", "-oL", "dpdk-testpmd", "--lcores=20@0,21@0", "--no-pci", "--in-memory", "-m", "256",
                   f"--file-prefix={s.prefix('pmd', peer=True)}",
                   f"--vdev=net_memif,role=client,socket={sock},socket-abstract=no", "--",
                   *mode, *mode_args], "testpmd", stdin=-1 if interactive else None)
    return lb, pmd


def sent_by_testpmd(pmd) -> int:
    pmd.wait_for(r"Accumulated forward statistics", 20)
    m = pmd.wait_for(r"TX-packets:\s+(\d+)", 10)
    return int(m.group(1))


def stop_and_report(s, lb, pmd):
    pmd.stop()
    sent = sent_by_testpmd(pmd)
    assert lb.stop() == 0, lb.text()
    return sent, json.load(open(s.path("report.json")))


def test_tx_first_burst_is_received_exactly(session):
    lb, pmd = start(session, ["--forward-mode=io", "--tx-first"])
    lb.wait_for(r"link up  rx 32 pkt/s", 30)
    sent, rep = stop_and_report(session, lb, pmd)
    assert sent == 32
    assert rep["port"]["rx_packets"] == 32
    assert rep["workers"][0]["to_worker"] == 32
    assert sum(rep["drops"].values()) == 0


def test_txonly_flood_counts_match_testpmd(session):
    """testpmd floods for 3 s, stops forwarding but keeps the link up until the lb is idle."""
    lb, pmd = start(session, ["--forward-mode=txonly", "--txpkts=64"], interactive=True)
    pmd.send("start\n")
    for _ in range(3):
        lb.wait_for(r"link up  rx [1-9][\d,]* pkt/s", 30)
    pmd.send("stop\n")
    sent = sent_by_testpmd(pmd)
    lb.wait_for(r"link up  rx 0 pkt/s", 10)
    pmd.send("quit\n")
    assert pmd.p.wait(20) == 0
    assert lb.stop() == 0, lb.text()
    rep = json.load(open(session.path("report.json")))
    got = rep["port"]["rx_packets"]
    assert sent > 10_000
    assert got == sent, f"testpmd sent {sent}, lb received {got}"
    assert rep["port"]["rx_bytes"] == 64 * got
    # nobody drains the worker ring: all but its 255 slots are counted as ring-full drops
    assert rep["workers"][0]["to_worker"] == rep["workers"][0]["unread_at_stop"] == 255   # freed at exit
    assert rep["pool"]["freed_from_rings"] == 255
    assert rep["drops"]["worker_ring_full"] == got - 255
    assert re.search(r"link (up|down)", lb.text())
