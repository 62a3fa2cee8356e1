"""A SYN flood at `nperf server` through TAP, at many times what its table holds, with curl served meanwhile.

The flood (tests/syn_flood.py: raw frames from Linux's side, spoofed sources that never answer)
fills every row with half-open connections; each further SYN frees the oldest of them
(`tcp_syn_evicted`), so curl's own SYN still gets a row and its handshake completes within the
flood's sweep of the table. Every flood SYN is accounted for: received by the server, or dropped
by Linux before the TAP (its device and queueing-discipline drop counts).
"""
import json
import re
import sys
import threading
import time

from tests.netns import Netns
from tests.procs import Session
from tests.server_setup import SERVER_IP, TAP, start_tap_server

ROWS = 256
FLOOD = 40_000
SECONDS = 4.0
BODY_LEN = 100           # /hello of the seed's server file


def linux_drops(ns: Netns) -> int:
    """Frames Linux dropped on its way into the TAP: the device's TX drops and the qdisc's."""
    link = json.loads(ns.run("ip", "-s", "-j", "link", "show", TAP).stdout)[0]
    qdiscs = json.loads(ns.run("tc", "-s", "-j", "qdisc", "show", "dev", TAP).stdout or "[]")
    return link["stats64"]["tx"]["dropped"] + sum(q.get("drops", 0) for q in qdiscs)


def test_a_syn_flood_is_counted_and_curl_is_still_answered():
    s, ns = Session(), Netns("flood")
    try:
        server = start_tap_server(s, ns, "--max-conns", str(ROWS), name="flood")
        ns.run("ping", "-c", "1", "-W", "5", SERVER_IP)
        mac = re.search(r"lladdr (\S+)", ns.run("ip", "neigh", "show", SERVER_IP).stdout).group(1)
        drops_before = linux_drops(ns)
        flood = s.start(ns.argv(sys.executable, "-m", "tests.syn_flood", TAP, SERVER_IP, mac, "8000",
                                str(FLOOD), str(SECONDS)), "flood")
        answers = []

        def fetch_during_flood():
            time.sleep(0.5)
            while flood.p.poll() is None and len(answers) < 20:
                r = ns.run("curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                           f"http://{SERVER_IP}:8000/hello", check=False, timeout=15)
                answers.append((r.returncode, r.stdout, r.stderr))
                time.sleep(0.1)

        curls = threading.Thread(target=fetch_during_flood)
        curls.start()
        sent = int(flood.wait_for(r"^sent (\d+) in", SECONDS + 120).group(1))
        curls.join(60)
        dropped = linux_drops(ns) - drops_before
        assert flood.p.wait(10) == 0
        assert len(answers) >= 3, answers
        assert all(a == (0, f"200 {BODY_LEN}", "") for a in answers), answers

        server.wait_for(r"table full: half-open freed/s [1-9]", 10)
        assert server.stop() == 0
        rep = json.load(open(s.path("flood_report.json")))
        c = rep["counters"]
        assert sent > 10 * ROWS, sent
        # every flood SYN reached the server or was dropped by Linux; curl's connections add theirs
        assert c["tcp_syns_in"] - len(answers) == sent - dropped, (c["tcp_syns_in"], len(answers), sent, dropped)
        # past the first ROWS, each SYN freed a half-open row, but for rows curl's closed connections freed
        assert c["tcp_syns_in"] - ROWS - len(answers) <= c["tcp_syn_evicted"] <= c["tcp_syns_in"] - ROWS, c
        assert c["tcp_table_full"] == 0, c
        assert rep["http"]["requests"] == len(answers), rep["http"]
        print(f"flood: {sent} SYNs sent, {dropped} dropped by Linux, {c['tcp_syns_in']} received, "
              f"{c['tcp_syn_evicted']} half-open rows freed, {len(answers)} curl answers")
    finally:
        s.close()
        ns.close()
