"""`nperf bench WHAT`: benchmarks that print figures (never timed tests).

Rates on a shared 2-core machine swing by several times between identical
runs, so every comparison alternates nperf and its peer in one invocation and
reports the median of the per-round ratios.
"""
import statistics


def run_bench(what: str, args) -> int:
    import importlib
    return importlib.import_module(f"nperf.bench.{what}").main(args)


def median_ratio(ours: list[float], peer: list[float]) -> float:
    return statistics.median(o / p for o, p in zip(ours, peer) if p > 0)
