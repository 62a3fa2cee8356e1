"""`nperf bench tcp`: nperf's client and server kernels back to back on one core, no I/O.

The real client stack (phases, scheduler, HTTP client) and the real server
stack each run production's `worker_turn` (nperf.kernels.worker_loop) on
in-memory queues (`kernels.io.ARRAYS`): what one side transmits is the
other's next receive burst, by mbuf address, with no copy and no Python per
packet (`pair.run_pair`). Time is the TSC, so timers fire as in a worker.
The cycles of each side's turns are measured apart, so each figure reads as
"what one core gives this side": server conn/s is connections over the
server's own cycles. Both sides check every checksum they receive.

(a) connections per second: 1,000 concurrent connections, one request each
    (the client's `Connection: close`, the server closes first), 100-byte
    body: the direct-memif setup of `nperf bench dperf`, without the link.
(b) keep-alive requests per second on 1,000 connections.
(c) memory per held connection: RSS growth while both stacks hold
    `--conns` keep-alive connections (TCP_CONCURRENT), against the
    preallocated figure (`worker_stack.memory_per_connection`).

The figures come from a fresh process that loads the kernels from Numba's
cache (`nperf.warmup` compiles them first), as a worker does.
"""
import os
import subprocess
import sys
import time

from nperf.bench.pair import Pair, Phases, rss
from nperf.kernels import client_app as ca
from nperf.roles.worker_stack import memory_per_connection

CONNECTIONS = 1000


def _line(name: str, fig: dict, unit: str) -> str:
    return (f"{name}: client {fig['client_rate']:,.0f} {unit} per core ({fig['client_ns']:,.0f} ns each), "
            f"server {fig['server_rate']:,.0f} {unit} per core ({fig['server_ns']:,.0f} ns each); "
            f"the pair on one core {fig['pair_rate']:,.0f} {unit}; {fig['frames']:.2f} frames each; "
            f"{fig['count']:,} in {fig['seconds']:.1f} s; failures {fig['failures']}, "
            f"retransmissions {fig['retransmits']}, drops {fig['drops']}")


def measure(seconds: float) -> int:
    print(f"nperf bench tcp: client and server kernels back to back on one core, no I/O; "
          f"{seconds:g} s of sustain per line", flush=True)
    ok = True
    for name, rpc, unit in (("(a) connections, 1 request each", 1, "conn/s"),
                            ("(b) keep-alive requests, 1,000 connections", 1 << 40, "req/s")):
        pair = Pair(max_conns=1 << 20)
        pair.objective(ca.O_HTTP_REQUESTS, CONNECTIONS, rpc)
        fig = pair.measure(Phases(sustain=seconds), "cps" if rpc == 1 else "rps")
        ok &= fig["failures"] == 0 and fig["drops"] == 0
        print(_line(name, fig, unit), flush=True)
    n = int(os.environ.get("NPERF_BENCH_HELD", 200_000))
    before = rss()
    pair = Pair(max_conns=n + 1024)
    built = rss()
    pair.objective(ca.O_TCP_CONCURRENT, n, 1)
    held, secs = pair.hold(n)
    grown = rss()
    ok &= held == n
    mib = 1 << 20
    print(f"(c) memory: {memory_per_connection():,} bytes/connection preallocated per side; RSS growth "
          f"{(grown - before) / n / 2:,.0f} bytes/connection per side with {held:,} connections held by both "
          f"({(built - before) / mib:,.0f} MiB at build, {(grown - built) / mib:,.0f} MiB as they opened "
          f"in {secs:.1f} s)", flush=True)
    return 0 if ok else 1


def main(args) -> int:
    """Warm the kernel cache in one process, measure in a fresh one that loads it (as a worker does)."""
    t0 = time.perf_counter()
    Pair(max_conns=64).warm_up()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    print(f"(kernels compiled or loaded in {time.perf_counter() - t0:.1f} s)", flush=True)
    code = "import sys; from nperf.bench.tcp import measure; sys.exit(measure(float(sys.argv[1])))"
    return subprocess.run([sys.executable, "-c", code, str(args.seconds)], env=env).returncode
