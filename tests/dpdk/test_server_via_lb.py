"""`nperf server` attached to an `nperf lb` whose port is a TAP facing the kernel's curl, over IPv4
and over IPv6 (the lb hands neighbour solicitations to the worker that owns their target)."""
import json
import sys

import pytest

from tests.netns import Netns
from tests.server_setup import ADDRESSES, kernel_side_up, tap_server_config, url_host
from tests.dpdk.test_server_tap import BIG, pattern_digest

TAP = "nptap1"


@pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])
def test_curl_through_the_lb(session, version):
    s = session
    _, first, last, _ = ADDRESSES[version]
    host = url_host(version)
    second = last if version == 4 else f"[{last}]"
    ns = Netns("lb")
    try:
        prefix = s.prefix("tl")
        lb_cfg = s.write_json("lb.json", {
            "dpdk_args": f"--vdev=net_tap0,iface={TAP} --proc-type=primary --file-prefix={prefix}",
            "core_id": 5, "num_clients": 1, "clients": [{"id": 0, "ips": [first, last]}]})
        lb = s.start(ns.argv(sys.executable, "-m", "nperf", "lb", lb_cfg, "--report", s.path("lb.json.out")), "lb")
        lb.wait_for(r"\] ready", 300)
        srv_cfg = s.write_json("s.json", tap_server_config(TAP, lb_prefix=prefix, version=version))
        srv = s.start(ns.argv(sys.executable, "-m", "nperf", "server", srv_cfg, "--report", s.path("srv.out")),
                      "server")
        srv.wait_for(r"\] ready: mac [0-9a-f:]+, lb ring pair 0", 300)
        kernel_side_up(ns, TAP, version)

        r = ns.run("curl", "-sS", "--max-time", "30", "-D", "-", "-o", "/dev/null", f"http://{host}:8000/hello")
        assert r.stdout.split("\n")[:4] == ["HTTP/1.1 200 OK", "Server: unetbsd", "Content-Type: text/plain",
                                           "Content-Length: 100"]
        r = ns.run("curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}",
                   f"http://{second}:8001/missing")
        assert r.stdout == "404"
        r = ns.run("sh", "-c", f"curl -sS --max-time 60 'http://{host}:8000/another' | sha256sum", timeout=90)
        assert r.stdout.split()[0] == pattern_digest(BIG)
        assert " 0% packet loss" in ns.run("ping", f"-{version}", "-c", "2", "-i", "0.2", first, check=False).stdout

        assert srv.stop() == 0 and lb.stop() == 0
        lb_rep = json.load(open(s.path("lb.json.out")))
        srv_rep = json.load(open(s.path("srv.out")))
        # every frame the lb handed the server was received by it, and the other way round
        w = lb_rep["workers"][0]            # (a late retransmission may land after the server's last read)
        assert w["to_worker"] - w["unread_at_stop"] == srv_rep["counters"]["rx_frames"]
        assert lb_rep["workers"][0]["from_worker"] == srv_rep["counters"]["tx_frames"]
        assert lb_rep["drops"]["worker_ring_full"] == 0 and lb_rep["drops"]["port_tx_full"] == 0
    finally:
        s.close()
        ns.close()
