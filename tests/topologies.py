"""Topology directories for `nperf run` tests: the seed's files, moved out of each other's way.

Tests copy a seed directory and change only what must differ between runs
(memif socket paths, DPDK file prefixes, phase lengths) so that a run never
meets a leftover of another; the seed files themselves are checked unchanged
by test_config and used unchanged by test_run_seed.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

from nperf.bench import seed_address_to_ipv6

SEEDS = os.path.join(os.path.dirname(__file__), "seed_configs")


def ipv6_only(cfg):
    """A seed config with every seed address moved to IPv6 (nperf.bench.seed_address_to_ipv6)."""
    if isinstance(cfg, dict):
        return {k: ipv6_only(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [ipv6_only(v) for v in cfg]
    return seed_address_to_ipv6(cfg) if isinstance(cfg, str) else cfg


def https_on(cfg: dict) -> dict:
    """A seed config with use_https: 1 (workers; an lb's file has no http_config)."""
    if "http_config" in cfg:
        cfg["http_config"]["use_https"] = 1
    return cfg


def ipv6_beside(cfg: dict) -> dict:
    """A seed config of test3's that also speaks IPv6 (mixed): a worker's l3.ipv6 holds its ranges
    moved to IPv6, an lb's workers own both forms of their addresses (nperf.bench.seed_address_to_ipv6)."""
    if "clients" in cfg:
        for w in cfg["clients"]:
            w["ips"] += [seed_address_to_ipv6(a) for a in w["ips"]]
    else:
        l3 = cfg["network"]["l3"]
        l3["ipv6"] = {k: seed_address_to_ipv6(v) for k, v in l3.items()}
    return cfg


def copy_topology(session, seed: str, phases: dict | None = None, objective: dict | None = None,
                  tag: str = "", change=None) -> str:
    """The seed directory `seed` (e.g. "memif/test3") in the session's scratch dir, with private
    memif sockets and file prefixes (and each config through `change`, if given: ipv6_only,
    ipv6_beside); returns the new directory."""
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
        if change:
            cfg = change(cfg)
        with open(os.path.join(out, name), "w") as f:
            json.dump(cfg, f, indent=1)
    return out


SHORT = {"prepare_duration_sec": 2, "ramp_up_duration_sec": 2, "sustain_duration_sec": 4,
         "ramp_down_duration_sec": 1, "close_duration_sec": 2}


def failures(client_report: dict) -> int:
    """Failed requests and connections: every `errors` entry is a failure (the rest are `notes`)."""
    return sum(client_report["errors"].values())


def children(pid: int) -> list[int]:
    """The processes `pid` started."""
    kids = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        kids += [int(x) for x in open(task).read().split()]
    return kids


def role_pid(run_pid: int, config: str) -> int:
    """The role of `nperf run` (pid `run_pid`) that was started with the config file `config`."""
    for kid in children(run_pid):
        try:
            argv = open(f"/proc/{kid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if config.encode() in argv:
            return kid
    raise AssertionError(f"no child of {run_pid} runs {config}")


def leftovers(directory: str) -> list[str]:
    """Hugepage files, DPDK runtime directories and memif sockets of a topology directory that still exist."""
    out = []
    for name in os.listdir(directory):
        cfg = json.load(open(os.path.join(directory, name)))
        args = cfg.get("dpdk_args") or cfg["dpdk"]["args"]
        prefix = re.search(r"--file-prefix=(\S+)", args).group(1)
        out += glob.glob(f"/dev/hugepages/{prefix}map_*") + glob.glob(f"/var/run/dpdk/{prefix}")
        out += [p for p in re.findall(r"socket=([^,\s]+)", args) if os.path.exists(p)]
    return out


KEPT_LOGS = re.compile(r"^role logs kept in (\S+)$", re.M)


def remove_kept_logs(text: str) -> list[str]:
    """The run directories whose role logs a failed `nperf run` said it kept (in its output `text`)
    and that exist, removed: a test's deliberately failed runs leave nothing in /tmp."""
    kept = [d for d in KEPT_LOGS.findall(text) if os.path.isdir(d)]
    for d in kept:
        shutil.rmtree(d)
    return kept


def balanced(client: dict) -> None:
    """A client report (JSON) whose connections and requests are all settled, each failure by its cause."""
    acc = client["accounting"]
    for side in ("connections", "requests"):
        a = acc[side]
        assert a["started"] == a["ok"] + a["failed"] + a.get("retried", 0) + a["open_now"], (side, a)
        assert a["open_now"] == 0 and a["failed"] == sum(a["failed_by_cause"].values()), (side, a)


RERUN = {"prepare_duration_sec": 1, "ramp_up_duration_sec": 1, "sustain_duration_sec": 2,
         "ramp_down_duration_sec": 0, "close_duration_sec": 1}


def runs_again(session, tag: str) -> None:
    """The seed's test3 with the same files, prefixes and sockets as `tag` runs at once to a clean end."""
    again = copy_topology(session, "memif/test3", phases=RERUN, tag=tag)
    r = subprocess.run([sys.executable, "-m", "nperf", "run", again, "--quiet"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "result: ok" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
