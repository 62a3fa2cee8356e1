"""SACK (kernels.sack) on plain arrays: the scoreboard against a model under random blocks, holes and
pipe against a byte map, the option an ACK carries built from kept segments, and the option parser
against bogus blocks. (tcp's use of it is tested frame by frame in test_tcp and test_client_tcp.)"""
import struct

import numpy as np
import pytest

from nperf.kernels import sack
from nperf.kernels.jit import kernel
from nperf.kernels.stack import C_TCP_DSACKS_IN, C_TCP_SACK_BLOCKS_IN, C_TCP_SACK_BLOCKS_OUT
from nperf.kernels.tcp_table import (SACK_RANGES, T_CWND, T_DUPTHRESH, T_IRS, T_ISS, T_OOO_LAST, T_RCV_NXT, T_RTX_NXT, T_SACK,
                                     T_SACK_N, T_SND_MAX, T_SND_UNA)
from tests.unit.test_reassembly import _keep, fake

M32 = 0xFFFFFFFF


@kernel
def _take(s, c, b):
    sack.take_blocks(s, c, b, 0, b.shape[0], s.tcb[c, T_SND_UNA])     # a duplicate ACK's blocks


@kernel
def _trim(s, c, una):
    sack.trim(s.tcb, c, una)


@kernel
def _hole_and_pipe(s, c, frm, mss):
    start, n = sack.next_hole(s.tcb, c, frm, mss)
    return start, n, sack.pipe(s.tcb, c, mss)


def option(blocks, base=0) -> np.ndarray:
    body = b"".join(struct.pack("!II", (base + a) & M32, (base + b) & M32) for a, b in blocks)
    return np.frombuffer(b"\x01\x01" + bytes([5, 2 + len(body)]) + body, np.uint8).copy()


def held(s, c=0) -> list[tuple[int, int]]:
    n = int(s.tcb[c, T_SACK_N])
    return [(int(s.tcb[c, T_SACK + 2 * k]), int(s.tcb[c, T_SACK + 2 * k + 1])) for k in range(n)]


class Model:
    """The scoreboard's policy in plain Python: merged sorted ranges; when full, a range beyond all
    held ones is dropped, any other pushes the highest out."""

    def __init__(self):
        self.ranges: list[tuple[int, int]] = []

    def mark(self, a: int, b: int) -> None:
        touching = [r for r in self.ranges if r[1] >= a and r[0] <= b]
        rest = [r for r in self.ranges if r not in touching]
        if not touching and len(self.ranges) == SACK_RANGES:
            if all(r[1] < a for r in self.ranges):
                return
            rest = sorted(rest)[:-1]
        merged = (min([a] + [r[0] for r in touching]), max([b] + [r[1] for r in touching]))
        self.ranges = sorted(rest + [merged])

    def trim(self, una: int) -> None:
        self.ranges = [(max(a, una), b) for a, b in self.ranges if b > una]


@pytest.mark.parametrize("seed", range(8))
def test_the_scoreboard_follows_the_model_and_never_claims_a_byte_not_sacked(seed):
    rng = np.random.default_rng(seed)
    s, m = fake(1), Model()
    t = s.tcb
    t[0, T_ISS] = int(rng.integers(0, M32))                     # edges wrap where the ISS puts them
    una, snd_max = 1, 60_000
    t[0, T_SND_UNA], t[0, T_SND_MAX] = una, snd_max
    sacked = np.zeros(snd_max + 1, bool)                        # every byte ever SACKed
    taken = dsacks = 0
    for _ in range(400):
        if rng.random() < 0.15:
            una = min(una + int(rng.integers(1, 3000)), snd_max)
            t[0, T_SND_UNA] = una
            _trim(s, 0, una)
            m.trim(una)
        else:
            blocks = []
            for _ in range(int(rng.integers(1, 5))):
                a = una + int(rng.integers(-500, 20_000))
                blocks.append((a, a + int(rng.integers(-10, 3000))))
            _take(s, 0, option(blocks, int(t[0, T_ISS])))
            (a1, b1), second = blocks[0], blocks[1:2]
            if a1 < b1 and (b1 <= una or second and second[0][0] <= a1 and b1 <= second[0][1]):
                blocks = blocks[1:]                             # a D-SACK: reported, not marked
                dsacks += 1
            for a, b in blocks:
                if una < a < b <= snd_max:
                    m.mark(a, b)
                    sacked[a:b] = True
                    taken += 1
        assert held(s) == m.ranges
        for a, b in held(s):
            assert una <= a < b and sacked[a:b].all()
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(held(s), held(s)[1:]))     # disjoint, not touching
    assert int(s.counters[C_TCP_SACK_BLOCKS_IN]) == taken > 100
    assert int(s.counters[C_TCP_DSACKS_IN]) == dsacks > 0


