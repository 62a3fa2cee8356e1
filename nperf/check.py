"""`nperf check FILE|DIR...`: validate config files without starting anything.

A directory stands for its `*.json` files, the ones `nperf run DIR` loads.
Every file is checked, even after a failure, so one run reports every
problem.  Only ConfigError is caught: it is the user's mistake and has a
one-line message; anything else is a bug in nperf and keeps its traceback.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import TextIO

from nperf.config import ConfigError, LbConfig, WorkerConfig, load_any, owned_ips


def run_check(paths: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print OK/warning/error lines for each file; return 0 if all load, 2 otherwise.

    out/err default to the sys streams at call time (not at import), so
    redirections made by the caller are honoured.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    status = 0
    for path in _expanded(paths, err):
        if path is None:
            status = 2
            continue
        try:
            kind, cfg, warnings = load_any(path)
        except ConfigError as e:
            print(f"error: {e}", file=err)
            status = 2
            continue
        for warning in warnings:
            print(f"warning: {warning}", file=err)
        print(f"OK {path} ({kind}: {summary(cfg)})", file=out)
    return status


def _expanded(paths: list[str], err: TextIO):
    """The files to check: each path, or a directory's *.json files (None, said on err, for a
    directory with none)."""
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        files = sorted(glob.glob(os.path.join(path, "*.json")))
        if not files:
            print(f"error: {path}: a directory with no configuration files (*.json)", file=err)
            yield None
        yield from files


def summary(cfg: LbConfig | WorkerConfig) -> str:
    """A few words that let the user see the file was read the way they meant."""
    if isinstance(cfg, LbConfig):
        addresses = sum(len(w.ips) for w in cfg.clients)
        return f"{_count(len(cfg.clients), 'worker')}, {_count(addresses, 'address', 'addresses')}"
    l4, dpdk = cfg.network.l4, cfg.dpdk
    port = f"lb ring {dpdk.client_ring_idx}" if dpdk.is_dpdk_client else "own port"
    return (
        f"{cfg.objective.type} {cfg.objective.value}, {l4.protocol}, "
        f"{len(owned_ips(cfg, 'client'))} client IPs, "
        f"{len(owned_ips(cfg, 'server'))} server IPs x {l4.dst_port_end - l4.dst_port_start + 1} ports, "
        f"{_count(len(cfg.http_config.paths), 'path')}, {port}, core {dpdk.core_id}"
    )


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m nperf.check FILE|DIR...", file=sys.stderr)
        return 2
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
