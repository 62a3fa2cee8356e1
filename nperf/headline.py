"""The headline figures of a run, from its report: what `compare` lines up and `--slo` tests.

Rates add up over clients (each client's sustain-phase average); latency
percentiles come from the clients' histograms merged bin by bin (averaging
percentiles would be wrong); failures, drops and retransmissions add up
over every role that counts them.
"""
from nperf import histogram
from nperf.api import RunResult
from nperf.reports import ClientReport, LbReport

# name: (label, unit, direction): +1 when higher is better, -1 when lower is better
FIGURES = {
    "cps": ("sustain CPS", "conn/s", +1),
    "rps": ("sustain RPS", "req/s", +1),
    "p50": ("latency p50", "ms", -1),
    "p90": ("latency p90", "ms", -1),
    "p99": ("latency p99", "ms", -1),
    "p999": ("latency p99.9", "ms", -1),
    "max": ("latency max", "ms", -1),
    "failures": ("failures", "", -1),
    "fail_rate": ("fail rate", "", -1),
    "drops": ("drops", "frames", -1),
    "retransmissions": ("retransmissions", "segments", -1),
}


def client_failures(rep: ClientReport) -> int:
    """Failed responses plus attempts that never carried a request (as the per-second `fail` counts)."""
    e = rep.errors
    return rep.responses_failed + e["connect_timeout"] + e["connect_refused"] + e["arp_failed"] + e["no_source_pair"]


def latency_histogram(result: RunResult) -> histogram.Histogram:
    """Every client's sustain-phase latency histogram, merged."""
    return histogram.merge([c.latency_histogram for c in result.client_reports() if c.latency_histogram])


def figures(result: RunResult) -> dict[str, float]:
    clients = result.client_reports()
    reports = [r.report for r in result.roles if r.report is not None]
    p50, p90, p99, p999, top = histogram.percentiles_ms(latency_histogram(result))
    failures = sum(client_failures(c) for c in clients)
    answered = sum(c.responses_ok for c in clients) + failures
    drops = sum(sum(r.drops.values()) for r in reports if isinstance(r, LbReport))
    drops += sum(v for r in reports if not isinstance(r, LbReport) for k, v in r.counters.items()
                 if k.startswith("drop_"))
    return {"cps": sum(c.sustain.cps for c in clients), "rps": sum(c.sustain.rps for c in clients),
            "p50": p50, "p90": p90, "p99": p99, "p999": p999, "max": top,
            "failures": failures, "fail_rate": failures / answered if answered else 0.0, "drops": drops,
            "retransmissions": sum(r.counters["tcp_retransmits"] for r in reports if not isinstance(r, LbReport))}


def show(name: str, value: float) -> str:
    """A figure as people read it: rates with separators, latency in ms, the fail rate in %."""
    unit = FIGURES[name][1]
    if name == "fail_rate":
        return f"{value * 100:.3g} %"
    if unit == "ms":
        return f"{value:.3f} ms"
    return f"{value:,.0f}" + (f" {unit}" if unit else "")
