"""The TCP connection table: struct-of-arrays, preallocated, found by 4-tuple.

`Tcb` is a NamedTuple of NumPy arrays, one entry per connection slot, so a
kernel reads `t.snd_una[c]`. Slots come from a free stack; a 4-tuple finds
its slot through an open-addressing hash (linear probing, backward-shift
deletion: no tombstones, so a long run never degrades lookups).

Sequence numbers are kept as 64-bit *offsets* from the initial sequence
number (SYN = 0, first data byte = 1), so comparisons are plain integer
comparisons; only packet parsing and building convert to 32-bit wire values.
"""
from collections import namedtuple

import numpy as np

from nperf.kernels.jit import inline, kernel

# connection states (RFC 9293 names)
CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, \
    LAST_ACK, TIME_WAIT = range(11)
STATE_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
               "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")

# t.flags bits
F_ACK_NOW = 1           # send an ACK at the next output
F_FIN_QUEUED = 2        # the application is done: FIN follows the queued data
F_IN_WORK = 4           # on the output work list
F_RECOVERY = 8          # in fast recovery (NewReno)
F_RTT = 16              # timing the segment that starts at rtt_seq
F_RETRANSMIT = 32       # resend the segment at snd_una at the next output
F_ACK_DELAYED = 64      # an ACK is owed, on the delayed-ACK timer
F_PERSIST = 128         # zero window: the RTO timer sends probes

APPQ = 4                # application messages in flight per connection (pipelining depth)

# how a connection ended (the `how` of tcp.release and app.app_closed)
END_CLOSED, END_RESET, END_TIMEOUT, END_IDLE = range(4)

SCALAR_FIELDS = (
    "state", "flags", "lip", "rip", "lport", "rport", "peer_mac",
    "iss", "irs", "snd_una", "snd_nxt", "snd_max", "snd_end", "snd_wnd", "snd_wscale", "snd_wl1", "mss",
    "cwnd", "ssthresh", "dupacks", "recover", "rcv_nxt", "rcv_wscale",
    "srtt", "rttvar", "rto", "rtt_seq", "rtt_start", "backoff",
    "t_rto", "t_dack", "t_end", "w_due", "w_next", "w_prev",
    "q_head", "q_tail", "app_done", "app_t", "born", "user",
)
Tcb = namedtuple("Tcb", SCALAR_FIELDS + ("q_kind", "q_flags", "q_start", "q_len", "app"))


def new_tcb(capacity: int, app_words: int) -> Tcb:
    """Arrays for `capacity` connections; untouched pages cost no memory (calloc)."""
    scalars = [np.zeros(capacity, np.int64) for _ in SCALAR_FIELDS]
    queues = [np.zeros((capacity, APPQ), np.int64) for _ in range(4)]
    return Tcb(*scalars, *queues, np.zeros((capacity, app_words), np.int64))


def bytes_per_connection(app_words: int) -> int:
    return 8 * (len(SCALAR_FIELDS) + 4 * APPQ + app_words) + HASH_BYTES_PER_CONN


# --- free slots ---------------------------------------------------------

def new_free_stack(capacity: int) -> np.ndarray:
    """[top, slot ids...]: slot ids popped from the end, lowest id first."""
    stack = np.empty(capacity + 1, np.int64)
    stack[0] = capacity
    stack[1:] = np.arange(capacity - 1, -1, -1)
    return stack


@inline
def slot_alloc(free):
    top = free[0]
    if top == 0:
        return np.int64(-1)
    free[0] = top - 1
    return free[top]


@inline
def slot_free(free, c):
    top = free[0] + 1
    free[top] = c
    free[0] = top


# --- 4-tuple hash -------------------------------------------------------
# key: k1 = remote ip << 16 | remote port, k2 = local ip << 16 | local port

HASH_BYTES_PER_CONN = 2 * (8 + 8 + 8)   # two slots per connection


def new_hash(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = 1
    while size < 2 * capacity:
        size *= 2
    return np.zeros(size, np.int64), np.zeros(size, np.int64), np.full(size, -1, np.int64)


@inline
def _home(k1, k2, mask):
    h = (k1 * np.int64(-7046029254386353131)) ^ (k2 * np.int64(-4658895280553007687))
    return (h ^ (h >> 29)) & mask


@inline
def hash_find(h, k1, k2):
    keys1, keys2, vals = h
    mask = keys1.shape[0] - 1
    i = _home(k1, k2, mask)
    while vals[i] >= 0:
        if keys1[i] == k1 and keys2[i] == k2:
            return vals[i]
        i = (i + 1) & mask
    return np.int64(-1)


@inline
def hash_insert(h, k1, k2, c):
    keys1, keys2, vals = h
    mask = keys1.shape[0] - 1
    i = _home(k1, k2, mask)
    while vals[i] >= 0:
        i = (i + 1) & mask
    keys1[i] = k1
    keys2[i] = k2
    vals[i] = c


@kernel
def hash_remove(h, k1, k2):
    """Delete a key, shifting later members of its probe run back into the hole."""
    keys1, keys2, vals = h
    mask = keys1.shape[0] - 1
    i = _home(k1, k2, mask)
    while vals[i] >= 0 and not (keys1[i] == k1 and keys2[i] == k2):
        i = (i + 1) & mask
    if vals[i] < 0:
        return False
    hole = i
    j = (i + 1) & mask
    while vals[j] >= 0:
        home = _home(keys1[j], keys2[j], mask)
        # j's entry may move into the hole if its home is not in (hole, j]
        if ((j - home) & mask) >= ((j - hole) & mask):
            keys1[hole] = keys1[j]
            keys2[hole] = keys2[j]
            vals[hole] = vals[j]
            hole = j
        j = (j + 1) & mask
    vals[hole] = -1
    return True


@inline
def tuple_keys(rip, rport, lip, lport):
    return (rip << 16) | rport, (lip << 16) | lport
