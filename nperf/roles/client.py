"""`nperf client CONFIG`: the load generator (see roles.worker and kernels.client_sched).

Python reads the kernels' counters and latency histogram once a second; the
per-second line, the sustain-phase averages and the report come from those.
"""
import numpy as np

from nperf import histogram
from nperf.kernels import client_app as ca
from nperf.kernels import http_client, latency, stack, tcp
from nperf.reports import Accounting, ClientReport, Latency, Outcomes, Sustain
from nperf.roles.worker import Worker
from nperf.roles.worker_stack import owned_ports, owned_ranges
from nperf.stats_format import count, mbps


NOTE_NAMES = ("retried", "unsolicited", "keepalive_closed", "pair_reused_early", "source_pair_busy",
              "closed_unused")


def reuse_warning(pairs: int, cps: float, peer_time_wait_s: float) -> str:
    return (f"{pairs:,} source pairs at {cps:,.0f} CPS are reused after {pairs / max(cps, 1):.1f} s; "
            f"Linux peers hold TIME_WAIT {peer_time_wait_s:g} s: widen src_ip or src_port ranges")


def planned_reuse(cfg, pairs: int, peer_time_wait_s: float) -> str | None:
    """Before the run: a warning if the objective will reuse source pairs within a peer's TIME_WAIT.
    Only a rate-limited or counted objective says how fast; a closed loop is warned about when it
    happens (the per-second `pair_reused_early` count)."""
    ob = cfg.objective
    if ob.type == "TOTAL_CONNECTIONS" and ob.value > pairs:
        return (f"{ob.value:,} connections from {pairs:,} source pairs: pairs are reused; Linux peers hold "
                f"TIME_WAIT {peer_time_wait_s:g} s: widen src_ip or src_port ranges")
    if ob.type in ("HTTP_REQUESTS", "TOTAL_CONNECTIONS") and ob.requests_per_second:
        cps = ob.requests_per_second / max(ob.requests_per_connection, 1)
        if pairs / cps < peer_time_wait_s:
            return reuse_warning(pairs, cps, peer_time_wait_s)
    return None


def _names(first_end: tuple[int, int]) -> list[tuple[int, str]]:
    return [(i, ca.CLIENT_COUNTER_NAMES[i]) for i in range(*first_end)]


