"""Selective acknowledgments (RFC 2018) and the loss recovery that uses them (RFC 6675, simplified).

Both ends must permit SACK in their SYNs (F_SACK; `--no-sack` turns it off).

Receiving, an ACK reports the kept out-of-order segments
(nperf.kernels.reassembly) as up to four blocks, the block holding the
latest kept segment first (RFC 2018 section 4). So a Linux sender resends
only what was lost instead of one hole per round trip.

Sending, the blocks an ACK brings go into the row's scoreboard: at most
SACK_RANGES disjoint ranges, sorted, above snd_una. Once full, a new range
beyond all of them is dropped, and any other pushes out the highest one.
Forgetting only costs a resend the SACK would have spared; nothing is ever
skipped. In fast recovery (nperf.kernels.tcp: three duplicate ACKs) the lost
holes are sent again in order from `rtx_nxt`, as long as the congestion
window exceeds `pipe`, the bytes estimated in flight. A hole is lost when
three ranges, or more than two segments, are SACKed above it (RFC 6675
IsLost); with less above it may only be reordered, and it counts in
flight. New data follows under the same limit. The congestion window is
halved once on entry and not inflated by duplicate ACKs, since the SACKs
make pipe fall instead. A retransmission timeout forgets the scoreboard
(RFC 2018 section 8), but the blocks the ACKs of its resends bring are used:
sending again from snd_una, tcp_output skips what they show the peer holds
(`unsacked`).

A path that reorders by more than DupThresh segments (the lb's jitter does:
frames delayed 0.5 to 1.5 ms overtake each other) makes such holes look
lost, and resending them is wasted. The peer tells: a D-SACK (RFC 2883)
reports data it got twice. Each one raises the connection's DupThresh by a
segment, for entering recovery and for IsLost alike, as Linux raises its
reordering degree (its RACK, which times each segment, is not here). The
raise is capped at half the congestion window, so that a loss in a small
window is still found by SACKs and not left to a timeout.
"""
import numpy as np

from nperf.kernels import net
from nperf.kernels.jit import inline, kernel
from nperf.kernels.reassembly import S_LEN, S_NEXT, S_START
from nperf.kernels.stack import C_TCP_DSACKS_IN, C_TCP_SACK_BLOCKS_IN, C_TCP_SACK_BLOCKS_OUT
from nperf.kernels.tcp_table import (SACK_RANGES, T_CWND, T_DUPTHRESH, T_IRS, T_ISS, T_OOO_HEAD, T_OOO_LAST, T_RCV_NXT, T_RTX_NXT,
                                     T_SACK, T_SACK_N, T_SND_MAX, T_SND_UNA)

M32 = 0xFFFFFFFF
MAX_BLOCKS = 4          # one option: 4 + 8 x 4 = 36 of the 40 bytes a TCP header has for options
DUP_THRESH = 3          # RFC 6675 DupThresh, as for fast retransmit, until D-SACKs raise it
MAX_RAISE = 61          # D-SACKs raise a connection's DupThresh to 64 segments at most


# --- receiving: blocks out ------------------------------------------------

@inline
def _run_at(s, cur):
    """The kept segments from slot cur on that touch or overlap: (left, right, the slot after them)."""
    segs = s.ooo.segs
    left = segs[cur, S_START]
    right = left + segs[cur, S_LEN]
    cur = segs[cur, S_NEXT]
    while cur >= 0 and segs[cur, S_START] <= right:
        right = max(right, segs[cur, S_START] + segs[cur, S_LEN])
        cur = segs[cur, S_NEXT]
    return left, right, cur


@inline
def _put_block(s, c, b, q, left, right):
    irs = s.tcb[c, T_IRS]
    net.put32(b, q, (irs + left) & M32)
    net.put32(b, q + 4, (irs + right) & M32)