def test_blocks_below_snd_una_beyond_snd_max_or_empty_are_ignored():
    s = fake(1)
    t = s.tcb
    t[0, T_ISS], t[0, T_SND_UNA], t[0, T_SND_MAX] = M32 - 100, 1000, 5000    # the edges wrap past 0
    _take(s, 0, option([(900, 1100), (1000, 1200), (4000, 5001), (3000, 3000), (3500, 3400), (2000, 2500)],
                       M32 - 100))
    assert held(s) == [(2000, 2500)] and int(s.counters[C_TCP_SACK_BLOCKS_IN]) == 1
    bad = option([(1500, 1600)], M32 - 100)
    for length in (9, 40, 1):                       # the block not within the length; past the end; < 2
        bad[3] = length
        _take(s, 0, bad)
        assert held(s) == [(2000, 2500)]
    _take(s, 0, option([(1500, 1600)], M32 - 100))
    assert held(s) == [(1500, 1600), (2000, 2500)] and int(s.counters[C_TCP_SACK_BLOCKS_IN]) == 2


def reference(sacked: np.ndarray, una: int, snd_max: int, rtx: int, mss: int):
    """RFC 6675 octet by octet: a byte not SACKed is lost when 3 runs, or more than 2 segments of
    bytes, are SACKed above it; pipe counts the others, and the lost ones below rtx (resent)."""
    starts = [x for x in range(una, snd_max) if sacked[x] and not sacked[x - 1]]
    above = sacked.sum() - np.cumsum(sacked)                    # SACKed bytes beyond each byte
    runs_above = np.searchsorted(starts, np.arange(len(sacked)), side="right")
    lost = ~sacked & ((len(starts) - runs_above >= 3) | (above > 2 * mss))
    lost[:una] = False
    pipe = int((~sacked[una:snd_max] & (~lost[una:snd_max] | (np.arange(una, snd_max) < rtx))).sum())
    return lost, pipe


@pytest.mark.parametrize("seed", range(8))
def test_lost_holes_and_pipe_match_rfc_6675_octet_by_octet(seed):
    rng = np.random.default_rng(seed)
    s = fake(1)
    t = s.tcb
    mss = int(rng.choice([100, 536, 1460]))
    una, snd_max = 1 + int(rng.integers(0, 100)), 20_000
    t[0, T_SND_UNA], t[0, T_SND_MAX] = una, snd_max
    sacked = np.zeros(snd_max + 1, bool)
    blocks = []
    for _ in range(int(rng.integers(1, SACK_RANGES))):          # fewer than the cap: nothing forgotten
        a = una + int(rng.integers(1, 18_000))
        blocks.append((a, min(a + int(rng.integers(1, 3000)), snd_max)))
    _take(s, 0, option(blocks))
    for a, b in blocks:
        sacked[a:b] = True
    for _ in range(60):
        rtx = una + int(rng.integers(0, snd_max - una))
        t[0, T_RTX_NXT] = rtx
        frm = una + int(rng.integers(0, snd_max - una))
        lost, pipe = reference(sacked, una, snd_max, rtx, mss)
        start, n, got_pipe = _hole_and_pipe(s, 0, frm, mss)
        first = np.flatnonzero(lost[frm:snd_max])
        if len(first):
            a = frm + int(first[0])
            b = a
            while b < snd_max and lost[b]:
                b += 1
            assert (start, n) == (a, b - a)
        else:
            assert n == 0
        assert got_pipe == pipe


def test_touching_blocks_become_one_range_and_three_ranges_above_make_a_hole_lost():
    s = fake(1)
    t = s.tcb
    t[0, T_SND_UNA], t[0, T_SND_MAX] = 1, 100_000
    for block, ranges in (((100, 200), [(100, 200)]), ((200, 300), [(100, 300)]), ((50, 100), [(50, 300)]),
                          ((400, 410), [(50, 300), (400, 410)]), ((300, 400), [(50, 410)])):
        _take(s, 0, option([block]))
        assert held(s) == ranges
    s = fake(1)
    t = s.tcb
    t[0, T_SND_UNA], t[0, T_SND_MAX] = 1, 100_000
    _take(s, 0, option([(1000, 1010), (2000, 2010)]))          # 20 bytes in two ranges above [1, 1000)
    assert _hole_and_pipe(s, 0, 1, 1460)[:2] == (1, 0)          # maybe only reordered
    _take(s, 0, option([(3000, 3010)]))                         # a third range: lost (DupThresh)
    assert _hole_and_pipe(s, 0, 1, 1460)[:2] == (1, 999)


