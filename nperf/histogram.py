"""Latency histograms in reports: nperf's log-linear bins, sparse, mergeable exactly.

Averaging percentiles across clients (or hosts) is wrong; adding histograms
is right. A client's kernels record into `nperf.kernels.latency` bins (an
int64 array of BUCKETS counts over microseconds); a report carries the
non-empty bins as `[index, count]` pairs together with the bin parameters,
so a reader can check that two histograms use the same bins before adding
them. Merging adds counts bin by bin, so the percentiles of a merge are
exactly those of one histogram that recorded every value (at the bins'
resolution: a value is known to within 1/2**sub_bits; percentiles are
reported as the top of their bin, as the roles do).
"""
import msgspec
import numpy as np

from nperf.kernels import latency

ENCODING = "nperf-log-linear"


class Histogram(msgspec.Struct):
    """Non-empty bins of a latency histogram; `bins` are [bin index, count] pairs by index."""
    encoding: str
    unit: str
    sub_bits: int
    buckets: int
    bins: list[tuple[int, int]]

    @property
    def total(self) -> int:
        return sum(c for _, c in self.bins)


class HistogramError(ValueError):
    """A histogram this nperf cannot read or merge (other bins or encoding)."""


def encode(counts: np.ndarray) -> Histogram:
    """The sparse form of a kernel histogram array."""
    idx = np.flatnonzero(counts)
    return Histogram(ENCODING, "us", latency.SUB_BITS, latency.BUCKETS,
                     [(int(i), int(counts[i])) for i in idx])


def decode(h: Histogram) -> np.ndarray:
    """The dense array (latency.BUCKETS counts) of an encoded histogram."""
    if (h.encoding, h.unit, h.sub_bits, h.buckets) != (ENCODING, "us", latency.SUB_BITS, latency.BUCKETS):
        raise HistogramError(f"histogram with encoding {h.encoding!r}, unit {h.unit!r}, sub_bits {h.sub_bits}, "
                             f"{h.buckets} buckets: this nperf reads {ENCODING!r} us, sub_bits {latency.SUB_BITS}, "
                             f"{latency.BUCKETS} buckets")
    out = np.zeros(latency.BUCKETS, np.int64)
    for i, c in h.bins:
        if not 0 <= i < latency.BUCKETS or c < 0:
            raise HistogramError(f"histogram bin [{i}, {c}] out of range")
        out[i] += c
    return out


def merge(hists: list[Histogram]) -> Histogram:
    """One histogram holding every value of `hists` (counts added bin by bin)."""
    total = np.zeros(latency.BUCKETS, np.int64)
    for h in hists:
        total += decode(h)
    return encode(total)


def percentiles_ms(h: Histogram, qs=(50.0, 90.0, 99.0, 99.9, 100.0)) -> list[float]:
    """Latency (ms) at the percentiles `qs`, each the top of its bin; 0 for an empty histogram."""
    return [v / 1000 for v in latency.percentiles(decode(h), qs)]


def distribution_ms(h: Histogram) -> tuple[list[float], list[int]]:
    """(top of each non-empty bin in ms, its count), for plots."""
    return [latency.bucket_value(i) / 1000 for i, _ in h.bins], [c for _, c in h.bins]