@kernel
def put_blocks(s, c, b, p, most):
    """A SACK option at b[p:] of up to `most` blocks of c's kept segments, the latest one's block
    first; its length in bytes (a multiple of 4; 0: nothing to report). Counted. A call, not
    inlined: it would bloat every place a segment is built, for the rare ACK that carries blocks."""
    t = s.tcb
    if most <= 0:
        return np.int64(0)
    rcv = t[c, T_RCV_NXT]
    latest = t[c, T_OOO_LAST]
    first = np.int64(-1)
    cur = t[c, T_OOO_HEAD] - 1
    while cur >= 0:
        left, right, cur = _run_at(s, cur)
        if left <= latest < right:
            if left > rcv:
                first = left
                _put_block(s, c, b, p + 4, left, right)
            break
    n = np.int64(1) if first >= 0 else np.int64(0)
    cur = t[c, T_OOO_HEAD] - 1
    while cur >= 0 and n < most:
        left, right, cur = _run_at(s, cur)
        if left > rcv and left != first:
            _put_block(s, c, b, p + 4 + 8 * n, left, right)
            n += 1
    if n == 0:
        return np.int64(0)
    b[p] = net.OPT_NOP
    b[p + 1] = net.OPT_NOP
    b[p + 2] = net.OPT_SACK
    b[p + 3] = 2 + 8 * n
    s.counters[C_TCP_SACK_BLOCKS_OUT] += n
    return 4 + 8 * n


# --- sending: the scoreboard ---------------------------------------------

@inline
def _copy_range(t, c, dst, src):
    t[c, T_SACK + 2 * dst] = t[c, T_SACK + 2 * src]
    t[c, T_SACK + 2 * dst + 1] = t[c, T_SACK + 2 * src + 1]


@inline
def _mark(t, c, left, right):
    """[left, right) is SACKed: merge it into c's sorted ranges."""
    n = t[c, T_SACK_N]
    i = np.int64(0)
    while i < n and t[c, T_SACK + 2 * i + 1] < left:
        i += 1
    j = i
    while j < n and t[c, T_SACK + 2 * j] <= right:         # ranges i..j-1 touch it: one range
        left = min(left, t[c, T_SACK + 2 * j])
        right = max(right, t[c, T_SACK + 2 * j + 1])
        j += 1
    if j == i:                                               # a range of its own, at i
        if n == SACK_RANGES:
            if i == n:
                return                                       # beyond all held: forgotten
            n -= 1                                           # the highest held makes room
        for k in range(n, i, -1):
            _copy_range(t, c, k, k - 1)
        n += 1
    else:
        for k in range(j, n):
            _copy_range(t, c, k - (j - i - 1), k)
        n -= j - i - 1
    t[c, T_SACK + 2 * i] = left
    t[c, T_SACK + 2 * i + 1] = right
    t[c, T_SACK_N] = n


@inline
def _is_dsack(b, q, end, left, right, ack_off, una, base):
    """Whether an option's first block [left, right) is a D-SACK (RFC 2883 4): below the segment's
    ACK, or within the option's second block (at b[q:end] if any)."""
    if right <= ack_off:
        return True
    if q + 8 > end:
        return False
    return (una + net.seq_diff(net.get32(b, q), base) <= left
            and right <= una + net.seq_diff(net.get32(b, q + 4), base))


@inline
def take_blocks(s, c, b, i, end, ack_off):
    """The SACK blocks among an arriving segment's options b[i:end], whose ACK is at offset ack_off,
    into c's scoreboard; blocks not wholly above snd_una and up to snd_max (stale, bogus) are
    ignored. A D-SACK raises c's DupThresh. Counted."""
    t = s.tcb
    while True:
        kind, i, n = net.tcp_option(b, i, end)
        if kind < 0:
            break
        if kind == net.OPT_SACK:
            una = t[c, T_SND_UNA]
            base = (t[c, T_ISS] + una) & M32
            q = i + 2
            while q + 8 <= i + n:
                left = una + net.seq_diff(net.get32(b, q), base)
                right = una + net.seq_diff(net.get32(b, q + 4), base)
                if q == i + 2 and left < right and _is_dsack(b, q + 8, i + n, left, right, ack_off, una, base):
                    s.counters[C_TCP_DSACKS_IN] += 1
                    t[c, T_DUPTHRESH] = min(t[c, T_DUPTHRESH] + 1, MAX_RAISE)
                elif una < left < right <= t[c, T_SND_MAX]:
                    _mark(t, c, left, right)
                    s.counters[C_TCP_SACK_BLOCKS_IN] += 1
                q += 8
        i += n


