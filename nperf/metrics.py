"""`--metrics-port N`: Prometheus `/metrics` from the per-second figures, outside the data path.

The endpoint is an asyncio handler on the controller's event loop (a role's,
or `nperf run`'s), so a scrape is answered between two data-plane slices and
no thread competes with the poll loop. It exports, labelled by `role` (its
name, e.g. "client c") and `kind`:

- counters built from the per-second fields: a field that is a rate per
  second (`cps`, `rps`, `ok`, `fail`, `*_pps`, `*_mbps`) is added up, a field
  that already counts since start (`retransmits`, `drop_<cause>`) is taken
  as it is; drops are one family with a `cause` label;
- gauges for the rest (`target`, `conc`, `conns`, `link`, `busy`, the last
  second's latency percentiles, and any numeric field this table does not
  know yet, as `nperf_<field>`), and `nperf_phase{phase=...}` = 1;
- `nperf_latency_seconds`, a histogram of every response so far, from the
  clients' per-second latency histograms (nperf's log-linear bins folded
  into Prometheus buckets: a bin counts under `le` when its top is <= `le`;
  `_sum` adds bin tops, so it is an upper bound);
- `nperf_finished{role}` = 1 once the role's final report is in.

When a role's final report arrives the counters are raised to its totals
(what the last part-second and the role's settling at exit added), so the
last scrape agrees with the report. `close(hold)` keeps the endpoint up
until one scrape after the end, at most `hold` seconds.
"""
import asyncio
import socket

import numpy as np
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

from nperf import histogram
from nperf.headline import client_failures
from nperf.kernels import latency
from nperf.reports import ClientReport, LbReport, Report, ServerReport

# per-second field -> (counter name, factor to the counted unit); the field is a rate per second
RATES = {
    "cps": ("connections_opened", 1), "closes": ("connections_closed", 1),
    "rps": ("requests", 1), "ok": ("responses_ok", 1), "fail": ("failures", 1),
    "udp_pps": ("udp_datagrams", 1), "rx_pps": ("rx_packets", 1), "tx_pps": ("tx_packets", 1),
    "rx_mbps": ("rx_bytes", 1e6 / 8), "tx_mbps": ("tx_bytes", 1e6 / 8),
    "pair_reused_early": ("source_pairs_reused_early", 1), "syn_challenged": ("syns_challenged", 1),
    "syn_evicted": ("half_open_evicted", 1), "table_full": ("syns_dropped_table_full", 1),
}
SINCE_START = {"retransmits": "retransmissions"}      # and drop_<cause> -> drops{cause}
GAUGES = {"target": "target_connections", "conc": "concurrent_connections", "conns": "open_connections",
          "link": "link_up", "busy": "busy_ratio"}
QUANTILES = {"p50_ms": "0.5", "p90_ms": "0.9", "p99_ms": "0.99", "p999_ms": "0.999", "max_ms": "1"}
SKIP = {"drops", "phase"}          # the sum of the drop_* fields; the phase is its own gauge
DOCS = {
    "connections_opened": "TCP connections established", "connections_closed": "TCP connections ended",
    "requests": "client: responses (ok or failed); server: requests received", "responses_ok": "good responses",
    "failures": "failed responses and connections that never sent", "udp_datagrams": "UDP datagrams sent or received",
    "rx_packets": "packets the lb's port received", "tx_packets": "packets the lb's port sent",
    "rx_bytes": "bytes received", "tx_bytes": "bytes sent", "retransmissions": "TCP retransmissions",
    "source_pairs_reused_early": "client: source pairs opened again within the peers' TIME_WAIT",
    "syns_challenged": "client: SYNs answered with another connection's ACK (a peer's TIME_WAIT)",
    "half_open_evicted": "server: half-open connections freed for a new SYN (the table was full)",
    "syns_dropped_table_full": "server: SYNs dropped, the table full of established connections",
}
LE_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TOPS_US = np.array([latency.bucket_value(i) for i in range(latency.BUCKETS)], np.float64)


class MetricsError(ValueError):
    """The endpoint cannot be served (the message says why)."""


def final_totals(rep: Report) -> dict[str, int]:
    """Counter values (by counter name, drops as `drops:<cause>`) that a final report states."""
    if isinstance(rep, ClientReport):
        c = rep.counters
        return {"connections_opened": c["conn_opened"],
                "connections_closed": c["conn_closed"] + c["conn_reset"] + c["conn_timed_out"] + c["conn_idle_closed"],
                "requests": rep.responses_ok + rep.responses_failed, "responses_ok": rep.responses_ok,
                "failures": client_failures(rep),
                "rx_bytes": c["rx_bytes"], "tx_bytes": c["tx_bytes"], "udp_datagrams": rep.udp_sent,
                "source_pairs_reused_early": rep.notes.get("pair_reused_early", 0),
                "syns_challenged": rep.notes.get("syn_challenged", 0)}
    if isinstance(rep, ServerReport):
        c = rep.counters
        return {"connections_opened": c["conn_opened"], "connections_closed": c["conn_closed"],
                "requests": rep.http["requests"], "rx_bytes": c["rx_bytes"], "tx_bytes": c["tx_bytes"],
                "retransmissions": c["tcp_retransmits"], "udp_datagrams": c["udp_in"],
                "half_open_evicted": c["tcp_syn_evicted"], "syns_dropped_table_full": c["tcp_table_full"],
                **{f"drops:{k[5:]}": v for k, v in c.items() if k.startswith("drop_")}}
    if isinstance(rep, LbReport):
        p = rep.port
        return {"rx_packets": p.rx_packets, "tx_packets": p.tx_packets, "rx_bytes": p.rx_bytes,
                "tx_bytes": p.tx_bytes, **{f"drops:{k}": v for k, v in rep.drops.items()}}
    return {}


