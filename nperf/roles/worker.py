"""What `nperf server` and `nperf client` share: a worker process.

A worker either attaches to an lb's ring pair as a DPDK secondary
(`dpdk.is_dpdk_client: 1`) or owns a port as a primary (memif, tap,
af_packet...). Either way its data plane is `kernels.worker_loop.worker_poll`
over one `Stack`; this module starts and stops things and turns counters
into the per-second line and the report.
"""
import os
import time

import numpy as np

from nperf import config, eal, histogram, perf_map, reports, tls, warmup
from nperf.roles import pcapng
from nperf.bindings import dpdk
from nperf.kernels import arp, capture, io, latency, ndp, poll, stack, worker_loop
from nperf.reports import Latency, TlsSummary
from nperf.roles.lb_shared import Attachment
from nperf.roles.worker_stack import StackOptions, build_stack, ip_version, mss
from nperf.stats_format import count

SLICE_S = 0.01
IDLE_S = 0.0002
MAX_IDLE_SLEEP_NS = 200_000
POOL_NAME = "nperf_worker_pool"
PORT_LOSSES = ("imissed", "ierrors", "oerrors", "rx_nombuf")     # rte_eth_stats fields
LB_CHECK_S = 0.5            # an attached worker looks this often whether its lb still runs
TLS_FAILURES = (stack.C_TLS_FAILED_ALERT, stack.C_TLS_FAILED_CERTIFICATE, stack.C_TLS_FAILED_TIMEOUT,
                stack.C_TLS_FAILED_PEER_CLOSED)     # handshake failures, by cause


