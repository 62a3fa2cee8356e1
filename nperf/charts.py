"""The charts of a run report, as data: `report_html` draws them with plotly, `report_png` with matplotlib.

Both renderers draw the same list, so the HTML and the PNGs cannot drift
apart. Time series come from the per-second figures each role sent over IPC
(`RoleResult.per_second`, x = the role's elapsed second); the latency
distribution from each client's sustain-phase histogram; errors and drops
by cause from the final reports. Phases are the first client's.
"""
from dataclasses import dataclass, field

from nperf import histogram
from nperf.api import RunResult
from nperf.reports import ClientReport, LbReport


@dataclass
class Trace:
    name: str
    x: list
    y: list


@dataclass
class Chart:
    id: str
    title: str
    y_label: str
    traces: list[Trace]
    kind: str = "line"             # "line" over elapsed seconds (phases shaded) or "bar"
    x_label: str = "elapsed s"
    log_x: bool = False
    phases: list[tuple[str, int, int]] = field(default_factory=list)   # (phase, from s, to s)


def phases(result: RunResult) -> list[tuple[str, int, int]]:
    """(phase, start, end) spans of the first client's seconds; second n spans [n-1, n]."""
    rows = next((r.per_second for r in result.roles if r.kind == "client"), [])
    spans: list[tuple[str, int, int]] = []
    for row in rows:
        n, phase = int(row["elapsed"]), str(row.get("phase", ""))
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], n)
        else:
            spans.append((phase, n - 1, n))
    return spans


def _series(result: RunResult, kinds: tuple[str, ...], keys: dict[str, str]) -> list[Trace]:
    """A trace per role (of `kinds`) and per field in `keys` ({field: label}) the role has."""
    out = []
    for r in result.roles:
        if r.kind not in kinds:
            continue
        for key, label in keys.items():
            rows = [row for row in r.per_second if key in row]
            if rows:
                out.append(Trace(f"{r.name} {label}", [int(row["elapsed"]) for row in rows],
                                 [row[key] for row in rows]))
    return out


def charts(result: RunResult) -> list[Chart]:
    spans = phases(result)
    line = dict(phases=spans)
    out = [
        Chart("rates", "Connections and requests per second", "per second",
              _series(result, ("client", "server"), {"cps": "CPS", "rps": "RPS"}), **line),
        Chart("concurrency", "Concurrent connections", "connections",
              _series(result, ("client", "server"), {"conc": "open", "target": "target", "conns": "open"}), **line),
        Chart("throughput", "Throughput", "Mbit/s",
              _series(result, ("client", "server", "lb"), {"tx_mbps": "tx", "rx_mbps": "rx"}), **line),
        Chart("latency", "Latency percentiles per second", "ms",
              _series(result, ("client",), {"p50_ms": "p50", "p90_ms": "p90", "p99_ms": "p99",
                                            "p999_ms": "p99.9", "max_ms": "max"}), **line),
    ]
    dist = []
    for r in result.roles:
        if isinstance(r.report, ClientReport) and r.report.latency_histogram:
            x, y = histogram.distribution_ms(r.report.latency_histogram)
            dist.append(Trace(r.name, x, y))
    out.append(Chart("distribution", "Latency distribution (sustain phase)", "responses", dist, kind="bar",
                     x_label="latency ms (top of bin)", log_x=True))
    causes = []
    for r in result.roles:
        rep = r.report
        if isinstance(rep, ClientReport):
            by_cause = rep.errors
        elif isinstance(rep, LbReport):
            by_cause = {f"drop {k}": v for k, v in rep.drops.items()}
        elif rep is not None:
            by_cause = {f"drop {k[5:]}": v for k, v in rep.counters.items() if k.startswith("drop_")}
        else:
            continue
        causes.append(Trace(r.name, list(by_cause), list(by_cause.values())))
    out.append(Chart("errors", "Errors and drops by cause (whole run)", "count", causes, kind="bar", x_label="cause"))
    return out