class _Role:
    def __init__(self, kind: str):
        self.kind = kind
        self.counters: dict[str, float] = {}        # name, or "drops:<cause>"
        self.gauges: dict[str, float] = {}
        self.phase: str | None = None
        self.latency: np.ndarray | None = None
        self.finished = False


class Board:
    """Every role's figures so far, as a prometheus_client collector."""

    def __init__(self):
        self.roles: dict[str, _Role] = {}

    def _role(self, name: str) -> _Role:
        return self.roles.setdefault(name, _Role(name.split(" ", 1)[0]))

    def second(self, name: str, fields: dict, lat: histogram.Histogram | None = None) -> None:
        r = self._role(name)
        for k, v in fields.items():
            if k in SKIP or isinstance(v, str):
                if k == "phase":
                    r.phase = v
            elif k in RATES:
                metric, factor = RATES[k]
                r.counters[metric] = r.counters.get(metric, 0) + round(v * factor)
            elif k in SINCE_START or k.startswith("drop_"):
                metric = SINCE_START.get(k) or f"drops:{k[5:]}"
                r.counters[metric] = max(r.counters.get(metric, 0), v)
            else:
                r.gauges[k] = v
        if lat is not None:
            h = histogram.decode(lat)
            r.latency = h if r.latency is None else r.latency + h

    def final(self, name: str, report: Report | None) -> None:
        r = self._role(name)
        if report is not None:
            for metric, total in final_totals(report).items():
                r.counters[metric] = max(r.counters.get(metric, 0), total)
        r.finished = True

    def collect(self):
        counters: dict[str, CounterMetricFamily] = {}
        drops = CounterMetricFamily("nperf_drops", "frames dropped, by cause (lb and server)",
                                    labels=["role", "kind", "cause"])
        gauges: dict[str, GaugeMetricFamily] = {}
        quantiles = GaugeMetricFamily("nperf_second_latency_seconds", "latency percentiles of the last second",
                                      labels=["role", "kind", "quantile"])
        phase = GaugeMetricFamily("nperf_phase", "the client's current phase", labels=["role", "kind", "phase"])
        finished = GaugeMetricFamily("nperf_finished", "1 once the role's final report is in", labels=["role", "kind"])
        lat = HistogramMetricFamily("nperf_latency_seconds", "response latency, every response so far",
                                    labels=["role", "kind"])
        for name, r in self.roles.items():
            labels = [name, r.kind]
            for metric, v in r.counters.items():
                if metric.startswith("drops:"):
                    drops.add_metric(labels + [metric[6:]], v)
                else:
                    counters.setdefault(metric, CounterMetricFamily(
                        f"nperf_{metric}", DOCS.get(metric, metric), labels=["role", "kind"])).add_metric(labels, v)
            for field, v in r.gauges.items():
                if field in QUANTILES:
                    quantiles.add_metric(labels + [QUANTILES[field]], v / 1000)
                    continue
                metric = GAUGES.get(field, field)
                gauges.setdefault(metric, GaugeMetricFamily(f"nperf_{metric}", f"per-second field {field!r}",
                                                            labels=["role", "kind"])).add_metric(labels, v)
            if r.phase is not None:
                phase.add_metric(labels + [r.phase], 1)
            finished.add_metric(labels, int(r.finished))
            if r.latency is not None:
                buckets = [(repr(le), float(r.latency[_TOPS_US <= le * 1e6].sum())) for le in LE_SECONDS]
                buckets.append(("+Inf", float(r.latency.sum())))
                lat.add_metric(labels, buckets, float((r.latency * _TOPS_US).sum() / 1e6))
        yield from counters.values()
        yield from (drops, *gauges.values(), quantiles, phase, finished, lat)


class Endpoint:
    """`/metrics` over HTTP on `port`; the socket is bound at once, so a busy port fails early."""

    def __init__(self, port: int):
        self.board = Board()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.board)
        self.sock = socket.socket(socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("", port))
            self.sock.listen(16)
        except OSError as e:
            self.sock.close()
            raise MetricsError(f"--metrics-port {port}: {e.strerror}") from None
        self.sock.setblocking(False)
        self.server: asyncio.Server | None = None
        self._finished = False
        self._scraped_after_end = asyncio.Event()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, sock=self.sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            request, *headers = head.decode("latin-1").split("\r\n")
            method, path = (request.split(" ") + ["", ""])[:2]
            accept = next((h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("accept:")), "")
            if method == "GET" and path.split("?")[0] == "/metrics":
                encoder, ctype = choose_encoder(accept)
                body, status = encoder(self.registry), "200 OK"
                if self._finished:
                    self._scraped_after_end.set()
            else:
                body, status, ctype = b"not found: try /metrics\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self, hold: float = 0.0) -> None:
        """Mark the end; serve until one scrape after it (at most `hold` s); then stop serving."""
        self._finished = True
        if hold > 0:
            try:
                await asyncio.wait_for(self._scraped_after_end.wait(), hold)
            except asyncio.TimeoutError:
                pass
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.sock.close()