class Worker:
    """One server or client process; `start()` brings it up, the controller drives it.

    Subclasses (roles.server, roles.client) add the per-second line
    (`second`), the report (`report`, `summary`) and the exit `status`.
    """

    def __init__(self, cfg, role: str, config_name: str, *, core: int | None = None,
                 opts: StackOptions | None = None, report: str | None = None, say=print,
                 pcap: str | None = None, pcap_count: int = 0):
        self.cfg = cfg
        self.role = role
        self.config_name = config_name
        self.name = f"{role} {os.path.splitext(os.path.basename(config_name))[0]}"
        self.core = core
        self.opts = opts or StackOptions()
        self.report_path = report
        self.say = say
        self.seconds = 0
        self.port = None
        self.attachment = None
        self.started = False
        self._prev: np.ndarray | None = None
        self._prev_poll: np.ndarray | None = None
        self.final = None
        self.ready_detail = ""
        self.lost = ""              # why the role stopped by itself (its lb died); makes the status non-zero
        self.pcap = pcap
        self.pcap_count = pcap_count if pcap else 0
        self._next_check = 0.0
        self.tls: tls.Context | None = None      # with use_https: 1 (start)

    # --- start ---------------------------------------------------------
    def start(self) -> None:
        d = self.cfg.dpdk
        self.eal_args, lcore, cpu, warning = eal.build(d.args, d.core_id, self.core, self.name)
        if self.cfg.http_config.use_https:     # every TLS key checked, before anything is compiled or started
            self.tls = tls.Context(self.cfg.http_config, self.role, self.config_name)
        warmup.prepare(self.role, lambda line: self.say(f"[{self.name}] {line}"))
        kind = eal.proc_type(self.eal_args)
        if d.is_dpdk_client and kind != "secondary":
            raise dpdk.DpdkError(f"{self.name}: is_dpdk_client is 1, so dpdk.args must attach to an lb: "
                                 "--proc-type=secondary --file-prefix=<the lb's prefix>")
        if not d.is_dpdk_client and kind != "primary":
            raise dpdk.DpdkError(f"{self.name}: is_dpdk_client is 0, so this worker owns its port: "
                                 "dpdk.args needs a --vdev (or a NIC) and --proc-type=primary")
        if d.is_dpdk_client and not eal.primary_running(self.eal_args):
            raise dpdk.DpdkError(f"{self.name}: no lb is running with file prefix "
                                 f"{eal.file_prefix(self.eal_args)} (start `nperf lb` first)")
        version = ip_version(self.cfg, self.role)
        if mss(self.cfg, version) < mss(self.cfg, version, max_frame=1 << 16):
            self.say(f"warning: {self.name}: interface.mtu {self.cfg.interface.mtu} is larger than a packet buffer "
                     f"holds; segments carry at most {mss(self.cfg, version)} bytes")
        if warning:
            self.say(f"warning: {warning}")
        dpdk.eal_init(self.eal_args)
        self.fns = dpdk.function_table()
        if d.is_dpdk_client:
            self.io, mac, checksums = self._attach(d.client_ring_idx, lcore)
        else:
            self.io, mac, checksums = self._own_port()
        self.stack = build_stack(self.cfg, self.role, mac, self.opts, checksums,
                                 self.tls.layer(self.opts.max_conns) if self.tls else None)
        self.scratch = worker_loop.LoopScratch(self.pcap_count).arrays()
        hz = dpdk.tsc_hz()
        self.cycles_per_us = hz / 1e6
        self.budget = int(hz * SLICE_S)
        self.idle = int(hz * IDLE_S)
        self.tsc0 = dpdk.lib.np_tsc(0, 0, 0, 0)
        self.epoch_us = time.time_ns() // 1000          # wall clock at tsc0: the capture's time base
        self.started = True
        self._poll(0)            # compiles (or loads) the kernels before saying "ready"
        perf_map.write()
        where = f"lb ring pair {d.client_ring_idx}" if d.is_dpdk_client else f"port {self.port.name}"
        if checksums:
            where += " (it verifies received checksums)"
        self.ready_detail = (f"mac {mac.hex(':')}, {where}, lcore {lcore} on CPU {cpu}, "
                             f"up to {self.opts.max_conns:,} connections")
        self.say(f"[{self.name}] ready: {self.ready_detail}")

    def _attach(self, ring_idx: int, lcore: int):
        self.attachment = Attachment(ring_idx, lcore)
        a = self.attachment
        return io.dpdk_io(io.RING, a.rx.addr, a.tx.addr, a.pool.addr), a.mac, a.port_checksums

    def _own_port(self):
        if dpdk.Port.count() == 0:
            raise dpdk.DpdkError("no DPDK port: give a --vdev (memif, af_packet, tap...) or bind a NIC")
        self.pool = dpdk.Pool.create(POOL_NAME, 16383)
        self.port = dpdk.Port(0)
        checksums = self.port.setup(self.pool)
        # The configured MAC when there is one: a TAP port reports the kernel
        # interface's own MAC, which the kernel will not accept from a peer.
        mac = config.parse_mac(self.cfg.network.l2.mac_address) if self.cfg.network.l2.mac_address \
            else self.port.mac()
        return io.dpdk_io(io.PORT, self.port.id, self.port.id, self.pool.addr), mac, checksums

    # --- run -----------------------------------------------------------
    def poll_slice(self) -> bool:
        if self.attachment and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + LB_CHECK_S
            if not self.attachment.lb_alive():
                self.lost = "its lb (the DPDK primary) has gone: stopping"
                self.say(f"error: {self.name}: {self.lost}")
        if self.lost:
            return False
        arp.arp_announce(self.stack)
        ndp.nd_announce(self.stack)
        return self._poll(self.budget)

    def _poll(self, budget: int) -> bool:
        return worker_loop.worker_poll(self.fns, self.io, self.stack, self.scratch, budget, self.idle,
                                       MAX_IDLE_SLEEP_NS, self.tsc0, self.cycles_per_us)

    def active(self) -> int:
        free = self.stack.free
        return int(self.stack.tcb.shape[0] - free[0])

    def holdings(self, fields: dict) -> str:
        """Connection-table rows in use (of the table's size) and the mbufs this worker holds
        (free spares and frames waiting for the port): added to `fields`, returned for the line."""
        v = self.stack.var
        rows, used = int(self.stack.tcb.shape[0]), self.active()
        mbufs = int(v[stack.V_STASH_N] + v[stack.V_TXQ_N])
        fields.update(table_in_use=used, table_size=rows, mbufs_held=mbufs)
        return f"  table {count(used)}/{count(rows)}  mbufs {count(mbufs)}"

    def counter_deltas(self) -> tuple[np.ndarray, np.ndarray]:
        """(stack counters now, change since the previous second)."""
        c = self.stack.counters.copy()
        d = c - (self._prev if self._prev is not None else 0)
        self._prev = c
        return c, d

    def busy(self) -> float:
        """The poll loop's busy share since the previous call (see kernels.poll)."""
        now = self.scratch[3].copy()
        share = poll.busy_share(self._prev_poll if self._prev_poll is not None else now * 0, now)
        self._prev_poll = now
        return share

    def tls_second(self, d: np.ndarray, fields: dict) -> str:
        """With HTTPS, the second's handshakes (full and resumed) and failed handshakes: added to
        `fields`, returned for the line ("" without HTTPS)."""
        if not self.tls:
            return ""
        full, resumed = int(d[stack.C_TLS_FULL]), int(d[stack.C_TLS_RESUMED])
        failed = int(sum(d[i] for i in TLS_FAILURES))
        fields.update(tls_handshakes=full + resumed, tls_resumed=resumed, tls_failed=failed)
        return f"  tls hs/s {count(full + resumed)} (resumed {count(resumed)})  tls fail/s {count(failed)}"

    def tls_summary(self) -> TlsSummary | None:
        """The report's `tls` (None without HTTPS)."""
        if not self.tls:
            return None
        c = self.stack.counters
        hist = self.stack.tls.hist
        return TlsSummary(int(c[stack.C_TLS_FULL]), int(c[stack.C_TLS_RESUMED]),
                          {stack.COUNTER_NAMES[i][len("tls_failed_"):]: int(c[i]) for i in TLS_FAILURES},
                          int(c[stack.C_TLS_RECORD_ERRORS]), int(c[stack.C_TLS_NO_SLOT]),
                          int(c[stack.C_TLS_BYTES_ENCRYPTED]), int(c[stack.C_TLS_BYTES_DECRYPTED]),
                          Latency(*(v / 1000 for v in latency.percentiles(hist))), histogram.encode(hist))

    def drops(self) -> int:
        return int(sum(v for n, v in zip(stack.COUNTER_NAMES, self.stack.counters) if n.startswith("drop_")))

    def stack_counters(self) -> dict[str, int]:
        """The stack's counters by name; for a worker that owns its port, also what the port lost
        (`port_imissed`, `port_rx_nombuf`, ...: frames the stack never saw)."""
        out = {n: int(v) for n, v in zip(stack.COUNTER_NAMES, self.stack.counters)}
        if self.port is not None:
            port = self.port.stats()
            out.update({f"port_{k}": int(port.get(k, 0)) for k in PORT_LOSSES})
        return out

    # --- stop ----------------------------------------------------------
    def finish(self) -> None:
        primary = dpdk.is_primary()
        if self.started:
            self._drain()
            self._discard_held()
            self.before_report()
            report = self.report()
            self.say(f"[{self.name}] stopped: {self.summary(report)}")
            if self.report_path:
                reports.write(report, self.report_path)
            if self.pcap:
                n = pcapng.write(self.pcap, capture.frames(self.scratch[4]), self.epoch_us, self.name, 1.0)
                self.say(f"[{self.name}] wrote {n} frames to {self.pcap}")
            self.final = report
            self.started = False
        if self.attachment:
            self.attachment.release()
            self.attachment = None
        if self.port is not None:
            self.port.close()
            self.port = None
        dpdk.eal_cleanup()
        if primary:
            eal.remove_primary_files(self.eal_args)

    def before_report(self) -> None:
        """Settle what the run left open (a client's unanswered requests)."""

    def _discard_held(self) -> None:
        """At exit: free the spare mbufs; frames the port never took are counted as dropped."""
        v = self.stack.var
        dpdk.free_mbufs(self.stack.stash[:v[stack.V_STASH_N]])
        dpdk.free_mbufs(self.stack.txq[:v[stack.V_TXQ_N]])
        self.stack.counters[stack.C_DROP_TX_FULL] += v[stack.V_TXQ_N]
        v[stack.V_STASH_N] = v[stack.V_TXQ_N] = v[stack.V_TXQ_HELD] = 0

    def _drain(self) -> None:
        """Give frames already queued a last chance to leave (bounded)."""
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            self.poll_slice()
