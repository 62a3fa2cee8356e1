"""Out-of-order segments kept until the hole before them is filled (RFC 9293 3.10.7.4).

Without this a segment beyond rcv_nxt was dropped and only ACKed, so one
lost frame cost the whole window after it: the peer resent everything, and
a device under test that reorders made the figures collapse. Now the
payload of such a segment is kept and given to the application, in order,
as soon as the bytes before it have arrived.

Payloads are copied into slots of one pool per stack (`Pool`: POOL_SLOTS
slots of SLOT_BYTES, room for the largest segment a frame holds), so the
frame's mbuf is freed as usual and nothing in the row grows: a connection
has only the head of its list (`T_OOO_HEAD`, slot + 1; 0: none) and its
length (`T_OOO_N`). A list is sorted by start offset; a segment that
another kept one covers is a duplicate, kept ones that a new segment
covers are freed, partial overlaps stay (delivery skips bytes already
taken). A connection keeps at most PER_CONN segments; a segment that finds
its connection's share or the pool full is not kept (`tcp_ooo_not_kept`)
and the peer resends it, as before. Free slots form a list through their
`next` word, headed by V_OOO_FREE.
"""
from collections import namedtuple

import numpy as np

from nperf.bindings.intrinsics import array_addr, view_u8
from nperf.kernels import tables
from nperf.kernels.bytes_util import copy_bytes
from nperf.kernels.jit import inline, inline_view
from nperf.kernels.stack import C_TCP_DUPLICATE_SEGS, C_TCP_OOO_DISCARDED, C_TCP_OOO_KEPT, C_TCP_OOO_NOT_KEPT, \
    V_OOO_FREE
from nperf.kernels.tcp_table import T_OOO_HEAD, T_OOO_N

SLOT_BYTES = 2048               # a frame's whole buffer (nperf.bindings.dpdk.MAX_FRAME): any segment fits
POOL_SLOTS = 8192               # per stack: 16 MiB, touched only as used
PER_CONN = 1024                 # kept segments per connection: our 1 MiB window holds ~725 full-size ones.
                                # With less, a hole in a large window left the rest of it unkept and a
                                # peer without SACK recovered one segment per round trip (seconds).

SEG_WORDS = (
    "start",        # stream offset of the first byte (as rcv_nxt counts)
    "length",       # payload bytes
    "next",         # the next slot of the list (the connection's, or the free one); -1: the end
    "fin",          # the segment carried a FIN after its last byte
)
S_START, S_LEN, S_NEXT, S_FIN = range(len(SEG_WORDS))

Pool = namedtuple("Pool", ("segs", "data"))


def new_pool(slots: int = POOL_SLOTS) -> Pool:
    """A pool whose every slot is free (the free list runs 0, 1, ..., slots - 1; V_OOO_FREE starts at 0)."""
    segs = np.zeros((slots, len(SEG_WORDS)), np.int64)
    segs[:, S_NEXT] = np.arange(1, slots + 1)
    segs[-1, S_NEXT] = -1
    return Pool(segs, tables.zeros((slots, SLOT_BYTES), np.uint8))


@inline
def _take_slot(s):
    k = s.var[V_OOO_FREE]
    s.var[V_OOO_FREE] = s.ooo.segs[k, S_NEXT]
    return k


@inline
def _put_slot(s, k):
    s.ooo.segs[k, S_NEXT] = s.var[V_OOO_FREE]
    s.var[V_OOO_FREE] = k


@inline
def keep(s, c, b, p, n, start, fin):
    """Keep payload b[p:p+n] of c, stream offsets [start, start+n), beyond rcv_nxt (counted)."""
    t = s.tcb
    segs = s.ooo.segs
    end = start + n
    prev = np.int64(-1)
    cur = t[c, T_OOO_HEAD] - 1
    while cur >= 0 and segs[cur, S_START] <= start:
        if segs[cur, S_START] + segs[cur, S_LEN] >= end:        # nothing new
            if fin and segs[cur, S_START] + segs[cur, S_LEN] == end:
                segs[cur, S_FIN] = 1
            s.counters[C_TCP_DUPLICATE_SEGS] += 1
            return
        prev = cur
        cur = segs[cur, S_NEXT]
    if t[c, T_OOO_N] >= PER_CONN or s.var[V_OOO_FREE] < 0 or n > SLOT_BYTES:
        s.counters[C_TCP_OOO_NOT_KEPT] += 1
        return
    while cur >= 0 and segs[cur, S_START] + segs[cur, S_LEN] <= end:   # covered by the new one
        nxt = segs[cur, S_NEXT]
        _put_slot(s, cur)
        t[c, T_OOO_N] -= 1
        cur = nxt
    k = _take_slot(s)
    segs[k, S_START] = start
    segs[k, S_LEN] = n
    segs[k, S_NEXT] = cur
    segs[k, S_FIN] = 1 if fin else 0
    copy_bytes(s.ooo.data[k], 0, b, p, n)
    if prev < 0:
        t[c, T_OOO_HEAD] = k + 1
    else:
        segs[prev, S_NEXT] = k
    t[c, T_OOO_N] += 1
    s.counters[C_TCP_OOO_KEPT] += 1


@inline
def next_ready(s, c, rcv):
    """The first kept segment of c that starts at or before rcv, after freeing the ones wholly before
    it: (slot, offset of rcv in it, bytes from rcv to its end, FIN after them); slot -1 if none."""
    t = s.tcb
    segs = s.ooo.segs
    cur = t[c, T_OOO_HEAD] - 1
    while cur >= 0 and segs[cur, S_START] <= rcv:
        end = segs[cur, S_START] + segs[cur, S_LEN]
        if end > rcv or (end == rcv and segs[cur, S_FIN] != 0):
            t[c, T_OOO_HEAD] = cur + 1
            return cur, rcv - segs[cur, S_START], end - rcv, segs[cur, S_FIN] != 0
        nxt = segs[cur, S_NEXT]
        _put_slot(s, cur)
        t[c, T_OOO_N] -= 1
        cur = nxt
    t[c, T_OOO_HEAD] = cur + 1
    return np.int64(-1), np.int64(0), np.int64(0), False


@inline_view
def slot_view(s, k):
    """Slot k's bytes, typed as a frame's (one application input serves both)."""
    return view_u8(np.int64(array_addr(s.ooo.data)) + k * SLOT_BYTES, SLOT_BYTES)


@inline
def release_slot(s, c, k):
    """Slot k, the head of c's list, was delivered whole: free it."""
    s.tcb[c, T_OOO_HEAD] = s.ooo.segs[k, S_NEXT] + 1
    s.tcb[c, T_OOO_N] -= 1
    _put_slot(s, k)


@inline
def discard(s, c):
    """Free every segment c still keeps (the connection ended; counted)."""
    t = s.tcb
    cur = t[c, T_OOO_HEAD] - 1
    while cur >= 0:
        nxt = s.ooo.segs[cur, S_NEXT]
        _put_slot(s, cur)
        s.counters[C_TCP_OOO_DISCARDED] += 1
        cur = nxt
    t[c, T_OOO_HEAD] = 0
    t[c, T_OOO_N] = 0
