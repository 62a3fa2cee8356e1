"""A client stack and a server stack wired back to back on arrays, without DPDK.

Each side runs production's `worker_turn` on in-memory queues (io.ARRAYS);
what one side transmits is moved to the other side's receive queue before
its next turn, optionally dropping frames. Both sides share one pool of
mbufs, so a frame moves by address, never copied.
"""
import random

import numpy as np

from nperf.config import load_worker
from nperf.bench.mbufs import MemoryMbufs
from nperf.kernels import cfn, client_sched, io, worker_loop
from nperf.kernels import client_app as ca
from nperf.kernels import stack as st
from nperf.roles.worker_stack import StackOptions, build_stack
from tests.http_peer import set_schedule
from tests.tcp_wire import HERE

CLIENT_MAC = bytes.fromhex("02000000c001")
SERVER_MAC = bytes.fromhex("02000000c002")
POOL = 8192
FNS = np.zeros(len(cfn.CFN_NAMES), np.int64)        # the ARRAYS kind calls no C


class Side:
    def __init__(self, cfg, role: str, mac: bytes, opts: StackOptions, pool: np.ndarray):
        self.s = build_stack(cfg, role, mac, opts)
        self.io = io.array_io(io.new_queue(POOL), io.new_queue(POOL), pool)
        self.scratch = worker_loop.LoopScratch().arrays()

    def sent(self) -> list[int]:
        q = self.io.tx
        cap = q.shape[0] - io.Q_FIRST
        out = [int(q[io.Q_FIRST + i % cap]) for i in range(q[io.Q_HEAD], q[io.Q_TAIL])]
        q[io.Q_HEAD] = q[io.Q_TAIL]
        return out

    def receive(self, addrs: list[int]) -> None:
        q = self.io.rx
        cap = q.shape[0] - io.Q_FIRST
        for m in addrs:
            q[io.Q_FIRST + q[io.Q_TAIL] % cap] = m
            q[io.Q_TAIL] += 1

    def turn(self, now: int) -> None:
        while True:        # every queued frame, a burst per turn, then one more turn for timers and output
            left = self.io.rx[io.Q_TAIL] - self.io.rx[io.Q_HEAD]
            worker_loop.worker_turn(FNS, self.io, self.s, self.scratch, now)
            if left <= worker_loop.BURST:
                return


class Pair:
    """`client` and `server` Sides; `run(seconds)` steps both until the client finishes."""

    def __init__(self, client_changes=None, server_opts=None, client_opts=None, loss=0.0, seed=1):
        scfg, _ = load_worker(HERE / "seed_configs/memif/test4/s.json")
        ccfg, _ = load_worker(HERE / "seed_configs/memif/test4/c.json")
        for section, values in (client_changes or {}).items():
            for k, v in values.items():
                setattr(getattr(ccfg, section), k, v)
        self.mbufs = MemoryMbufs(POOL)
        self.pool = io.new_pool(self.mbufs.addrs)
        self.server = Side(scfg, "server", SERVER_MAC, server_opts or StackOptions(max_conns=4096), self.pool)
        self.client = Side(ccfg, "client", CLIENT_MAC, client_opts or StackOptions(max_conns=4096), self.pool)
        self.loss = loss
        self.rng = random.Random(seed)
        self.now = 1_000_000
        self.lost = 0

    def _wire(self, addrs: list[int]) -> list[int]:
        """The frames that arrive; a lost one goes back to the pool."""
        if not self.loss:
            return addrs
        kept = []
        for m in addrs:
            if self.rng.random() >= self.loss:
                kept.append(m)
            else:
                io._pool_put(self.pool, np.array([m], np.int64), 1)
                self.lost += 1
        return kept

    def run(self, seconds: float, step_us: int = 100) -> None:
        end = self.now + int(seconds * 1e6)
        while self.now < end and not client_sched.finished(self.client.s):
            self.now += step_us
            self.server.receive(self._wire(self.client.sent()))
            self.client.receive(self._wire(self.server.sent()))
            self.server.turn(self.now)
            self.client.turn(self.now)

    def client_counter(self, name: str) -> int:
        return int(self.client.s.counters[st.CS_CLIENT + ca.CLIENT_COUNTER_NAMES.index(name)])

    def schedule(self, phases_s: list[float], **objective) -> None:
        set_schedule(self.client.s, phases_s, **objective)

    def counter(self, side: Side, name: str) -> int:
        return int(side.s.counters[st.COUNTER_NAMES.index(name)])
