"""The lb's impairment stage between Linux (curl, ping, nginx, on a TAP port) and an nperf server or
client: bodies cross loss, reordering and delay intact, both ways.

The counts must be exact where a receiver can see them: every frame the lb
corrupted toward the server fails the server's checksum, and every frame it
corrupted toward Linux is in the namespace's InCsumErrors.
"""
import json
import os
import statistics
import sys

from tests.dpdk.test_server_tap import BIG, pattern_digest
from tests.http_servers import EXAMPLE, served_requests, start_server
from tests.netns import Netns
from tests.procs import Session
from tests.server_setup import SERVER_IP, kernel_side_up, tap_server_config
from tests.topologies import failures

TAP = "nptap2"
ROUNDS = 3
IMPAIR = ["--impair", "to_port:loss=2,reorder=10,delay_ms=1,jitter_ms=0.5",
          "--impair", "to_workers:loss=2,reorder=10,delay_ms=1,jitter_ms=0.5"]


def start_lb(s, ns, impair_file=None, impair_args=()):
    """The lb (with the impairment) on TAP in ns; returns (lb, its file prefix)."""
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    prefix = s.prefix("im")
    lb_file = {"dpdk_args": f"--vdev=net_tap0,iface={TAP} --proc-type=primary --file-prefix={prefix}",
               "core_id": 5, "num_clients": 1, "clients": [{"id": 0, "ips": [SERVER_IP, "10.77.0.11"]}]}
    if impair_file:
        lb_file["impair"] = impair_file
    lb = s.start(ns.argv(sys.executable, "-m", "nperf", "lb", s.write_json("lb.json", lb_file),
                         "--report", s.path("lb.out"), *impair_args), "lb")
    lb.wait_for(r"\] ready: .*impairing", 300)
    return lb, prefix


def start(s, ns, impair_file=None, impair_args=()):
    """lb (with the impairment) on TAP in ns, the server behind it; returns (lb, server)."""
    lb, prefix = start_lb(s, ns, impair_file, impair_args)
    srv = s.start(ns.argv(sys.executable, "-m", "nperf", "server",
                          s.write_json("s.json", tap_server_config(TAP, lb_prefix=prefix)),
                          "--report", s.path("srv.out")), "server")
    srv.wait_for(r"\] ready", 300)
    kernel_side_up(ns, TAP)
    return lb, srv


def reports(s, lb, srv):
    assert srv.stop() == 0 and lb.stop() == 0
    return json.load(open(s.path("lb.out"))), json.load(open(s.path("srv.out")))


def accounted(counts):
    """Every frame into a direction came out, was lost, overflowed or was held at stop."""
    return (counts["frames"] + counts["duplicated"]
            == counts["out"] + counts["lost"] + counts["overflow"] + counts["discarded_at_stop"])


def test_a_5mib_body_crosses_loss_reordering_and_delay_intact(session):
    s, ns = session, Netns("imp")
    try:
        lb, srv = start(s, ns, impair_args=IMPAIR)
        r = ns.run("sh", "-c", f"curl -sS --max-time 120 http://{SERVER_IP}:8000/another | sha256sum", timeout=150)
        assert r.stdout.split()[0] == pattern_digest(BIG)
        lb_rep, srv_rep = reports(s, lb, srv)
        for direction in ("to_port", "to_workers"):
            c = lb_rep["impair"][direction]
            assert accounted(c), c
            assert c["lost"] > 0 and c["reordered"] > 0 and c["delayed"] > 0 and c["overflow"] == 0, c
            assert c["corrupted"] == c["duplicated"] == 0
        assert lb_rep["impair"]["to_port"]["frames"] == lb_rep["workers"][0]["from_worker"]
        w = lb_rep["workers"][0]            # (a late retransmission may land after the server's last read)
        assert w["to_worker"] - w["unread_at_stop"] == srv_rep["counters"]["rx_frames"]
        assert srv_rep["counters"]["tcp_retransmits"] > 0
    finally:
        s.close()
        ns.close()


def test_the_nperf_client_gets_5mib_bodies_from_nginx_through_loss_reordering_and_delay(session):
    """The other direction: Linux sends, nperf's TCP receives. Out-of-order segments are kept and
    given to the parser in order once the hole fills; every body is whole, and nginx logged each."""
    s, ns = session, Netns("imn")
    try:
        lb, prefix = start_lb(s, ns, impair_args=IMPAIR)
        nginx = start_server(s, ns, "nginx", 100)
        with open(os.path.join(s.path("www"), "big.bin"), "wb") as f:
            f.write(os.urandom(BIG))
        cfg = json.load(open(EXAMPLE))
        cfg["dpdk"] = tap_server_config(TAP, lb_prefix=prefix)["dpdk"]
        cfg["scheduler"] = {"prepare_duration_sec": 2, "ramp_up_duration_sec": 0, "sustain_duration_sec": 90,
                            "ramp_down_duration_sec": 0, "close_duration_sec": 2}
        cfg["objective"] = {"type": "TOTAL_CONNECTIONS", "value": 2, "requests_per_connection": 2}
        cfg["http_config"]["paths"][0]["path"] = "/big.bin"
        client = s.start(ns.argv(sys.executable, "-m", "nperf", "client", s.write_json("c.json", cfg),
                                 "--report", s.path("c.out")), "client")
        client.wait_for(r"\] ready", 300)
        kernel_side_up(ns, TAP)
        status = client.p.wait(150)
        assert lb.stop() == 0
        nginx.stop()
        rep = json.load(open(s.path("c.out")))
        if status != 0:                      # what a stall looks like (pytest would cut the message short)
            print(client.text()[-3000:], rep["counters"], json.load(open(s.path("lb.out")))["impair"])
        assert status == 0
        assert rep["responses_ok"] == 4 and rep["responses_failed"] == 0 and failures(rep) == 0, rep["errors"]
        assert rep["http"]["body_bytes"] == 4 * BIG and served_requests(s) == 4
        c = rep["counters"]
        assert c["tcp_ooo_kept"] > 0 and c["tcp_ooo_bytes"] > 0 and c["tcp_ooo_discarded"] == 0, c
        assert c["tcp_sack_blocks_out"] > 0, c             # Linux permits SACK: our ACKs report the kept data
        lb_rep = json.load(open(s.path("lb.out")))
        for direction in ("to_port", "to_workers"):
            assert accounted(lb_rep["impair"][direction]) and lb_rep["impair"][direction]["lost"] > 0
        print(f"\n4 x 5 MiB from nginx: {c['tcp_out_of_order']} segments out of order, {c['tcp_ooo_kept']} kept, "
              f"{c['tcp_ooo_not_kept']} not kept, {c['tcp_ooo_bytes']} bytes given in order from them")
    finally:
        s.close()
        ns.close()


