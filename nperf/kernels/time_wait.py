"""TIME-WAIT without a connection row: a ring of small records, in expiry order.

A connection that enters TIME-WAIT (RFC 9293 3.6) owes its peer only two
things for 2 MSL: an ACK if the peer's FIN comes again, and not mistaking a
late segment for a new connection. Neither needs the ~540-byte row, so the
row goes back to the free stack at once and the 4-tuple's entry (`lookup`)
points at one of these records instead (`TAG + index`).

Why (measured with `nperf bench tcp`): at 500,000 connections/s and 1 s of
TIME-WAIT a server held half a million rows that no one touches again until
the timer wheel walks them; each new connection then took a cold row, and
each expiry a cold wheel link: 2.0 us of server time per connection, against
1.1 us with rows freed at once. Here rows are reused while still in cache,
and every record lives exactly P_TIME_WAIT_US, so records expire in the order
they were written: the ring is a FIFO, read from its head, and expiry needs
no timer. A record that ends early (a new SYN for its 4-tuple, an RST) is
marked dead and skipped when the head reaches it; a FIN again restarts
TIME-WAIT, so its record moves to the tail. A full ring evicts its oldest
record early (counted in `tcp_time_wait_evicted`).
"""
import numpy as np

from nperf.bindings.intrinsics import prefetch
from nperf.kernels import lookup, tables
from nperf.kernels.jit import inline
from nperf.kernels.stack import C_TCP_TIME_WAIT_EVICTED, V_TW_HEAD, V_TW_TAIL

TW_WORDS = (
    "due",      # expiry time (us); 0: dead, skipped at the head
    "k1",       # the 4-tuple's hash keys (tcp_table.tuple_keys): remote ip << 16 | port,
    "k2",       #   local ip << 16 | port
    "seq",      # our next sequence number (wire value): the seq of an ACK sent from TIME-WAIT
    "ack",      # the peer's next sequence number after its FIN (wire value)
    "win",      # the window field of that ACK
    "mac",      # the peer's MAC address
)
TW_DUE, TW_K1, TW_K2, TW_SEQ, TW_ACK, TW_WIN, TW_MAC = range(len(TW_WORDS))
N_TW_WORDS = len(TW_WORDS)

TAG = np.int64(1) << 40          # hash values >= TAG are records (TAG + index), below it connection rows
PREFETCH_AHEAD = 8               # expiry prefetches the hash entry of the record this far ahead


def new_ring(capacity: int) -> np.ndarray:
    return tables.zeros((max(capacity, 1), N_TW_WORDS))


@inline
def is_record(v):
    return v >= TAG


@inline
def _append(s, k1, k2, seq, ack, win, mac, due):
    """A new record at the tail (the oldest evicted if the ring is full); its index."""
    r = s.tw
    cap = r.shape[0]
    if s.var[V_TW_TAIL] - s.var[V_TW_HEAD] == cap:
        old = s.var[V_TW_HEAD] % cap
        if r[old, TW_DUE] != 0:
            lookup.remove(s, r[old, TW_K1], r[old, TW_K2])
            s.counters[C_TCP_TIME_WAIT_EVICTED] += 1
        s.var[V_TW_HEAD] += 1
    i = s.var[V_TW_TAIL] % cap
    s.var[V_TW_TAIL] += 1
    r[i, TW_DUE] = max(due, 1)
    r[i, TW_K1] = k1
    r[i, TW_K2] = k2
    r[i, TW_SEQ] = seq
    r[i, TW_ACK] = ack
    r[i, TW_WIN] = win
    r[i, TW_MAC] = mac
    return i


@inline
def start(s, k1, k2, seq, ack, win, mac, due):
    """Start TIME-WAIT until `due` for the 4-tuple (k1, k2): its hash entry names the new record."""
    i = _append(s, k1, k2, seq, ack, win, mac, due)
    lookup.set_value(s, k1, k2, TAG + i)


@inline
def restart(s, i, due):
    """The peer's FIN came again: TIME-WAIT starts over (RFC 9293 3.10.7.4), at the tail."""
    r = s.tw
    start(s, r[i, TW_K1], r[i, TW_K2], r[i, TW_SEQ], r[i, TW_ACK], r[i, TW_WIN], r[i, TW_MAC], due)
    r[i, TW_DUE] = 0


@inline
def end(s, i):
    """TIME-WAIT ends early (a new SYN for the 4-tuple, an RST): the 4-tuple is free again."""
    r = s.tw
    lookup.remove(s, r[i, TW_K1], r[i, TW_K2])
    r[i, TW_DUE] = 0


@inline
def expire(s, now):
    """Forget every record whose TIME-WAIT has passed; returns how many."""
    r = s.tw
    cap = r.shape[0]
    head = s.var[V_TW_HEAD]
    tail = s.var[V_TW_TAIL]
    gone = 0
    while head < tail:
        i = head % cap
        due = r[i, TW_DUE]
        if due > now:
            break
        if head + PREFETCH_AHEAD < tail:
            j = (head + PREFETCH_AHEAD) % cap
            prefetch(lookup.prefetch_addr(s, r[j, TW_K1], r[j, TW_K2]))
        if due != 0:
            lookup.remove(s, r[i, TW_K1], r[i, TW_K2])
            gone += 1
        head += 1
    s.var[V_TW_HEAD] = head
    return gone


def held(s) -> int:
    """Records in the ring, dead ones included (a table-occupancy figure for reports)."""
    return int(s.var[V_TW_TAIL] - s.var[V_TW_HEAD])

