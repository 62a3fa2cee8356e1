"""`nperf bench ipv6`: nperf over IPv6 against nperf over IPv4, on the same direct memif link.

The setup is `nperf bench dperf`'s (the seed's test3 client and server, each
owning one end of a private memif, no lb), once with the seed's IPv4
addresses and once with each moved to IPv6 (192.168.1.x to fd00:1::x),
alternating, `--rounds` times: connections/s (one request per connection)
and keep-alive requests/s on 1,000 connections. It prints every run and the
median ratios IPv6/IPv4 (target: at least 0.9). An IPv6 frame carries 20
header bytes more, its checksum sums 24 address bytes more, and its 4-tuple
is folded into hash keys; the rest is the IPv4 code path.
"""
import json
import statistics

from nperf.bench import median_ratio
from nperf.bench.dperf import nperf_rate

def main(args) -> int:
    secs = max(args.seconds, 5.0)
    worker_args = args.worker_args.split()
    print(f"nperf bench ipv6: direct memif, {secs:g} s per run, {args.rounds} rounds, IPv4 and IPv6 alternating")
    rows = {k: [] for k in ("ipv4_cps", "ipv6_cps", "ipv4_rps", "ipv6_rps")}
    for r in range(1, args.rounds + 1):
        for key in rows:
            value, note = nperf_rate(key.endswith("rps"), secs, worker_args, ipv6=key.startswith("ipv6"))
            rows[key].append(value)
            print(f"round {r} {key}: {value:,.0f} ({note})", flush=True)
    for key, values in rows.items():
        print(f"{key}: median {statistics.median(values):,.0f} over {len(values)} rounds")
    for what, kind in (("connections/s", "cps"), ("keep-alive requests/s", "rps")):
        if any(rows[f"ipv4_{kind}"]):
            print(f"{what} IPv6/IPv4: median ratio {median_ratio(rows[f'ipv6_{kind}'], rows[f'ipv4_{kind}']):.2f} "
                  f"(target >= 0.9)")
    print(json.dumps(rows))
    return 0
