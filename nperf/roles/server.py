"""`nperf server CONFIG`: HTTP server on nperf's own TCP stack (see roles.worker)."""
from nperf.kernels import http_server as hs
from nperf.kernels import stack
from nperf.reports import ServerReport
from nperf.roles.worker import Worker
from nperf.stats_format import count, mbps


class Server(Worker):

    def __init__(self, cfg, config_name: str, **kw):
        super().__init__(cfg, "server", config_name, **kw)
        self._prev_requests = 0

    def second(self, elapsed: int) -> tuple[str, dict]:
        self.seconds = elapsed
        c, d = self.counter_deltas()
        requests = int(self.http()[hs.CNT_REQUESTS])
        fields = {"conns": self.active(), "cps": int(d[stack.C_CONN_OPENED]), "closes": int(d[stack.C_CONN_CLOSED]),
                  "rps": requests - self._prev_requests,
                  "tx_mbps": float(d[stack.C_TX_BYTES] * 8 / 1e6), "rx_mbps": float(d[stack.C_RX_BYTES] * 8 / 1e6),
                  "retransmits": int(c[stack.C_TCP_RETRANSMITS]), "drops": self.drops(),
                  "udp_pps": int(d[stack.C_UDP_IN]), "busy": self.busy()}
        fields.update({n: int(v) for n, v in zip(stack.COUNTER_NAMES, c) if n.startswith("drop_")})  # by cause
        self._prev_requests = requests
        line = (f"[{self.name}] [{elapsed:3d}s] conns {count(fields['conns'])}  "
                f"cps {count(fields['cps'])}  closes/s {count(fields['closes'])}  rps {count(fields['rps'])}  "
                f"tx {mbps(d[stack.C_TX_BYTES])}  rx {mbps(d[stack.C_RX_BYTES])}  "
                f"retrans/s {count(d[stack.C_TCP_RETRANSMITS])}  "
                f"rst/s {count(d[stack.C_TCP_RESETS_IN] + d[stack.C_TCP_RESETS_OUT])}  "
                f"drops/s {count(sum(v for n, v in zip(stack.COUNTER_NAMES, d) if n.startswith('drop_')))}  "
                f"busy {fields['busy']:.0%}")
        line += self.holdings(fields) + self.tls_second(d, fields)
        fields["syn_evicted"], fields["table_full"] = int(d[stack.C_TCP_SYN_EVICTED]), int(d[stack.C_TCP_TABLE_FULL])
        if fields["syn_evicted"] or fields["table_full"]:     # a SYN flood, or a table too small for the load
            line += (f"  table full: half-open freed/s {count(fields['syn_evicted'])}  "
                     f"SYNs dropped/s {count(fields['table_full'])}")
        if c[stack.C_UDP_IN]:
            line += f"  udp {count(fields['udp_pps'])} pkt/s"
        return line, fields

    def http(self):
        return self.stack.counters[stack.CS_HTTP_SERVER:stack.CS_HTTP_CLIENT]

    def status(self) -> int:
        return 1 if self.lost else 0

    def report(self) -> ServerReport:
        return ServerReport("server", self.config_name, self.seconds,
                            self.stack_counters(),
                            {n: int(v) for n, v in zip(hs.COUNTER_NAMES, self.http())}, self.active(),
                            self.tls_summary())

    def summary(self, r: ServerReport) -> str:
        return (f"{count(r.counters['conn_opened'])} connections, {count(r.http['requests'])} requests, "
                f"{count(r.counters['tcp_retransmits'])} retransmissions, {count(r.active_connections)} still open"
                + (f"; {r.tls.text()}" if r.tls else ""))
