"""`python -m nperf.warmup [--clean]`: compile every kernel into Numba's cache, without DPDK.

A fresh checkout has an empty cache, and the first processes of a run would
each compile the same kernels at the same time (a minute or more on two
cores); a process that compiled its kernels itself also ran its input path
2-2.6x slower than one that loaded them from the cache (measured with `nperf
bench tcp`). Compiling from argument *types* needs no EAL: the arrays are
built as the roles build them, with placeholder values that are never run.

`--clean` first deletes nperf's cached kernels. Numba checks only a kernel's
own source file for changes, so after editing any file under
`nperf/kernels`, the kernels that call into it must be rebuilt this way.
"""
import os
import sys
import time

import numba
import numpy as np

from nperf import config
from nperf.kernels import cfn, lb_loop, worker_loop
from nperf.roles.lb import owner_table
from nperf.worker_stack import StackOptions, build_stack

SEED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "memif", "test3")


def _compile(kernel, *args) -> None:
    kernel.compile(tuple(numba.typeof(a) for a in args))


def clean() -> int:
    """Delete nperf's cached kernels; returns how many files went."""
    root = os.path.dirname(os.path.abspath(__file__))
    gone = 0
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith((".nbi", ".nbc")):
                os.unlink(os.path.join(d, f))
                gone += 1
    return gone


def main(argv=None) -> int:
    if "--clean" in (sys.argv[1:] if argv is None else argv):
        clean()
    t0 = time.monotonic()
    fns = np.zeros(len(cfn.C_NAMES), np.int64)
    lb_cfg, _ = config.load_lb(os.path.join(SEED, "lb_s.json"))
    scratch = lb_loop.LbScratch(1)
    one = np.zeros(1, np.int64)
    _compile(lb_loop.lb_poll, fns, 0, one, one, owner_table(lb_cfg).arrays(), scratch.arrays(),
             np.zeros(16, np.int64), np.zeros((1, lb_loop.N_WORKER_COUNTERS), np.int64), 0, 0, 0)
    _compile(lb_loop.lb_flush, fns, 0, scratch.arrays(), np.zeros(16, np.int64), 0)
    for role, name in (("server", "s.json"), ("client", "c.json")):
        cfg, _ = config.load_worker(os.path.join(SEED, name))
        s = build_stack(cfg, role, b"\0" * 6, StackOptions(max_conns=16))
        _compile(worker_loop.worker_poll, fns, np.zeros(worker_loop.N_IO, np.int64), s,
                 worker_loop.LoopScratch().arrays(), 0, 0, 0, 0, 1.0)
    print(f"nperf kernels compiled and cached in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
