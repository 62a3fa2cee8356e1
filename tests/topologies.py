"""Topology directories for `nperf run` tests: the seed's files, moved out of each other's way.

Tests copy a seed directory and change only what must differ between runs
(memif socket paths, DPDK file prefixes, phase lengths) so that a run never
meets a leftover of another; the seed files themselves are checked unchanged
by test_config and used unchanged by test_run_seed.
"""
import json
import os
import re

SEEDS = os.path.join(os.path.dirname(__file__), "seed_configs")


def copy_topology(session, seed: str, phases: dict | None = None, objective: dict | None = None,
                  tag: str = "") -> str:
    """The seed directory `seed` (e.g. "memif/test3") in the session's scratch dir, with private
    memif sockets and file prefixes; returns the new directory."""
    out = session.path(seed.replace("/", "_") + tag)
    os.makedirs(out, exist_ok=True)
    prefixes = {}
    for name in sorted(os.listdir(os.path.join(SEEDS, seed))):
        cfg = json.load(open(os.path.join(SEEDS, seed, name)))
        key = "dpdk_args" if "dpdk_args" in cfg else None
        args = cfg[key] if key else cfg["dpdk"]["args"]
        args = re.sub(r"--file-prefix=(\S+)",
                      lambda m: f"--file-prefix={prefixes.setdefault(m.group(1), session.prefix(m.group(1)[:8] + tag))}",
                      args)
        args = re.sub(r"(net_memif[^ ]*)", lambda m: m.group(1) + f",socket={session.path('memif' + tag + '.sock')},socket-abstract=no", args)
        if key:
            cfg[key] = args
        else:
            cfg["dpdk"]["args"] = args
            if phases:
                cfg["scheduler"].update(phases)
            if objective and name.startswith("c"):
                cfg["objective"].update(objective)
        with open(os.path.join(out, name), "w") as f:
            json.dump(cfg, f, indent=1)
    return out


SHORT = {"prepare_duration_sec": 2, "ramp_up_duration_sec": 2, "sustain_duration_sec": 4,
         "ramp_down_duration_sec": 1, "close_duration_sec": 2}


def failures(client_report: dict) -> int:
    """Failed requests and connections: every `errors` entry is a failure (the rest are `notes`)."""
    return sum(client_report["errors"].values())
