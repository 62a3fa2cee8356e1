"""A client stack and a server stack wired back to back on arrays, without DPDK.

Each side runs as its poll loop would (frames in, timers, the client's
scheduler, output, frames out), and what one side queues is delivered to the
other at the next step, optionally dropping frames. The frames themselves
are copied between the sides' own NumPy-backed mbufs.
"""
import random

from nperf.config import load_worker
from nperf.fake_mbufs import FakeMbufs
from nperf.kernels import client_app as ca
from nperf.kernels import client_sched, stack as st, tcp, worker_loop
from nperf.worker_stack import StackOptions, build_stack
from tests.tcp_wire import HERE

CLIENT_MAC = bytes.fromhex("02000000c001")
SERVER_MAC = bytes.fromhex("02000000c002")
POOL = 4096


class Side:
    def __init__(self, cfg, role: str, mac: bytes, opts: StackOptions):
        self.s = build_stack(cfg, role, mac, opts)
        self.pool = FakeMbufs(POOL)
        self.free = list(self.pool.addrs)
        self.index = {int(a): i for i, a in enumerate(self.pool.addrs)}
        self.refill()

    def refill(self) -> None:
        s = self.s
        while s.var[st.V_STASH_N] < s.stash.shape[0] and self.free:
            s.stash[s.var[st.V_STASH_N]] = self.free.pop()
            s.var[st.V_STASH_N] += 1

    def deliver(self, frames: list[bytes], now: int) -> None:
        for f in frames:
            m = self.free.pop()
            self.pool.fill(self.index[m], f)
            if not worker_loop.frame_input(self.s, m, now):
                self.free.append(m)

    def run(self, now: int) -> list[bytes]:
        s = self.s
        worker_loop.run_timers(s, now)
        client_sched.tick(s, now)
        tcp.work_run(s, now)
        out = []
        for i in range(s.var[st.V_TXQ_N]):
            m = int(s.txq[i])
            out.append(self.pool.data(self.index[m]))
            self.free.append(m)
        s.var[st.V_TXQ_N] = 0
        self.refill()
        return out


class Pair:
    """`client` and `server` Sides; `run(seconds)` steps both until the client finishes."""

    def __init__(self, client_changes=None, server_opts=None, client_opts=None, loss=0.0, seed=1):
        scfg, _ = load_worker(HERE / "seed_configs/memif/test4/s.json")
        ccfg, _ = load_worker(HERE / "seed_configs/memif/test4/c.json")
        for section, values in (client_changes or {}).items():
            for k, v in values.items():
                setattr(getattr(ccfg, section), k, v)
        self.server = Side(scfg, "server", SERVER_MAC, server_opts or StackOptions(max_conns=4096))
        self.client = Side(ccfg, "client", CLIENT_MAC, client_opts or StackOptions(max_conns=4096))
        self.loss = loss
        self.rng = random.Random(seed)
        self.now = 1_000_000
        self.lost = 0

    def _wire(self, frames):
        if not self.loss:
            return frames
        kept = [f for f in frames if self.rng.random() >= self.loss]
        self.lost += len(frames) - len(kept)
        return kept

    def run(self, seconds: float, step_us: int = 100) -> None:
        to_server, to_client = [], []
        end = self.now + int(seconds * 1e6)
        while self.now < end and not client_sched.finished(self.client.s):
            self.now += step_us
            self.server.deliver(self._wire(to_server), self.now)
            self.client.deliver(self._wire(to_client), self.now)
            to_client = self.server.run(self.now)
            to_server = self.client.run(self.now)

    def client_counter(self, name: str) -> int:
        return int(self.client.s.counters[st.CS_CLIENT + ca.CLIENT_COUNTER_NAMES.index(name)])

    def schedule(self, phases_s: list[float], **objective) -> None:
        """Cumulative phase ends (prepare .. close, seconds) and objective words (K_* by lower-case name)."""
        k = self.client.s.app.sched
        for i, end in enumerate(phases_s):
            k[ca.K_PH_PREPARE + i] = int(end * 1e6)
        for name, value in objective.items():
            k[getattr(ca, "K_" + name.upper())] = value

    def counter(self, side: Side, name: str) -> int:
        return int(side.s.counters[st.COUNTER_NAMES.index(name)])
