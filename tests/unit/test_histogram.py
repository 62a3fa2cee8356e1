"""Latency histograms in reports: the sparse encoding round-trips and merges exactly."""
import msgspec
import numpy as np
import pytest

from nperf import histogram
from nperf.kernels import latency
from nperf.reports import ClientReport


def recorded(values_us) -> np.ndarray:
    """A kernel histogram that recorded `values_us`, with the kernels' own bucket function."""
    h = np.zeros(latency.BUCKETS, np.int64)
    for v in values_us:
        h[latency.bucket(int(v))] += 1
    return h


def union_percentiles_ms(values_us, qs):
    """Percentiles of the union, straight from the values: the top of the bin of the value of rank q."""
    ordered = sorted(latency.bucket(int(v)) for v in values_us)
    out = []
    for q in qs:
        rank = max(1, int(np.ceil(q / 100 * len(ordered))))
        out.append(latency.bucket_value(ordered[rank - 1]) / 1000)
    return out


QS = (1.0, 10.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0)


def test_two_clients_merge_to_the_percentiles_of_their_union():
    rng = np.random.default_rng(3)
    a = rng.lognormal(6.5, 0.6, 20_000).astype(np.int64)          # a fast client, ~700 us
    b = np.concatenate([rng.lognormal(8.0, 0.4, 5_000), [250_000, 1_000_000]]).astype(np.int64)   # a slow one
    wire = [msgspec.json.decode(msgspec.json.encode(histogram.encode(recorded(x))), type=histogram.Histogram)
            for x in (a, b)]
    merged = histogram.merge(wire)
    union = np.concatenate([a, b])
    assert merged.total == 25_002
    assert histogram.decode(merged).tolist() == recorded(union).tolist()
    assert histogram.percentiles_ms(merged, QS) == union_percentiles_ms(union, QS)
    # the mean of the two clients' p99 is not the p99 of the union: why reports carry histograms
    mean_p99 = sum(histogram.percentiles_ms(h, (99.0,))[0] for h in wire) / 2
    assert mean_p99 != histogram.percentiles_ms(merged, (99.0,))[0]


def test_small_values_are_exact_and_large_ones_within_one_bin():
    h = histogram.encode(recorded([3, 3, 7, 100, 127]))
    assert h.bins == [(3, 2), (7, 1), (100, 1), (127, 1)]
    assert histogram.percentiles_ms(h, (20.0, 40.0, 60.0, 80.0, 100.0)) == [0.003, 0.003, 0.007, 0.1, 0.127]
    big = histogram.encode(recorded([1_000_000]))
    top = histogram.percentiles_ms(big, (100.0,))[0] * 1000
    assert 1_000_000 <= top < 1_000_000 * (1 + 1 / latency.SUB)


def test_encoding_names_its_bins_and_refuses_others():
    h = histogram.encode(recorded([10, 5000]))
    assert (h.encoding, h.unit, h.sub_bits, h.buckets) == ("nperf-log-linear", "us", latency.SUB_BITS, latency.BUCKETS)
    other = msgspec.structs.replace(h, sub_bits=5)
    with pytest.raises(histogram.HistogramError, match="sub_bits 5"):
        histogram.merge([h, other])
    with pytest.raises(histogram.HistogramError, match="out of range"):
        histogram.decode(msgspec.structs.replace(h, bins=[(latency.BUCKETS, 1)]))


def test_empty_histogram_has_zero_percentiles_and_merges_as_nothing():
    empty = histogram.encode(np.zeros(latency.BUCKETS, np.int64))
    assert empty.bins == [] and histogram.percentiles_ms(empty) == [0.0] * 5
    one = histogram.encode(recorded([42]))
    assert histogram.merge([empty, one]) == one


def test_a_client_report_carries_the_histogram_and_old_files_still_load():
    fields = dict(role="client", config="c.json", seconds=1, connections_opened=1, requests_sent=1,
                  responses_ok=1, responses_failed=0, errors={}, sustain={"cps": 1, "rps": 1, "tx_mbps": 0, "rx_mbps": 0},
                  latency_ms={"p50": 0.042, "p90": 0.042, "p99": 0.042, "p999": 0.042, "max": 0.042},
                  per_second=[], counters={}, http={}, type="client")
    rep = msgspec.convert(dict(fields, latency_histogram=msgspec.to_builtins(histogram.encode(recorded([42])))),
                          ClientReport)
    assert histogram.percentiles_ms(rep.latency_histogram, (50.0,)) == [0.042]
    assert msgspec.convert(fields, ClientReport).latency_histogram is None
