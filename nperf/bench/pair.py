"""A client stack and a server stack back to back in one process, for the benchmarks.

Both run production's `worker_turn` on in-memory queues (`kernels.io`
ARRAYS kind): the client's transmit queue is the server's receive queue and
the other way round, and both take mbufs from one in-memory pool, so a frame
crosses by address. `run_pair` alternates one turn of each side in a
kernel, on the TSC clock, and adds up each side's cycles apart.
"""
import os
import time
from dataclasses import dataclass

import numpy as np

from nperf import config, perf_map
from nperf.bench.mbufs import MemoryMbufs
from nperf.bindings.intrinsics import rdtsc
from nperf.bench import to_ipv6
from nperf.data import SEED_TEST3
from nperf.kernels import cfn, client_sched, io, worker_loop
from nperf.kernels import client_app as ca
from nperf.kernels import stack as st
from nperf.kernels.jit import kernel
from nperf.roles.worker_stack import StackOptions, build_stack

CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")
POOL = 16384
QUEUE = 16384
CHUNK_TURNS = 2000


@kernel
def run_pair(fns, cio, cs, cscratch, sio, ss, sscratch, turns, tsc0, cycles_per_us, cycles):
    """Up to `turns` turns of each side; cycles[0] and [1] add the client's and the server's."""
    for _ in range(turns):
        t0 = rdtsc()
        worker_loop.worker_turn(fns, cio, cs, cscratch, np.int64((t0 - tsc0) / cycles_per_us))
        t1 = rdtsc()
        worker_loop.worker_turn(fns, sio, ss, sscratch, np.int64((t1 - tsc0) / cycles_per_us))
        t2 = rdtsc()
        cycles[0] += t1 - t0
        cycles[1] += t2 - t1
        if client_sched.finished(cs):
            return


@kernel
def tsc_now():
    return rdtsc()


def tsc_hz(calibrate_s: float = 0.2) -> float:
    tsc_now()                                  # compiled or loaded before the clock starts
    t0, c0 = time.perf_counter(), tsc_now()
    time.sleep(calibrate_s)
    return (tsc_now() - c0) / (time.perf_counter() - t0)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Phases:
    prepare: float = 0.3
    ramp_up: float = 0.2
    sustain: float = 3.0
    ramp_down: float = 0.0
    close: float = 0.3


class Pair:
    """The seed's test3 client and server (their http_config and addresses) on in-memory queues."""

    def __init__(self, max_conns: int, time_wait_ms: int = 1000, ipv6: bool = False):
        ccfg, _ = config.load_worker(os.path.join(SEED_TEST3, "c.json"))
        scfg, _ = config.load_worker(os.path.join(SEED_TEST3, "s.json"))
        if ipv6:
            for cfg in (ccfg, scfg):
                to_ipv6(cfg)
        self.c = build_stack(ccfg, "client", CLIENT_MAC, StackOptions(max_conns=max_conns, time_wait_ms=time_wait_ms))
        self.s = build_stack(scfg, "server", SERVER_MAC, StackOptions(max_conns=max_conns, time_wait_ms=time_wait_ms))
        self.mbufs = MemoryMbufs(POOL)
        pool = io.new_pool(self.mbufs.addrs)
        to_server, to_client = io.new_queue(QUEUE), io.new_queue(QUEUE)
        self.cio = io.array_io(to_client, to_server, pool)
        self.sio = io.array_io(to_server, to_client, pool)
        self.cscratch = worker_loop.LoopScratch().arrays()
        self.sscratch = worker_loop.LoopScratch().arrays()
        self.fns = np.zeros(len(cfn.CFN_NAMES), np.int64)      # in-memory I/O calls no C
        self.cycles = np.zeros(2, np.int64)
        self.hz = tsc_hz()
        self.tsc0 = int(tsc_now())

    def objective(self, kind: int, value: int, rpc: int) -> None:
        k = self.c.app.sched
        k[ca.K_TYPE], k[ca.K_VALUE], k[ca.K_RPC] = kind, value, rpc

    def _phases(self, p: Phases) -> None:
        at = 0.0
        for i, secs in enumerate((p.prepare, p.ramp_up, p.sustain, p.ramp_down, p.close)):
            at += secs
            self.c.app.sched[ca.K_PH_PREPARE + i] = int(at * 1e6)

    def _run(self, turns: int = CHUNK_TURNS) -> None:
        run_pair(self.fns, self.cio, self.c, self.cscratch, self.sio, self.s, self.sscratch, turns, self.tsc0,
                 self.hz / 1e6, self.cycles)

    def phase(self) -> int:
        return int(self.c.app.sched[ca.K_PHASE])

    def warm_up(self) -> None:
        """Compile (or load) run_pair: a few turns of an idle pair."""
        self._phases(Phases(prepare=0.01, ramp_up=0.0, sustain=0.0, close=0.0))
        self._run(10)

    def _snapshot(self) -> dict:
        cc = self.c.counters[st.CS_CLIENT:]
        return {"cycles": self.cycles.copy(), "tsc": int(tsc_now()), "ok": int(cc[ca.CC_OK]),
                "opened": int(self.c.counters[st.C_CONN_OPENED]),
                "frames": int(self.c.counters[st.C_TX_FRAMES] + self.s.counters[st.C_TX_FRAMES])}

    def measure(self, phases: Phases, what: str) -> dict:
        """Run the phases; rates over the sustain phase ("cps": connections, "rps": responses)."""
        self._phases(phases)
        self._run()
        perf_map.write()              # NPERF_PERF_MAP=1: name the kernels for perf (they are loaded now)
        while self.phase() < ca.PH_SUSTAIN:
            self._run()
        a = self._snapshot()
        while self.phase() == ca.PH_SUSTAIN:
            self._run()
        b = self._snapshot()
        while not client_sched.finished(self.c):
            self._run()
        count = b["opened" if what == "cps" else "ok"] - a["opened" if what == "cps" else "ok"]
        cyc = b["cycles"] - a["cycles"]
        n = max(count, 1)
        cc = self.c.counters[st.CS_CLIENT:]
        drops = sum(int(v) for stack in (self.c, self.s)
                    for name, v in zip(st.COUNTER_NAMES, stack.counters) if name.startswith("drop_"))
        return {"count": count, "seconds": (b["tsc"] - a["tsc"]) / self.hz,
                "client_rate": count * self.hz / max(cyc[0], 1), "server_rate": count * self.hz / max(cyc[1], 1),
                "client_ns": cyc[0] / self.hz * 1e9 / n, "server_ns": cyc[1] / self.hz * 1e9 / n,
                "pair_rate": count * self.hz / max(b["tsc"] - a["tsc"], 1), "frames": (b["frames"] - a["frames"]) / n,
                "failures": int(sum(cc[i] for i in ca.FAILED_AT_ALL)),
                "retransmits": int(self.c.counters[st.C_TCP_RETRANSMITS] + self.s.counters[st.C_TCP_RETRANSMITS]),
                "drops": drops}

    def hold(self, n: int, limit_s: float = 120.0) -> tuple[int, float]:
        """Open n connections (TCP_CONCURRENT) and keep them; returns (established, seconds taken)."""
        self._phases(Phases(sustain=limit_s))
        t0 = time.perf_counter()
        while self.phase() < ca.PH_SUSTAIN:
            self._run()
        k = self.c.app.sched
        while int(self.s.counters[st.C_CONN_OPENED]) < n and time.perf_counter() - t0 < limit_s:
            self._run()
        return int(min(k[ca.K_ACTIVE], self.s.counters[st.C_CONN_OPENED])), time.perf_counter() - t0
