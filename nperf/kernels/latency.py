"""Latency histograms: log-linear buckets over microseconds (HdrHistogram-like).

Values below 2*SUB are exact; above, each power of two is split into SUB
buckets, so a recorded value is known to within 1/SUB (1.6 %). Histograms
are plain int64 arrays: kernels add, Python reads percentiles once a second,
and two histograms merge by adding their arrays.
"""
import numpy as np

from nperf.kernels.jit import inline

SUB_BITS = 6
SUB = 1 << SUB_BITS
MAX_EXP = 40                     # up to 2**46 us, far beyond any timeout
BUCKETS = (MAX_EXP + 2) * SUB


@inline
def bucket(v):
    if v < 2 * SUB:
        return max(v, 0)
    e = 0
    x = v >> (SUB_BITS + 1)
    while x > 0:
        x >>= 1
        e += 1
    return min((e + 1) * SUB + ((v >> e) - SUB), BUCKETS - 1)


@inline
def record(h, v):
    h[bucket(v)] += 1


def bucket_value(i: int) -> int:
    """The highest value that falls in bucket i (percentiles are reported as bucket tops)."""
    if i < 2 * SUB:
        return i
    e = i // SUB - 1
    return ((i - (e + 1) * SUB + SUB + 1) << e) - 1


def percentiles(h: np.ndarray, qs=(50.0, 90.0, 99.0, 99.9, 100.0)) -> list[float]:
    """Values (us) at the given percentiles; 0 for an empty histogram."""
    total = int(h.sum())
    if total == 0:
        return [0.0 for _ in qs]
    cum = np.cumsum(h)
    out = []
    for q in qs:
        rank = max(1, int(np.ceil(q / 100.0 * total)))
        out.append(float(bucket_value(int(np.searchsorted(cum, rank)))))
    return out
