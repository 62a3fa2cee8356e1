"""Sweep the concurrency target over short runs of a topology with the asyncio API.

    python examples/api_sweep.py [--dir examples/memif/test4] [--targets 8,32,128] [--seconds 6]

Each run loads the directory's config files as Structs, changes the client's
objective in Python, runs the topology, and keeps the typed client report.
Prints one table row per target; exits 1 if any run had a failure.
"""
import argparse
import os
import sys

import msgspec
import uvloop

from nperf import api, config


async def sweep(directory: str, targets: list[int], seconds: float) -> list[tuple[int, api.RunResult]]:
    files = {os.path.splitext(f)[0]: os.path.join(directory, f) for f in sorted(os.listdir(directory))
             if f.endswith(".json")}
    lbs = {k: config.load_lb(p)[0] for k, p in files.items() if k.startswith("lb")}
    servers = {k: config.load_worker(p)[0] for k, p in files.items() if k.startswith("s")}
    results = []
    for target in targets:
        clients = {}
        for k, p in files.items():
            if k.startswith("c"):
                cfg = config.load_worker(p)[0]
                cfg.objective = msgspec.structs.replace(cfg.objective, value=target)
                clients[k] = cfg
        topology = api.Topology.from_configs(lbs=lbs, servers=servers, clients=clients)
        results.append((target, await api.run(topology, duration=seconds)))
    return results


def table(results: list[tuple[int, api.RunResult]]) -> str:
    rows = ["target  conns      cps        rps        p50 ms  p99 ms  failed  ok"]
    for target, result in results:
        for rep in result.client_reports():
            rows.append(f"{target:<7} {rep.connections_opened:<10,} {rep.sustain.cps:<10,.0f} {rep.sustain.rps:<10,.0f} "
                        f"{rep.latency_ms.p50:<7.2f} {rep.latency_ms.p99:<7.2f} {rep.responses_failed:<7,} "
                        f"{'yes' if result.ok else 'NO'}")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default=os.path.join(os.path.dirname(__file__), "memif", "test4"))
    p.add_argument("--targets", default="8,32,128")
    p.add_argument("--seconds", type=float, default=6.0)
    a = p.parse_args()
    results = uvloop.run(sweep(a.dir, [int(x) for x in a.targets.split(",")], a.seconds))
    print(table(results))
    return 0 if all(r.ok for _, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
