"""Allocating the big per-connection tables (Python side, at build time): zeroed, on huge pages.

A worker's tables (connection rows, the 4-tuple hash, TIME-WAIT records,
work and idle lists) are sized for `--max-conns` (a million by default), so
even the few thousand rows and hash entries a run touches are spread over
thousands of 4 KiB pages: `perf` showed most of a keep-alive request's
lookup time as stalls on the hash and the row, TLB misses among them. An
anonymous mapping with MADV_HUGEPAGE (transparent huge pages, "madvise"
mode on Debian) gives 2 MiB pages where the kernel can; elsewhere it is an
ordinary zeroed mapping. Pages still cost memory only once touched.
"""
import mmap

import numpy as np

HUGE = 2 << 20        # below this an array gains nothing from huge pages


def zeros(shape, dtype=np.int64) -> np.ndarray:
    """np.zeros(shape, dtype), from a mapping advised to use transparent huge pages if it is large."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    if n < HUGE:
        return np.zeros(shape, dtype)
    m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(m, dtype).reshape(shape)