def test_sack_cuts_what_the_nperf_server_resends_through_loss_and_reordering(session):
    """curl fetches the 5 MiB body through 2 % loss and 10 % reordering each way, with Linux's SACK
    off (net.ipv4.tcp_sack=0: not permitted, so NewReno) and on, alternately, three times each. With
    SACK the server takes the blocks in, fills the holes they show, and resends fewer bytes (the
    median of three: which frames the seeded impairment hits shifts with every ACK and timer, so one
    run each way can come out either way); each body is intact."""
    ns = Netns("ims")
    runs = {0: [], 1: []}
    try:
        for k, linux_sack in enumerate((0, 1) * ROUNDS):
            s = session if k == 0 else Session()
            try:
                ns.run("sysctl", "-qw", f"net.ipv4.tcp_sack={linux_sack}")
                lb, srv = start(s, ns, impair_args=IMPAIR)
                r = ns.run("sh", "-c", f"curl -sS --max-time 120 http://{SERVER_IP}:8000/another | sha256sum",
                           timeout=150)
                assert r.stdout.split()[0] == pattern_digest(BIG)
                runs[linux_sack].append(reports(s, lb, srv)[1]["counters"])
            finally:
                s.close()
            assert not s.left_behind
    finally:
        ns.close()
    figures = {k: [(off[k], on[k]) for off, on in zip(runs[0], runs[1])]
               for k in ("tcp_retransmits", "tcp_retransmit_bytes", "tcp_timeouts", "tcp_loss_probes",
                         "tcp_fast_retransmits", "tcp_sack_blocks_in", "tcp_sack_retransmits", "tcp_dsacks_in")}
    print(f"\n5 MiB through the impaired lb, (SACK off, on) per round: {figures}")
    for off, on in zip(runs[0], runs[1]):
        assert off["tcp_sack_blocks_in"] == off["tcp_sack_retransmits"] == off["tcp_loss_probes"] == 0, figures
        assert off["tcp_dsacks_in"] == 0, figures
        assert on["tcp_sack_blocks_in"] > 0 and on["tcp_sack_retransmits"] > 0, figures
    resent = {way: statistics.median(r["tcp_retransmit_bytes"] for r in runs[way]) for way in runs}
    assert resent[1] < resent[0], figures


def test_every_corrupted_frame_fails_its_receivers_checksum(session):
    """5 % each way: a corrupted frame is a lost one. At 10 % each way the 5 MiB body took 54-80 s here
    without tail loss probes (150-170 retransmission timeouts) and over 120 s once in CI; with them
    46-48 s (105-114 timeouts: a lost retransmission still waits for one). At 5 % it takes 13-19 s,
    with 100-250 frames corrupted each way."""
    s, ns = session, Netns("imc")
    try:
        lb, srv = start(s, ns, impair_file={"seed": 11, "to_workers": {"corrupt": 5}, "to_port": {"corrupt": 5}})
        before = csum_errors(ns)
        for _ in range(10):
            r = ns.run("curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}",
                       f"http://{SERVER_IP}:8000/hello")
            assert r.stdout == "200"
        r = ns.run("sh", "-c", f"curl -sS --max-time 120 http://{SERVER_IP}:8000/another | sha256sum", timeout=150)
        assert r.stdout.split()[0] == pattern_digest(BIG)
        # -w bounds ping: through corruption it sometimes never returned, and the test hung 120 s
        ns.run("ping", "-c", "20", "-i", "0.05", "-W", "1", "-w", "10", SERVER_IP, check=False, timeout=30)
        lb_rep, srv_rep = reports(s, lb, srv)
        c = srv_rep["counters"]
        to_workers, to_port = lb_rep["impair"]["to_workers"], lb_rep["impair"]["to_port"]
        assert to_workers["corrupted"] > 0 and to_port["corrupted"] > 0
        assert accounted(to_workers) and accounted(to_port)
        assert c["drop_tcp_checksum"] + c["drop_bad_icmp"] == to_workers["corrupted"]
        assert c["rx_csum_by_port"] > 0         # the TAP port verified the others (the lb tells its workers)
        assert csum_errors(ns) - before == to_port["corrupted"]
    finally:
        s.close()
        ns.close()


def csum_errors(ns) -> int:
    """TCP and ICMP segments the namespace's kernel dropped for a bad checksum (/proc/net/snmp)."""
    lines = ns.run("cat", "/proc/net/snmp").stdout.splitlines()
    total = 0
    for names, values in zip(lines[::2], lines[1::2]):
        table = dict(zip(names.split()[1:], values.split()[1:]))
        if names.startswith(("Tcp:", "Icmp:")):
            total += int(table["InCsumErrors"])
    return total
