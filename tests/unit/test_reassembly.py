"""The out-of-order pool (kernels.reassembly) on plain arrays: random segments with holes, overlaps
and duplicates give back the stream exactly once, in order; the per-connection share and the pool
bound what is kept, and every slot comes back. (tcp._data's use of it is tested frame by frame in
test_tcp and test_client_tcp.)"""
from collections import namedtuple

import numpy as np
import pytest

from nperf.kernels import reassembly
from nperf.kernels.bytes_util import copy_bytes
from nperf.kernels.jit import kernel
from nperf.kernels.stack import (C_TCP_DUPLICATE_SEGS, C_TCP_OOO_DISCARDED, C_TCP_OOO_KEPT, C_TCP_OOO_NOT_KEPT,
                                 N_COUNTERS, N_VAR, V_OOO_FREE)
from nperf.kernels.tcp_table import N_WORDS, T_OOO_HEAD, T_OOO_N
from tests.tcp_wire import ooo_chain

Fake = namedtuple("Fake", ("tcb", "ooo", "var", "counters"))     # what reassembly touches of a Stack


def fake(conns: int = 2, slots: int = reassembly.POOL_SLOTS) -> Fake:
    return Fake(np.zeros((conns, N_WORDS), np.int64), reassembly.new_pool(slots), np.zeros(N_VAR, np.int64),
                np.zeros(N_COUNTERS, np.int64))


@kernel
def _keep(s, c, stream, lo, hi, fin):
    reassembly.keep(s, c, stream, lo, hi - lo, lo, fin)


@kernel
def _drain(s, c, rcv, out):
    """What the application would get of the kept bytes from rcv on, into out[rcv:], slot by slot;
    returns (the new rcv, whether a kept FIN came next)."""
    fin = False
    while s.tcb[c, T_OOO_HEAD] != 0 and not fin:
        k, off, n, fin = reassembly.next_ready(s, c, rcv)
        if k < 0:
            break
        copy_bytes(out, rcv, reassembly.slot_view(s, k), off, n)
        rcv += n
        reassembly.release_slot(s, c, k)
    return rcv, fin


@kernel
def _discard(s, c):
    reassembly.discard(s, c)


def free_slots(s: Fake) -> list[int]:
    return ooo_chain(s, int(s.var[V_OOO_FREE]))


def kept(s: Fake, c: int) -> list[tuple[int, int]]:
    segs = s.ooo.segs
    return [(int(segs[x, reassembly.S_START]), int(segs[x, reassembly.S_LEN]))
            for x in ooo_chain(s, int(s.tcb[c, T_OOO_HEAD]) - 1)]


@pytest.mark.parametrize("seed", range(6))
def test_random_segments_give_the_stream_once_and_in_order(seed):
    rng = np.random.default_rng(seed)
    size = 300_000
    stream = rng.integers(0, 256, size, dtype=np.uint8)
    out = np.zeros(size, np.uint8)
    s = fake()
    rcv = 0
    for op in range(20_000):
        if rcv == size:
            break
        lo = min(max(rcv + int(rng.integers(-1500, 8000)), 0), size - 1)    # a window around rcv_nxt
        hi = min(size, lo + int(rng.integers(1, 1500)))
        if lo > rcv:
            before = kept(s, 0)
            _keep(s, 0, stream, lo, hi, False)
            if any(a <= lo and a + n >= hi for a, n in before):
                assert kept(s, 0) == before                  # nothing new: not kept
        elif hi > rcv:
            out[rcv:hi] = stream[rcv:hi]                     # the in-order part, as the stack gives it
            rcv, _ = _drain(s, 0, hi, out)
        segs = kept(s, 0)
        assert segs == sorted(segs) and all(a > rcv for a, _ in segs[:1]), segs
        assert len(segs) == s.tcb[0, T_OOO_N] <= reassembly.PER_CONN
        if op % 64 == 0:                                     # a walk of the whole pool: not every step
            assert len(segs) + len(free_slots(s)) == reassembly.POOL_SLOTS
    assert np.array_equal(out[:rcv], stream[:rcv]) and rcv == size
    c = s.counters
    assert c[C_TCP_OOO_KEPT] > 100 and c[C_TCP_DUPLICATE_SEGS] > 0
    _discard(s, 0)
    assert kept(s, 0) == [] and len(free_slots(s)) == reassembly.POOL_SLOTS
    assert c[C_TCP_OOO_DISCARDED] == len(segs)


def test_a_segment_that_covers_kept_ones_replaces_them():
    stream = np.arange(100, dtype=np.uint8)
    s = fake()
    for lo, hi in ((20, 30), (40, 50), (60, 70)):
        _keep(s, 0, stream, lo, hi, False)
    _keep(s, 0, stream, 15, 55, False)                       # covers the first two
    assert kept(s, 0) == [(15, 40), (60, 10)] and s.tcb[0, T_OOO_N] == 2
    _keep(s, 0, stream, 62, 68, False)                       # inside a kept one
    assert kept(s, 0) == [(15, 40), (60, 10)] and s.counters[C_TCP_DUPLICATE_SEGS] == 1
    out = np.zeros(100, np.uint8)
    out[:15] = stream[:15]
    assert _drain(s, 0, 15, out) == (55, False)              # up to the next hole
    assert np.array_equal(out[:55], stream[:55]) and kept(s, 0) == [(60, 10)]


def test_a_kept_fin_is_reported_after_its_last_byte():
    stream = np.arange(100, dtype=np.uint8)
    s = fake()
    _keep(s, 0, stream, 50, 60, True)
    out = np.zeros(100, np.uint8)
    assert _drain(s, 0, 50, out) == (60, True)
    s = fake()
    _keep(s, 0, stream, 50, 60, False)
    _keep(s, 0, stream, 55, 60, True)                        # a resend with the FIN: marks the kept one
    assert kept(s, 0) == [(50, 10)]
    assert _drain(s, 0, 60, out) == (60, True)               # its bytes taken already; the FIN is next


def test_the_share_per_connection_and_the_pool_bound_what_is_kept():
    stream = np.zeros(4 * reassembly.PER_CONN + 8, np.uint8)
    s = fake(conns=2, slots=reassembly.PER_CONN + 3)
    for k in range(reassembly.PER_CONN + 1):                 # one over the share
        _keep(s, 0, stream, 1 + 2 * k, 2 + 2 * k, False)
    assert s.tcb[0, T_OOO_N] == reassembly.PER_CONN
    assert (s.counters[C_TCP_OOO_KEPT], s.counters[C_TCP_OOO_NOT_KEPT]) == (reassembly.PER_CONN, 1)
    for k in range(4):                                       # the other connection gets the last three slots
        _keep(s, 1, stream, 1 + 2 * k, 2 + 2 * k, False)
    assert s.tcb[1, T_OOO_N] == 3 and s.counters[C_TCP_OOO_NOT_KEPT] == 2 and free_slots(s) == []
    _discard(s, 0)
    _discard(s, 1)
    assert sorted(free_slots(s)) == list(range(reassembly.PER_CONN + 3))
