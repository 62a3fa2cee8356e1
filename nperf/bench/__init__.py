"""`nperf bench WHAT`: benchmarks that print figures (never timed tests).

Rates on a shared 2-core machine swing by several times between identical
runs, so every comparison alternates nperf and its peer in one invocation and
reports the median of the per-round ratios.
"""
import ipaddress
import statistics

SEED_NET = ipaddress.ip_network("192.168.1.0/24")
IPV6_NET = ipaddress.ip_network("fd00:1::/64")


def run_bench(what: str, args) -> int:
    import importlib
    return importlib.import_module(f"nperf.bench.{what}").main(args)


def median_ratio(ours: list[float], peer: list[float]) -> float:
    return statistics.median(o / p for o, p in zip(ours, peer) if p > 0)


def seed_address_to_ipv6(text: str) -> str:
    """A seed address 192.168.1.x as fd00:1::x (x in hex, as written); any other text as it is.
    (The IPv6 runs of `nperf bench ipv6` and of the tests use the seed's topologies so moved.)"""
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return text
    if a.version != 4 or a not in SEED_NET:
        return text
    return str(IPV6_NET[int(a) - int(SEED_NET.network_address)])


def to_ipv6(cfg) -> None:
    """A worker config of the seed's, its ranges moved to IPv6 (seed_address_to_ipv6)."""
    l3 = cfg.network.l3
    for name in ("src_ip_start", "src_ip_end", "dst_ip_start", "dst_ip_end"):
        setattr(l3, name, seed_address_to_ipv6(getattr(l3, name)))
