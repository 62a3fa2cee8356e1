"""`nperf bench sack`: goodput of one large transfer through the lb's impairment stage, SACK on
against SACK off.

An lb owns a TAP port in a network namespace of its own, with Linux on the
other side, and impairs both directions: 2 % loss, 10 % reordering, 1 ms
± 0.5 ms delay. An nperf server behind it serves a `--mib` MiB body (100).
curl in the namespace fetches it with Linux's SACK on (net.ipv4.tcp_sack=1:
both ends permit it) and off (NewReno), alternating, `--rounds` times. Each
transfer prints its time, goodput, and the server's retransmitted bytes
and timeouts; then the median ratio of goodput, on to off. Needs root, curl
and hugepages, like the tests; nothing leaves the namespace, and the
namespace, processes and DPDK files are removed at the end.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from nperf.bench import median_ratio
from nperf.data import SEED_TEST3
from nperf.subproc import Proc, clean_prefix

NS = "npbsack"
TAP = "npbsack0"
SERVER_IP, KERNEL_IP = "10.78.0.10", "10.78.0.1"
IMPAIR = "loss=2,reorder=10,delay_ms=1,jitter_ms=0.5"
PREFIX = f"npbsack{os.getpid()}"


def _in_ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *argv]


def _server_config(mib: int) -> dict:
    """The seed's test3 server, moved to SERVER_IP behind the lb, with one path of `mib` MiB."""
    cfg = json.load(open(os.path.join(SEED_TEST3, "s.json")))
    cfg["network"]["l3"].update(dst_ip_start=SERVER_IP, dst_ip_end=SERVER_IP, src_ip_start=KERNEL_IP,
                                src_ip_end=KERNEL_IP)
    cfg["network"]["l4"].update(dst_port_start=8000, dst_port_end=8000)
    cfg["network"]["l2"]["mac_address"] = "02:00:00:78:00:0a"
    cfg["http_config"]["paths"] = [dict(cfg["http_config"]["paths"][0], path="/big", response_body_size=mib << 20)]
    cfg["dpdk"] = {"iface": TAP, "args": f"--proc-type=secondary --file-prefix={PREFIX}", "is_dpdk_client": 1,
                   "client_ring_idx": 0, "core_id": 1}
    return cfg


def _write(d: str, name: str, obj) -> str:
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def transfer(d: str, mib: int, sack: bool) -> dict:
    """One fetch with Linux's SACK on or off: seconds, goodput and the server's counters."""
    lb_file = _write(d, "lb.json", {
        "dpdk_args": f"--vdev=net_tap0,iface={TAP} --proc-type=primary --file-prefix={PREFIX}",
        "core_id": 0, "num_clients": 1, "clients": [{"id": 0, "ips": [SERVER_IP]}]})
    report = os.path.join(d, "server.json")
    procs = []
    try:
        lb = Proc(_in_ns(sys.executable, "-m", "nperf", "lb", lb_file, "--impair", f"to_port:{IMPAIR}",
                         "--impair", f"to_workers:{IMPAIR}"), "lb")
        procs.append(lb)
        lb.wait_for(r"\] ready", 300)
        srv = Proc(_in_ns(sys.executable, "-m", "nperf", "server", _write(d, "s.json", _server_config(mib)),
                          "--report", report), "server")
        procs.append(srv)
        srv.wait_for(r"\] ready", 300)
        for argv in (("ip", "addr", "replace", f"{KERNEL_IP}/24", "dev", TAP), ("ip", "link", "set", TAP, "up"),
                     ("sysctl", "-qw", f"net.ipv4.tcp_sack={int(sack)}")):
            subprocess.run(_in_ns(*argv), check=True)
        t0 = time.monotonic()
        r = subprocess.run(_in_ns("curl", "-sS", "--max-time", "600", "-o", "/dev/null", "-w", "%{size_download}",
                                  f"http://{SERVER_IP}:8000/big"), capture_output=True, text=True, timeout=660)
        seconds = time.monotonic() - t0
        got = int(r.stdout or 0)
        if r.returncode != 0 or got != mib << 20:
            raise RuntimeError(f"curl got {got} of {mib << 20} bytes: {r.stderr.strip()}")
    finally:
        for p in reversed(procs):
            p.stop()
        clean_prefix(PREFIX)
    c = json.load(open(report))["counters"]
    return {"seconds": seconds, "mb_s": got / seconds / 1e6, **{k: c[k] for k in (
        "tcp_retransmit_bytes", "tcp_timeouts", "tcp_loss_probes", "tcp_sack_blocks_in", "tcp_sack_retransmits")}}


def main(args) -> int:
    mib = args.mib
    print(f"nperf bench sack: curl fetches {mib} MiB from an nperf server through the lb's impairment "
          f"({IMPAIR}, each way), Linux's SACK on and off alternating, {args.rounds} rounds")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    rows = {True: [], False: []}
    try:
        with tempfile.TemporaryDirectory(prefix="nperf-bench-sack-") as d:
            for r in range(1, args.rounds + 1):
                for sack in (True, False):
                    f = transfer(d, mib, sack)
                    rows[sack].append(f["mb_s"])
                    print(f"round {r} SACK {'on ' if sack else 'off'}: {f['seconds']:.1f} s, {f['mb_s']:.2f} MB/s, "
                          f"retransmitted {f['tcp_retransmit_bytes']:,} bytes, {f['tcp_timeouts']} timeouts, "
                          f"{f['tcp_loss_probes']} loss probes, "
                          f"{f['tcp_sack_blocks_in']:,} blocks in, {f['tcp_sack_retransmits']} holes resent",
                          flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    for sack in (True, False):
        print(f"SACK {'on ' if sack else 'off'}: median {statistics.median(rows[sack]):.2f} MB/s")
    print(f"goodput SACK on/off: median ratio {median_ratio(rows[True], rows[False]):.2f}")
    return 0