@inline
def trim(t, c, una):
    """snd_una moved to una: forget what lies below it."""
    n = t[c, T_SACK_N]
    k = np.int64(0)
    while k < n and t[c, T_SACK + 2 * k + 1] <= una:
        k += 1
    if k > 0:
        for m in range(k, n):
            _copy_range(t, c, m - k, m)
        n -= k
        t[c, T_SACK_N] = n
    if n > 0 and t[c, T_SACK] < una:
        t[c, T_SACK] = una


@inline
def clear(t, c):
    t[c, T_SACK_N] = 0
    t[c, T_RTX_NXT] = 0


@inline
def _sacked(t, c):
    total = np.int64(0)
    for k in range(t[c, T_SACK_N]):
        total += t[c, T_SACK + 2 * k + 1] - t[c, T_SACK + 2 * k]
    return total


@inline
def dupthresh(t, c, mss):
    """c's DupThresh: DUP_THRESH, raised by D-SACKs, but not beyond half its congestion window."""
    return DUP_THRESH + min(t[c, T_DUPTHRESH], max(t[c, T_CWND] // (2 * mss) - DUP_THRESH, 0))


@inline
def _lost(above_bytes, above_ranges, mss, thresh):
    """RFC 6675 IsLost for the bytes of a hole: DupThresh ranges, or more than DupThresh - 1
    segments, SACKed above them. A hole with less above may only be reordered."""
    return above_ranges >= thresh or above_bytes > (thresh - 1) * mss


@inline
def next_hole(t, c, frm, mss):
    """The first bytes from offset frm on that are lost and not SACKed: (start, length); length 0
    when there are none."""
    n = t[c, T_SACK_N]
    above = _sacked(t, c)
    thresh = dupthresh(t, c, mss)
    for k in range(n):
        left = t[c, T_SACK + 2 * k]
        if frm < left:
            if _lost(above, n - k, mss, thresh):
                return frm, left - frm
            break                                            # holes higher up have less above them
        above -= t[c, T_SACK + 2 * k + 1] - left
        frm = max(frm, t[c, T_SACK + 2 * k + 1])
    return frm, np.int64(0)


@inline
def unsacked(t, c, nxt):
    """Sending again from nxt (after a timeout, when ACKs bring blocks anew: RFC 6675 5.1): the first
    offset from nxt on not SACKed, and where the next SACKed range above it starts (no bound: 1<<62)."""
    for k in range(t[c, T_SACK_N]):
        left = t[c, T_SACK + 2 * k]
        if nxt < left:
            return nxt, left
        nxt = max(nxt, t[c, T_SACK + 2 * k + 1])
    return nxt, np.int64(1 << 62)


@inline
def pipe(t, c, mss):
    """Bytes estimated in flight (RFC 6675 SetPipe): every byte sent and neither acknowledged nor
    SACKed, except the lost ones (next_hole's) not yet sent again in this recovery."""
    una = t[c, T_SND_UNA]
    rtx = max(t[c, T_RTX_NXT], una)
    n = t[c, T_SACK_N]
    above = _sacked(t, c)
    thresh = dupthresh(t, c, mss)
    flight = t[c, T_SND_MAX] - una - above
    prev = una
    for k in range(n):
        left = t[c, T_SACK + 2 * k]
        if left > prev and _lost(above, n - k, mss, thresh):
            flight -= max(left - max(prev, rtx), 0)
        above -= t[c, T_SACK + 2 * k + 1] - left
        prev = max(prev, t[c, T_SACK + 2 * k + 1])
    return flight
