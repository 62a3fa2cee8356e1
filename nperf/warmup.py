"""`python -m nperf.warmup [--clean]`: compile every kernel into Numba's cache, without DPDK.

A fresh checkout has an empty cache, and the first processes of a run would
each compile the same kernels at the same time (a minute or more on two
cores); a process that compiled its kernels itself also ran its input path
2-2.6x slower than one that loaded them from the cache (measured with `nperf
bench tcp`). Compiling from argument *types* needs no EAL: the arrays are
built as the roles build them (from the seed's test3 files shipped in
`nperf.data`, so an installed nperf needs no checkout), with placeholder
values that are never run.

Each role also calls `prepare()` before it creates its port: a kernel
missing from the cache (a first `nperf server` after installing) is then
compiled with a "compiling kernels (k/N)" line per kernel, instead of
silently for a minute while the port already exists.

`--clean` first deletes nperf's cached kernels. It is never needed for
correctness: the cache directory is named after a digest of the kernel
sources (`nperf.kernels.jit`), so an edited kernel file means a fresh
directory. The warm-up removes the directories of other digests.
"""
import os
import shutil
import sys
import time

import numba
import numpy as np

from nperf import config
from nperf.data import SEED_TEST3
from nperf.kernels import cfn, impair, io, jit, lb_loop, worker_loop
from nperf.roles.worker_stack import StackOptions, build_stack

ROLES = ("lb", "server", "client")


def _kernels(role: str) -> list[tuple[str, object, tuple]]:
    """(name, kernel, argument types) of every top-level kernel `role` calls."""
    fns = np.zeros(len(cfn.CFN_NAMES), np.int64)
    if role == "lb":
        from nperf.roles.lb import owner_table      # roles.lb calls prepare(): imported here, not at the top
        lb_cfg, _ = config.load_lb(os.path.join(SEED_TEST3, "lb_s.json"))
        scratch = lb_loop.LbScratch(1)
        one = np.zeros(1, np.int64)
        io_, imp = io.dpdk_io(io.PORT, 0, 0, 0), impair.new_impairment(None, 1e9)
        poll = (fns, 0, one, one, owner_table(lb_cfg).arrays(), scratch.arrays(), np.zeros(16, np.int64),
                np.zeros((1, lb_loop.N_WORKER_COUNTERS), np.int64), io_, imp, 0, 0, 0)
        flush = (fns, 0, scratch.arrays(), np.zeros(16, np.int64), io_, imp, 0)
        return [("lb_poll", lb_loop.lb_poll, _types(poll)), ("lb_flush", lb_loop.lb_flush, _types(flush))]
    cfg, _ = config.load_worker(os.path.join(SEED_TEST3, "s.json" if role == "server" else "c.json"))
    s = build_stack(cfg, role, b"\0" * 6, StackOptions(max_conns=16))
    poll = (fns, io.dpdk_io(io.PORT, 0, 0, 0), s, worker_loop.LoopScratch().arrays(), 0, 0, 0, 0, 1.0)
    return [(f"worker_poll ({role})", worker_loop.worker_poll, _types(poll))]


def _types(args: tuple) -> tuple:
    return tuple(numba.typeof(a) for a in args)


def _cached(kernel, sig: tuple) -> bool:
    """Whether Numba's cache holds `kernel` for `sig` (compiled or loadable), without loading it.

    Reads the cache index the way Dispatcher.compile does before it loads
    (numba.core.caching: the index is keyed by signature, codegen and a hash
    of the bytecode, and is empty when the source file changed)."""
    if kernel.overloads.get(sig) is not None:
        return True
    cache = kernel._cache
    key = cache._index_key(sig, kernel.targetctx.codegen())
    return key in cache._cache_file._load_index()


def _uncached(role: str) -> list[tuple[str, object, tuple]]:
    return [(name, k, sig) for name, k, sig in _kernels(role) if not _cached(k, sig)]


def missing(role: str) -> list[str]:
    """Names of the kernels of `role` that are not in the cache (see `nperf doctor`)."""
    return [name for name, _, _ in _uncached(role)]


def prepare(role: str, say) -> int:
    """Compile the kernels of `role` missing from the cache, saying "compiling kernels (k/N)"
    before each; returns how many were compiled."""
    missing = _uncached(role)
    if missing and stale_caches():
        say(f"kernel sources differ from the cached build: compiling for sources {jit.DIGEST}")
    for i, (name, kernel, sig) in enumerate(missing, 1):
        say(f"compiling kernels ({i}/{len(missing)}): {name}, once, cached afterwards")
        kernel.compile(sig)
    return len(missing)


def stale_caches() -> list[str]:
    """Cache directories built from other kernel sources than these."""
    if not os.path.isdir(jit.CACHE_ROOT):
        return []
    return [os.path.join(jit.CACHE_ROOT, d) for d in os.listdir(jit.CACHE_ROOT)
            if d not in (jit.DIGEST, "split-" + jit.DIGEST)]


def clean(everything: bool) -> int:
    """Delete cached kernels: of other sources, or all of them; returns how many directories went."""
    doomed = stale_caches() + ([jit.numba.config.CACHE_DIR] if everything else [])
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    return len(doomed)


def main(argv=None) -> int:
    clean("--clean" in (sys.argv[1:] if argv is None else argv))
    t0 = time.monotonic()
    compiled = sum(prepare(role, lambda line: print(line, file=sys.stderr, flush=True)) for role in ROLES)
    print(f"nperf kernels: {compiled} compiled, every one cached ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