class Client(Worker):
    second_latency: histogram.Histogram | None = None     # the last second's, for IPC and /metrics

    def __init__(self, cfg, config_name: str, **kw):
        super().__init__(cfg, "client", config_name, **kw)
        self.per_second: list[dict] = []
        self._prev_cc: np.ndarray | None = None
        first_port, last_port = owned_ports(cfg, "client")
        self.pairs = sum(n for _, n in owned_ranges(cfg, "client")) * (last_port - first_port + 1)
        self._warned_reuse = False
        ahead = planned_reuse(cfg, self.pairs, self.opts.peer_time_wait_s)
        if ahead:
            self.say(f"[{self.name}] warning: {ahead}")

    def second(self, elapsed: int) -> tuple[str, dict]:
        self.seconds = elapsed
        c, d = self.counter_deltas()
        k = self.stack.app.sched
        cc = self.stack.counters[stack.CS_CLIENT:].copy()
        dcc = cc - (self._prev_cc if self._prev_cc is not None else 0)
        self._prev_cc = cc
        hist = self.stack.app.hists[ca.HIST_SECOND]
        p50, p90, p99, p999, top = (float(v) / 1000 for v in latency.percentiles(hist))
        self.second_latency = histogram.encode(hist)
        hist[:] = 0
        phase = ca.PHASE_NAMES[min(int(k[ca.K_PHASE]), ca.PH_DONE)]
        fields = {"phase": phase, "target": int(k[ca.K_TARGET]), "conc": int(k[ca.K_ACTIVE] - k[ca.K_CLOSING]),
                  "cps": int(d[stack.C_CONN_OPENED]),
                  "closes": int(d[stack.C_CONN_CLOSED] + d[stack.C_CONN_RESET] + d[stack.C_CONN_TIMED_OUT]
                                + d[stack.C_CONN_IDLE_CLOSED]),
                  "rps": int(dcc[ca.CC_OK] + dcc[ca.CC_FAILED]),
                  "tx_mbps": float(d[stack.C_TX_BYTES] * 8 / 1e6), "rx_mbps": float(d[stack.C_RX_BYTES] * 8 / 1e6),
                  "ok": int(dcc[ca.CC_OK]), "fail": self._failures(dcc),
                  "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p999_ms": p999, "max_ms": top,
                  "open": int(k[ca.K_ACTIVE]), "outstanding": int(k[ca.K_OUTSTANDING]),
                  "retried": int(dcc[ca.CC_RETRIED]), "retransmits": int(c[stack.C_TCP_RETRANSMITS]),
                  "busy": self.busy()}
        if k[ca.K_TYPE] == ca.O_UDP_STREAM:
            fields["udp_pps"] = int(dcc[ca.CC_UDP_SENT])
        fields["pair_reused_early"] = int(dcc[ca.CC_PAIR_REUSED_EARLY])
        fields["syn_challenged"] = int(d[stack.C_TCP_SYN_CHALLENGED])
        self.per_second.append(fields)
        if fields["pair_reused_early"] and not self._warned_reuse:
            self._warned_reuse = True
            self.say(f"[{self.name}] warning: {reuse_warning(self.pairs, fields['cps'], self.opts.peer_time_wait_s)}")
        line = (f"[{self.name}] [{elapsed:3d}s] {phase} (target {count(fields['target'])})  "
                f"conc {count(fields['conc'])}  cps {count(fields['cps'])}  closes/s {count(fields['closes'])}  "
                f"rps {count(fields['rps'])}  tx {mbps(d[stack.C_TX_BYTES])}  rx {mbps(d[stack.C_RX_BYTES])}  "
                f"ok {count(fields['ok'])}  fail {count(fields['fail'])}  p99 {p99:.2f} ms  "
                f"retrans/s {count(d[stack.C_TCP_RETRANSMITS])}  busy {fields['busy']:.0%}")
        line += self.holdings(fields) + self.tls_second(d, fields)
        if "udp_pps" in fields:
            line += f"  udp {count(fields['udp_pps'])} pkt/s"
        if fields["pair_reused_early"] or fields["syn_challenged"]:
            line += (f"  pairs reused early/s {count(fields['pair_reused_early'])}"
                     f"  SYN challenged/s {count(fields['syn_challenged'])}")
        return line, fields

    def before_report(self) -> None:
        """Settle what the run left open: every connection and request ends with a cause."""
        tcp.abort_all(self.stack, self.stack.var[stack.V_NOW_US])
        ca.drop_retries(self.stack)

    @staticmethod
    def _failures(cc: np.ndarray) -> int:
        """Failed requests, connections that never carried one, destinations without ARP, no source pair."""
        return int(sum(cc[i] for i in ca.FAILURES))

    def status(self) -> int:
        cc = self.stack.counters[stack.CS_CLIENT:]
        return 0 if sum(cc[i] for i in ca.FAILED_AT_ALL) == 0 and not self.lost else 1

    def report(self) -> ClientReport:
        cc = self.stack.counters[stack.CS_CLIENT:]
        sustain = [s for s in self.per_second if s["phase"] == "sustain"] or self.per_second
        n = max(len(sustain), 1)
        avg = Sustain(*(float(sum(s[f] for s in sustain)) / n for f in ("cps", "rps", "tx_mbps", "rx_mbps")))
        hist = self.stack.app.hists[ca.HIST_SUSTAIN]
        if not hist.any():
            hist = hist + self.stack.app.hists[ca.HIST_SECOND]
        lat = Latency(*(v / 1000 for v in latency.percentiles(hist)))
        acc = self.accounting()
        errors = {**acc.requests.failed_by_cause, **acc.connections.failed_by_cause,
                  "arp_failed": int(cc[ca.CC_ARP_FAILED]), "no_source_pair": int(cc[ca.CC_NO_SOURCE_PAIR])}
        notes = {name: int(cc[ca.CLIENT_COUNTER_NAMES.index(name)]) for name in NOTE_NAMES}
        notes["retransmissions"] = int(self.stack.counters[stack.C_TCP_RETRANSMITS])
        notes["tcp_timeouts"] = int(self.stack.counters[stack.C_TCP_TIMEOUTS])
        notes["syn_challenged"] = int(self.stack.counters[stack.C_TCP_SYN_CHALLENGED])
        return ClientReport("client", self.config_name, self.seconds, int(cc[ca.CC_OPENED]), int(cc[ca.CC_REQUESTS]),
                            int(cc[ca.CC_OK]), int(cc[ca.CC_FAILED]), errors, avg, lat, self.per_second,
                            self.stack_counters(),
                            {n: int(v) for n, v in zip(http_client.COUNTER_NAMES, self.http())},
                            acc, notes, int(cc[ca.CC_UDP_SENT]), histogram.encode(hist), self.families(),
                            self.tls_summary())

    def families(self) -> dict[str, dict[str, int]]:
        """The report's `families`: each count's IPv6 share and the rest (nothing without IPv6
        destinations)."""
        if not self.stack.app.sched[ca.K_DIP6_COUNT]:
            return {}
        cc = self.stack.counters[stack.CS_CLIENT:]
        shares = ((ca.CC_OPENED, ca.CC_V6_OPENED), (ca.CC_CONN_FAILED, ca.CC_V6_CONN_FAILED),
                  (ca.CC_OK, ca.CC_V6_OK), (ca.CC_FAILED, ca.CC_V6_FAILED))
        names = ("connections_opened", "connections_failed", "responses_ok", "responses_failed")
        return {"ipv4": {n: int(cc[total] - cc[v6]) for n, (total, v6) in zip(names, shares)},
                "ipv6": {n: int(cc[v6]) for n, (_, v6) in zip(names, shares)}}

    def accounting(self) -> Accounting:
        return accounting(self.stack)

    def http(self) -> np.ndarray:
        return self.stack.counters[stack.CS_HTTP_CLIENT:stack.CS_CLIENT]

    def summary(self, r: ClientReport) -> str:
        """One line; every failure cause that occurred is named with its count (`errors`)."""
        causes = ", ".join(f"{name} {count(n)}" for name, n in r.errors.items() if n)
        return (f"{count(r.connections_opened)} connections, {count(r.requests_sent)} requests, "
                f"{count(r.responses_ok)} ok, {count(r.responses_failed)} failed; sustain {r.sustain.cps:,.0f} cps "
                f"{r.sustain.rps:,.0f} rps; latency p50 {r.latency_ms.p50:.2f} p99 {r.latency_ms.p99:.2f} "
                f"max {r.latency_ms.max:.2f} ms; errors: {causes or 'none'}"
                + (f"; {r.tls.text()}" if r.tls else ""))


def accounting(s) -> Accounting:
    """The client's two balances from its counters and scheduler words (see kernels.client_app)."""
    cc = s.counters[stack.CS_CLIENT:]
    k = s.app.sched
    conns = Outcomes(int(cc[ca.CC_OPENED]), int(cc[ca.CC_CLOSED_OK]), int(cc[ca.CC_CONN_FAILED]),
                     {n: int(cc[i]) for i, n in _names(ca.CONNECTION_CAUSES)}, int(k[ca.K_ACTIVE]))
    reqs = Outcomes(int(cc[ca.CC_REQUESTS]), int(cc[ca.CC_OK]), int(cc[ca.CC_FAILED]),
                    {n: int(cc[i]) for i, n in _names(ca.REQUEST_CAUSES)}, int(k[ca.K_OUTSTANDING]),
                    int(cc[ca.CC_RETRIED]))
    return Accounting(conns, reqs)
