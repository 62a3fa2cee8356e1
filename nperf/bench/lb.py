"""`nperf bench lb`: (a) the dispatch kernel alone, (b) lb forwarding vs testpmd, (c) an idle lb's CPU.

(a) runs `kernels.dispatch.sort_burst` on 32-frame bursts of NumPy-backed
mbufs (IPv4 to 8 workers, some IPv6 and ARP) on one core and prints Mpps.

(b) closes a memif loop: a generator testpmd (memif client, io forwarding,
`--tx-first`) keeps a fixed number of frames circulating through the device
under test (memif server) on the other CPU. The DUT is either testpmd io
forwarding (port to itself) or `nperf lb --loopback` (port → dispatch →
worker ring → port: the lb's whole data path without a worker process).
The generator's receive rate is the forwarding rate of both, measured the
same way.

(c) the same two DUTs with no generator: the share of a core each uses
while nothing arrives (testpmd busy-polls; an lb must back off, since two
cores host four processes), and how long the lb takes to exit on SIGTERM.
"""
import os
import signal
import statistics
import tempfile
import time

import numpy as np

from nperf.bench import median_ratio
from nperf.bench.mbufs import MemoryMbufs
from nperf.kernels import dispatch
from nperf.kernels.jit import kernel
from nperf.subproc import Proc, clean_prefix

GEN_IP = "198.18.0.2"     # where testpmd's tx-first frames go


def _frames() -> list[bytes]:
    def eth(ethertype, body):
        return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + ethertype.to_bytes(2, "big") + body
    out = []
    for i in range(32):
        if i % 8 == 6:
            dst = b"\xfd" + b"\0" * 14 + bytes([i])
            out.append(eth(0x86DD, b"\x60" + b"\0" * 7 + b"\xfd" + b"\0" * 15 + dst + b"\0" * 10))
        elif i % 8 == 7:
            sender = b"\0" * 6 + bytes([10, 0, 0, 1])
            target = b"\0" * 6 + bytes([10, 0, 1, i % 8])
            out.append(eth(0x0806, bytes([0, 1, 8, 0, 6, 4, 0, 1]) + sender + target))
        else:
            out.append(eth(0x0800, bytes([0x45]) + b"\0" * 15 + bytes([10, 0, 1, i % 8]) + b"\0" * 30))
    return out


def kernel_mpps(seconds: float) -> float:
    frames = _frames()
    mb = MemoryMbufs(len(frames))
    for i, f in enumerate(frames):
        mb.fill(i, f)
    v4 = [(0x0A000100 + w, w) for w in range(8)]
    v6 = [((0xFD << 120) + i, i % 8) for i in range(32)]
    table = dispatch.OwnerTable(v4, v6).arrays()
    buckets = np.zeros((8, 32), np.int64)
    blen = np.zeros(8, np.int64)
    drops = np.zeros(32, np.int64)
    counters = np.zeros(dispatch.N_COUNTERS, np.int64)
    loops = _time_bursts(mb.addrs, table, buckets, blen, drops, counters, 1000)  # compile, warm up
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        n += _time_bursts(mb.addrs, table, buckets, blen, drops, counters, 200_000)
    return n * 32 / (time.perf_counter() - t0) / 1e6 if loops else 0.0


@kernel
def _time_bursts(addrs, table, buckets, blen, drops, counters, loops):
    for _ in range(loops):
        dispatch.sort_burst(addrs, 32, table, buckets, blen, drops, counters)
        blen[:] = 0
    return loops


def _generator(sock: str, tag: str) -> Proc:
    return Proc(["stdbuf", "-oL", "dpdk-testpmd", "--lcores=40@0,41@0", "--no-pci", "--in-memory", "-m", "256",
                 f"--file-prefix=nb{tag}g", f"--vdev=net_memif,role=client,socket={sock},socket-abstract=no",
                 "--", "--forward-mode=io", "--tx-first", "--burst=64", "--auto-start", "--stats-period=1"],
                "generator")


def _dut_testpmd(sock: str, tag: str) -> Proc:
    return Proc(["stdbuf", "-oL", "dpdk-testpmd", "--lcores=50@1,51@1", "--no-pci", "--in-memory", "-m", "256",
                 f"--file-prefix=nb{tag}d", f"--vdev=net_memif,role=server,socket={sock},socket-abstract=no",
                 "--", "--forward-mode=io", "--auto-start", "--stats-period=5"], "testpmd DUT")


