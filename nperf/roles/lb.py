"""`nperf lb CONFIG`: the DPDK primary that shares one port among workers.

Owns the port, the packet pool, one RX and one TX ring per worker and the
shared area (`nperf.roles.lb_shared`). The data plane is `kernels.lb_loop.lb_poll`;
this module only starts and stops things and reads counters once a second.
"""
import ipaddress
import os
import time

import msgspec
import numpy as np

from nperf import eal, perf_map, reports
from nperf.roles import pcapng
from nperf.bindings import dpdk
from nperf.kernels import capture, dispatch, impair, io, lb_loop, poll
from nperf.roles.lb_shared import (HDR_LINK, HDR_STATE, POOL_NAME, STATE_READY, STATE_STOPPING, SharedArea,
                             rx_ring_name, tx_ring_name)
from nperf.reports import LbReport, PoolUse, PortCounters, WorkerCounters
from nperf.stats_format import count, rate_line

SLICE_S = 0.01            # one kernel call forwards for this long
IDLE_S = 0.0002           # no packet for this long: start sleeping
MAX_IDLE_SLEEP_NS = 200_000


def owner_table(cfg) -> dispatch.OwnerTable:
    """IP → position in `cfg.clients` (also the index of the worker's rings)."""
    v4, v6 = [], []
    for pos, worker in enumerate(cfg.clients):
        for text in worker.ips:
            ip = ipaddress.ip_address(text)
            (v4 if ip.version == 4 else v6).append((int(ip), pos))
    return dispatch.OwnerTable(v4, v6)