def test_a_dsack_is_counted_not_marked_and_raises_dupthresh_up_to_half_the_window():
    """RFC 2883: a first block below the ACK, or within the second block, reports data received twice.
    Each raises DupThresh by one: a hole with three ranges above it is no longer lost, five make it
    so; a small congestion window caps the raise."""
    s = fake(1)
    t = s.tcb
    mss = 1000
    t[0, T_SND_UNA], t[0, T_SND_MAX], t[0, T_CWND] = 1000, 100_000, 40 * mss
    _take(s, 0, option([(500, 900)]))                           # below the ACK
    assert (held(s), int(t[0, T_DUPTHRESH]), int(s.counters[C_TCP_DSACKS_IN])) == ([], 1, 1)
    _take(s, 0, option([(3000, 3100), (2000, 4000)]))           # within the second block
    assert (held(s), int(t[0, T_DUPTHRESH]), int(s.counters[C_TCP_DSACKS_IN])) == ([(2000, 4000)], 2, 2)
    _take(s, 0, option([(5000, 6000), (4500, 5500)]))           # overlapping the second: two plain blocks
    _take(s, 0, option([(900, 900), (8000, 8100)]))             # empty: not a D-SACK, and ignored
    assert held(s) == [(2000, 4000), (4500, 6000), (8000, 8100)] and int(t[0, T_DUPTHRESH]) == 2
    assert int(s.counters[C_TCP_SACK_BLOCKS_IN]) == 1 + 2 + 1
    assert sack.DUP_THRESH == 3 and _hole_and_pipe(s, 0, 1000, mss)[:2] == (1000, 0)   # 3 ranges < 5
    _take(s, 0, option([(8100, 8600)]))
    assert _hole_and_pipe(s, 0, 1000, mss)[:2] == (1000, 1000)          # 4,100 bytes above: > 4 segments
    t[0, T_CWND], t[0, T_SACK_N] = 8 * mss, 0                   # half the window: DupThresh 4
    _take(s, 0, option([(2000, 2100), (3000, 3100), (4000, 4100)]))
    assert _hole_and_pipe(s, 0, 1000, mss)[:2] == (1000, 0)
    _take(s, 0, option([(5000, 5100)]))
    assert _hole_and_pipe(s, 0, 1000, mss)[:2] == (1000, 1000)
    t[0, T_DUPTHRESH] = sack.MAX_RAISE
    _take(s, 0, option([(100, 200)]))
    assert int(t[0, T_DUPTHRESH]) == sack.MAX_RAISE and int(s.counters[C_TCP_DSACKS_IN]) == 3


def test_a_full_scoreboard_drops_the_highest_range_and_never_resends_what_it_does_not_know():
    s = fake(1)
    t = s.tcb
    t[0, T_SND_UNA], t[0, T_SND_MAX] = 1, 100_000
    full = [(1000 * k, 1000 * k + 500) for k in range(2, 2 + SACK_RANGES)]
    _take(s, 0, option(full))
    _take(s, 0, option([(50_000, 51_000)]))                     # beyond all held: dropped
    assert held(s) == full
    _take(s, 0, option([(1500, 1600)]))                         # a low one: the highest makes room
    assert held(s) == [(1500, 1600)] + full[:-1]
    t[0, T_RTX_NXT] = 0
    start, n, _ = _hole_and_pipe(s, 0, full[-2][1], 100)        # beyond the last held: nothing known lost
    assert n == 0


@kernel
def _put(s, c, b, most):
    return sack.put_blocks(s, c, b, 0, most)


def blocks_sent(b: np.ndarray, n: int, irs: int) -> list[tuple[int, int]]:
    assert n == 4 + 8 * ((n - 4) // 8) and bytes(b[:4]) == bytes([1, 1, 5, n - 2])
    return [tuple((v - irs) & M32 for v in struct.unpack_from("!II", b, 4 + 8 * k)) for k in range((n - 4) // 8)]


def test_an_acks_blocks_are_the_kept_runs_the_latest_first():
    s = fake(1)
    t = s.tcb
    t[0, T_IRS], t[0, T_RCV_NXT] = M32 - 50, 100
    stream = np.arange(20_000, dtype=np.uint8)
    for lo, hi in ((1000, 1500), (1500, 1800), (3000, 3100), (5000, 5200), (5100, 5300), (7000, 7001),
                   (9000, 9500)):
        _keep(s, 0, stream, lo, hi, False)
    b = np.zeros(64, np.uint8)
    t[0, T_OOO_LAST] = 5100                                     # the latest kept: inside the third run
    n = _put(s, 0, b, 4)
    assert blocks_sent(b, n, M32 - 50) == [(5000, 5300), (1000, 1800), (3000, 3100), (7000, 7001)]
    n = _put(s, 0, b, 2)
    assert blocks_sent(b, n, M32 - 50) == [(5000, 5300), (1000, 1800)]
    t[0, T_OOO_LAST] = 1                                        # not kept (the share was full): in order only
    n = _put(s, 0, b, 3)
    assert blocks_sent(b, n, M32 - 50) == [(1000, 1800), (3000, 3100), (5000, 5300)]
    assert _put(s, 0, b, 0) == 0
    assert int(s.counters[C_TCP_SACK_BLOCKS_OUT]) == 4 + 2 + 3
    empty = fake(1)
    assert _put(empty, 0, b, 4) == 0 and int(empty.counters[C_TCP_SACK_BLOCKS_OUT]) == 0