def _dut_lb(sock: str, tag: str, workdir: str) -> Proc:
    import json
    cfg = os.path.join(workdir, "lb.json")
    with open(cfg, "w") as f:
        json.dump({"dpdk_args": f"--vdev=net_memif,id=0,role=server,socket={sock},socket-abstract=no "
                                f"--proc-type=primary --file-prefix=nb{tag}l",
                   "core_id": 1, "num_clients": 1, "clients": [{"id": 0, "ips": [GEN_IP]}]}, f)
    import sys
    p = Proc([sys.executable, "-m", "nperf", "lb", cfg, "--core", "1", "--loopback"], "nperf lb DUT")
    p.wait_for(r"\] ready", 120)
    return p


def _dut(which: str, sock: str, tag: str, workdir: str) -> Proc:
    return _dut_lb(sock, tag, workdir) if which == "nperf" else _dut_testpmd(sock, tag)


def _clean(tag: str) -> None:
    """What the generator and either DUT leave in the runtime directory (they are all stopped)."""
    for prefix in (f"nb{tag}g", f"nb{tag}d", f"nb{tag}l"):
        clean_prefix(prefix)


def forwarding_mpps(which: str, seconds: float, workdir: str) -> float:
    """Median generator receive rate over `seconds` with DUT `which`."""
    tag = f"{os.getpid()}{which[0]}"
    sock = os.path.join(workdir, f"{which}.sock")
    dut = _dut(which, sock, tag, workdir)
    if which != "nperf":
        time.sleep(2)  # testpmd prints nothing we could wait for before it listens
    gen = _generator(sock, tag)
    try:
        rates = []
        deadline = time.monotonic() + seconds + 30
        while len(rates) < seconds + 2 and time.monotonic() < deadline:
            rates.append(int(gen.wait_for(r"Rx-pps:\s+(\d+)", 30).group(1)))
        return statistics.median(rates[2:]) / 1e6 if len(rates) > 2 else 0.0
    finally:
        gen.stop()
        dut.stop()
        _clean(tag)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat utime and stime)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(which: str, seconds: float, workdir: str) -> tuple[float, float]:
    """(share of a core used over `seconds` with nothing arriving, seconds from SIGTERM to exit)."""
    tag = f"{os.getpid()}i{which[0]}"
    sock = os.path.join(workdir, f"idle-{which}.sock")
    dut = _dut(which, sock, tag, workdir)
    try:
        time.sleep(2)               # past start-up work
        before = cpu_seconds(dut.p.pid)
        time.sleep(seconds)
        share = (cpu_seconds(dut.p.pid) - before) / seconds
        t0 = time.monotonic()
        dut.stop(signal.SIGTERM)
        return share, time.monotonic() - t0
    finally:
        dut.stop()
        _clean(tag)


def main(args) -> int:
    secs = args.seconds
    print(f"(a) dispatch kernel alone, one core: {kernel_mpps(secs):.1f} Mpps (target >= 20)")
    ours, peer = [], []
    shares, stops, peer_shares = [], [], []
    with tempfile.TemporaryDirectory(prefix="nperf-bench-") as workdir:
        for r in range(args.rounds):
            ours.append(forwarding_mpps("nperf", secs, workdir))
            peer.append(forwarding_mpps("testpmd", secs, workdir))
            print(f"(b) round {r + 1}: nperf lb {ours[-1]:.2f} Mpps, testpmd io {peer[-1]:.2f} Mpps, "
                  f"ratio {ours[-1] / peer[-1] if peer[-1] else float('nan'):.2f}", flush=True)
        for r in range(args.rounds):
            share, stop = idle_share("nperf", secs, workdir)
            shares.append(share)
            stops.append(stop)
            peer_shares.append(idle_share("testpmd", secs, workdir)[0])
            print(f"(c) round {r + 1}: idle nperf lb {shares[-1]:.1%} of a core, idle testpmd {peer_shares[-1]:.1%}; "
                  f"lb exit on SIGTERM {stop:.2f} s", flush=True)
    print(f"(b) lb forwarding over memif vs testpmd io forwarding: median ratio "
          f"{median_ratio(ours, peer):.2f} (target >= 0.5); nperf median {statistics.median(ours):.2f} Mpps, "
          f"testpmd median {statistics.median(peer):.2f} Mpps")
    print(f"(c) idle lb: median {statistics.median(shares):.1%} of a core (target < 20%), testpmd "
          f"{statistics.median(peer_shares):.1%}; exit on SIGTERM median {statistics.median(stops):.2f} s "
          f"(target < 2 s)")
    return 0