class Lb:
    """One lb process; `start()` brings it up, the controller drives the rest."""

    def __init__(self, cfg, config_name: str, *, core: int | None = None, ring_size: int = 4096,
                 pool_size: int | None = None, loopback: bool = False, report: str | None = None,
                 say=print, pcap: str | None = None, pcap_count: int = 0):
        self.cfg = cfg
        self.pcap = pcap
        self.pcap_count = pcap_count if pcap else 0
        self.name = f"lb {os.path.splitext(os.path.basename(config_name))[0]}"
        self.config_name = config_name
        self.core = core
        self.ring_size = ring_size
        self.pool_size = pool_size or 8192 + len(cfg.clients) * 3 * ring_size
        self.loopback = loopback
        self.report_path = report
        self.say = say
        self.seconds = 0
        self._last = None
        self._last_poll = None
        self.port = None
        self.eal_up = False         # EAL initialised: finish() must clean it up, whatever start() reached
        self.running = False        # start() completed: finish() flushes and reports
        self.final = None
        self.ready_detail = ""

    def start(self) -> None:
        from nperf import warmup          # (warmup imports this module)
        warmup.prepare("lb", lambda line: self.say(f"[{self.name}] {line}"))
        self.eal_args, lcore, cpu, warning = eal.build(self.cfg.dpdk_args, self.cfg.core_id, self.core, self.name)
        if eal.proc_type(self.eal_args) != "primary":
            raise dpdk.DpdkError(f"{self.name}: an lb must be a DPDK primary (--proc-type=primary in dpdk_args)")
        if warning:
            self.say(f"warning: {warning}")
        dpdk.eal_init(self.eal_args)
        self.eal_up = True
        nports = dpdk.Port.count()
        if nports == 0:
            raise dpdk.DpdkError("no DPDK port: give a --vdev (memif, af_packet, tap...) or bind a NIC")
        self.pool = dpdk.Pool.create(POOL_NAME, self.pool_size)
        self.port = dpdk.Port(0)
        checksums = self.port.setup(self.pool)
        ids = [w.id for w in self.cfg.clients]
        self.rx = [dpdk.Ring.create(rx_ring_name(i), self.ring_size) for i in ids]
        self.tx = self.rx if self.loopback else [dpdk.Ring.create(tx_ring_name(i), self.ring_size) for i in ids]
        self.area = SharedArea.create(ids, self.port.mac(), lcore, checksums)
        self.fns = dpdk.function_table()
        self.budget = int(dpdk.tsc_hz() * SLICE_S)
        self.idle = int(dpdk.tsc_hz() * IDLE_S)
        self.table = owner_table(self.cfg).arrays()
        self.scratch = lb_loop.LbScratch(len(ids), self.pcap_count)
        self.io = io.dpdk_io(io.PORT, self.port.id, self.port.id, self.pool.addr)   # (the stage's mbufs)
        self.impair = impair.new_impairment(_impair_directions(self.cfg.impair), dpdk.tsc_hz(),
                                            self.cfg.impair.seed if self.cfg.impair else 1)
        hz = dpdk.tsc_hz()
        self.tsc_per_us = hz / 1e6          # the capture's clock is the TSC: wall time = epoch + tsc / rate
        self.epoch_us = time.time_ns() // 1000 - int(dpdk.lib.np_tsc(0, 0, 0, 0) / self.tsc_per_us)
        self.rx_addrs = _addrs(self.rx)
        self.unread = [0] * len(ids)        # per worker, counted at exit
        self.tx_addrs = _addrs(self.tx)
        self.wcounters = self.area.worker_counters[:len(ids)]
        self._base_stats = self.port.stats()
        self._poll(0)            # compiles (or loads) the kernel before saying "ready"
        perf_map.write()
        self.pool_start = self.pool.in_use()     # the port's RX descriptors hold their share already
        self.area.words[HDR_STATE] = STATE_READY
        self.running = True
        self.ready_detail = (f"port {self.port.name} mac {_mac(self.port.mac())}, "
                             f"{len(ids)} worker ring pair(s), lcore {lcore} on CPU {cpu}"
                             + (", the port verifies received checksums" if checksums else "")
                             + _impair_text(self.cfg.impair))
        self.say(f"[{self.name}] ready: {self.ready_detail}")

    def poll_slice(self) -> bool:
        self._poll(self.budget)
        return True

    def _poll(self, budget: int) -> None:
        lb_loop.lb_poll(self.fns, self.port.id, self.rx_addrs, self.tx_addrs, self.table,
                        self.scratch.arrays(), self.area.counters, self.wcounters, self.io, self.impair,
                        budget, self.idle, MAX_IDLE_SLEEP_NS)

    def _sync_port_drops(self) -> None:
        """Drops the PMD counts itself (no mbuf, RX ring overrun), as deltas since start."""
        s = self.port.stats()
        if not s:
            return
        c = self.area.counters
        c[dispatch.DROP_NO_MBUF] = max(c[dispatch.DROP_NO_MBUF], s["rx_nombuf"] - self._base_stats["rx_nombuf"])
        c[dispatch.DROP_RX_MISSED] = max(c[dispatch.DROP_RX_MISSED], s["imissed"] - self._base_stats["imissed"])

    def second(self, elapsed: int) -> tuple[str, dict]:
        self.seconds = elapsed
        self._sync_port_drops()
        up = self.port.link_up()
        self.area.words[HDR_LINK] = int(up)
        c = self.area.counters.copy()
        d = c - (self._last if self._last is not None else 0)
        self._last = c
        drops = self.drops()
        dropped = ", ".join(f"{k} {count(v)}" for k, v in drops.items() if v) or "none"
        in_use = self.pool.in_use()
        state = self.scratch.state[:poll.N_POLL_STATE].copy()
        busy = poll.busy_share(self._last_poll if self._last_poll is not None else state * 0, state)
        self._last_poll = state
        line = (f"[{self.name}] [{elapsed:3d}s] link {'up' if up else 'down'}  "
                f"rx {rate_line(d[dispatch.RX_PACKETS], d[dispatch.RX_BYTES])}  "
                f"tx {rate_line(d[dispatch.TX_PACKETS], d[dispatch.TX_BYTES])}  "
                f"busy {busy:.0%}  pool {count(in_use)}/{count(self.pool_size)}  drops since start: {dropped}")
        fields = {"link": int(up), "rx_pps": int(d[dispatch.RX_PACKETS]), "tx_pps": int(d[dispatch.TX_PACKETS]),
                  "rx_mbps": float(d[dispatch.RX_BYTES] * 8 / 1e6), "tx_mbps": float(d[dispatch.TX_BYTES] * 8 / 1e6),
                  "drops": sum(drops.values()), "busy": busy, "pool_in_use": in_use}
        fields.update({f"drop_{k}": v for k, v in drops.items()})     # by cause, since start
        return line, fields

    def status(self) -> int:
        return 0

    def drops(self) -> dict[str, int]:
        c = self.area.counters
        return {name: int(c[dispatch.DROP_FIRST + i]) for i, name in enumerate(dispatch.DROP_NAMES)}

    def report(self, pool: PoolUse | None = None) -> LbReport:
        c = self.area.counters
        port = PortCounters(self.port.name, _mac(self.port.mac()), int(c[dispatch.RX_PACKETS]),
                            int(c[dispatch.TX_PACKETS]), int(c[dispatch.RX_BYTES]), int(c[dispatch.TX_BYTES]))
        names = lb_loop.WORKER_COUNTER_NAMES
        workers = [WorkerCounters(w.id, **{n: int(v) for n, v in zip(names, self.wcounters[pos])},
                                  unread_at_stop=self.unread[pos])
                   for pos, w in enumerate(self.cfg.clients)]
        return LbReport("lb", self.config_name, self.seconds, port, self.drops(), workers,
                        int(c[dispatch.ANNOUNCEMENTS]), pool, impair.counters(self.impair) or None)

    def finish(self) -> None:
        """Stop: flush and report if start() completed; in any case close what start() opened,
        so that a start that failed partway leaves no port, runtime directory or hugepage file."""
        if self.running:
            self.running = False
            self.area.words[HDR_STATE] = STATE_STOPPING
            lb_loop.lb_flush(self.fns, self.port.id, self.scratch.arrays(), self.area.counters, self.io,
                             self.impair, 100)
            self._sync_port_drops()
            report = self.report(self._pool_use())
            self.say(f"[{self.name}] stopped: rx {count(report.port.rx_packets)} packets, "
                     f"tx {count(report.port.tx_packets)} packets, drops {sum(report.drops.values())}, "
                     f"pool {count(report.pool.in_use_end)} in use (at start {count(report.pool.in_use_start)})")
            for direction, counts in (report.impair or {}).items():
                self.say(f"[{self.name}] impaired {direction}: "
                         + ", ".join(f"{k} {count(v)}" for k, v in counts.items()))
            if self.report_path:
                reports.write(report, self.report_path)
            if self.pcap:
                n = pcapng.write(self.pcap, capture.frames(self.scratch.capture), self.epoch_us, self.name,
                                 self.tsc_per_us)
                self.say(f"[{self.name}] wrote {n} frames to {self.pcap}")
            self.final = report
        if self.port is not None:
            self.port.close()
            self.port = None
        if self.eal_up:
            self.eal_up = False
            dpdk.eal_cleanup()
            busy = eal.remove_primary_files(self.eal_args)
            if busy:
                self.say(f"[{self.name}] {len(busy)} hugepage file(s) still in use by attached workers; "
                         "left in place")

    def _pool_use(self) -> PoolUse:
        """After the last forwarding: free what stopped workers never read (counted per worker) and
        never sent, then measure the pool."""
        self.unread = [r.free_all() for r in self.rx]
        unsent = 0 if self.loopback else sum(r.free_all() for r in self.tx)     # loopback: one ring each way
        return PoolUse(self.pool_size, self.pool_start, self.pool.in_use(), sum(self.unread) + unsent)


def _impair_directions(section) -> dict:
    """The config's impair section as `impair.new_impairment` takes it: {direction: settings}."""
    if section is None:
        return {}
    pairs = ((impair.TO_WORKERS, section.to_workers), (impair.TO_PORT, section.to_port))
    return {d: msgspec.structs.asdict(p) for d, p in pairs if p is not None}


def _impair_text(section) -> str:
    parts = []
    for name in impair.DIRECTIONS:
        d = getattr(section, name, None) if section else None
        if d is not None:
            parts.append(f"{name} loss {d.loss:g}% corrupt {d.corrupt:g}% duplicate {d.duplicate:g}% "
                         f"reorder {d.reorder:g}% (depth {d.depth}) delay {d.delay_ms:g}±{d.jitter_ms:g} ms")
    return "; impairing " + "; ".join(parts) if parts else ""


def _addrs(rings):
    return np.array([r.addr for r in rings], dtype=np.int64)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)
