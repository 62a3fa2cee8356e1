"""The TCP connection table: one preallocated row of int64 words per connection.

`tcb[c, T_SND_UNA]` is connection c's snd_una. A row holds the TCP state
(hot words first: one segment mostly touches the first two cache lines), the
application's message queue (`T_Q_*` + k, k < APPQ) and the application's
parser state (`T_APP`, APP_WORDS words). Rows rather than one array per
field: a connection's state is then a few cache lines, not one line in each
of 45 arrays, and the whole table is one argument of a kernel call instead of
45 (`nperf bench tcp` measured both effects: most of the server's per-packet
time went to passing and missing the per-field arrays).

Slots come from a free stack; a 4-tuple finds its slot through an
open-addressing hash (linear probing, backward-shift deletion: no tombstones,
so a long run never degrades lookups), one 24-byte row per slot.

Sequence numbers are kept as 64-bit *offsets* from the initial sequence
number (SYN = 0, first data byte = 1), so comparisons are plain integer
comparisons; only packet parsing and building convert to 32-bit wire values.
"""
import numpy as np

from nperf.bindings.intrinsics import array_addr
from nperf.kernels import tables
from nperf.kernels.jit import inline, kernel, step

# connection states (RFC 9293 names)
CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, \
    LAST_ACK, TIME_WAIT = range(11)
STATE_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
               "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")

# T_FLAGS bits
F_ACK_NOW = 1           # send an ACK at the next output
F_FIN_QUEUED = 2        # the application is done: FIN follows the queued data
F_IN_WORK = 4           # on the output work list
F_RECOVERY = 8          # in fast recovery (NewReno)
F_RTT = 16              # timing the segment that starts at rtt_seq
F_RETRANSMIT = 32       # resend the segment at snd_una at the next output
F_ACK_DELAYED = 64      # an ACK is owed, on the delayed-ACK timer
F_PERSIST = 128         # zero window: the RTO timer sends probes

APPQ = 4                # application messages in flight per connection (pipelining depth)
APP_WORDS = 10          # the application's parser state (nperf.kernels.http_server / http_client rows)

# how a connection ended (the `how` of tcp.release and app.app_closed); END_ABORT: still open at exit
END_CLOSED, END_RESET, END_TIMEOUT, END_IDLE, END_ABORT = range(5)

# row words
FIELDS = ('state', 'flags', 'snd_una', 'snd_nxt', 'snd_max', 'snd_end', 'snd_wnd', 'rcv_nxt', 'iss',
          'irs', 'mss', 'cwnd', 'ssthresh', 't_rto', 't_dack', 't_end', 'lip', 'rip', 'lport', 'rport',
          'peer_mac', 'snd_wscale', 'rcv_wscale', 'snd_wl1', 'dupacks', 'recover', 'srtt', 'rttvar',
          'rto', 'rtt_seq', 'rtt_start', 'backoff', 'w_due', 'w_next', 'w_prev', 'q_head', 'q_tail',
          'app_done', 'app_t', 'born', 'user',)
T_STATE = 0
T_FLAGS = 1
T_SND_UNA = 2
T_SND_NXT = 3
T_SND_MAX = 4
T_SND_END = 5
T_SND_WND = 6
T_RCV_NXT = 7
T_ISS = 8
T_IRS = 9
T_MSS = 10
T_CWND = 11
T_SSTHRESH = 12
T_T_RTO = 13
T_T_DACK = 14
T_T_END = 15
T_LIP = 16
T_RIP = 17
T_LPORT = 18
T_RPORT = 19
T_PEER_MAC = 20
T_SND_WSCALE = 21
T_RCV_WSCALE = 22
T_SND_WL1 = 23
T_DUPACKS = 24
T_RECOVER = 25
T_SRTT = 26
T_RTTVAR = 27
T_RTO = 28
T_RTT_SEQ = 29
T_RTT_START = 30
T_BACKOFF = 31
T_W_DUE = 32
T_W_NEXT = 33
T_W_PREV = 34
T_Q_HEAD = 35
T_Q_TAIL = 36
T_APP_DONE = 37
T_APP_T = 38
T_BORN = 39
T_USER = 40
T_Q_KIND = 41                      # + k: message k's kind (response / request index)
T_Q_FLAGS = T_Q_KIND + APPQ
T_Q_START = T_Q_FLAGS + APPQ        # stream offset of its first byte
T_Q_LEN = T_Q_START + APPQ
T_APP = T_Q_LEN + APPQ
N_WORDS = T_APP + APP_WORDS
assert all(globals()["T_" + f.upper()] == i for i, f in enumerate(FIELDS))


def new_tcb(capacity: int) -> np.ndarray:
    """Rows for `capacity` connections; untouched pages cost no memory (calloc)."""
    return tables.zeros((capacity, N_WORDS))


class Columns:
    """Python-side (tests, reports) named access: `Columns(tcb).snd_una[c]`, `.q_kind[c, k]`, `.app[c]`."""

    def __init__(self, tcb: np.ndarray):
        self.tcb = tcb

    def __getattr__(self, name: str) -> np.ndarray:
        if name == "app":
            return self.tcb[:, T_APP:T_APP + APP_WORDS]
        if name.startswith("q_") and name != "q_head" and name != "q_tail":
            first = globals()["T_" + name.upper()]
            return self.tcb[:, first:first + APPQ]
        return self.tcb[:, FIELDS.index(name)]


def bytes_per_connection() -> int:
    return 8 * N_WORDS + HASH_BYTES_PER_CONN


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
# one row per slot: (k1 = remote ip << 16 | remote port, k2 = local ip << 16 | local port, slot or -1)

H_K1, H_K2, H_VAL = 0, 1, 2
HASH_BYTES_PER_CONN = 2 * 3 * 8     # two rows per connection


def new_hash(capacity: int) -> np.ndarray:
    size = 1
    while size < 2 * capacity:
        size *= 2
    h = tables.zeros((size, 3))
    h[:, H_VAL] = -1
    return h


@inline
def _home(k1, k2, mask):
    h = (k1 * np.int64(-7046029254386353131)) ^ (k2 * np.int64(-4658895280553007687))
    return (h ^ (h >> 29)) & mask


@step
def hash_find(h, k1, k2):
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, H_VAL] >= 0:
        if h[i, H_K1] == k1 and h[i, H_K2] == k2:
            return h[i, H_VAL]
        i = (i + 1) & mask
    return np.int64(-1)


@inline
def hash_set(h, k1, k2, v):
    """Give an existing key the value v; False if the key is absent."""
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, H_VAL] >= 0:
        if h[i, H_K1] == k1 and h[i, H_K2] == k2:
            h[i, H_VAL] = v
            return True
        i = (i + 1) & mask
    return False


@inline
def hash_home_addr(h, k1, k2):
    """The address of the key's home row, for a prefetch."""
    return array_addr(h) + _home(k1, k2, h.shape[0] - 1) * (3 * 8)


@step
def hash_insert(h, k1, k2, c):
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, H_VAL] >= 0:
        i = (i + 1) & mask
    h[i, H_K1] = k1
    h[i, H_K2] = k2
    h[i, H_VAL] = c


@kernel
def hash_remove(h, k1, k2):
    """Delete a key, shifting later members of its probe run back into the hole."""
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, H_VAL] >= 0 and not (h[i, H_K1] == k1 and h[i, H_K2] == k2):
        i = (i + 1) & mask
    if h[i, H_VAL] < 0:
        return False
    hole = i
    j = (i + 1) & mask
    while h[j, H_VAL] >= 0:
        home = _home(h[j, H_K1], h[j, H_K2], mask)
        # j's entry may move into the hole if its home is not in (hole, j]
        if ((j - home) & mask) >= ((j - hole) & mask):
            h[hole, H_K1] = h[j, H_K1]
            h[hole, H_K2] = h[j, H_K2]
            h[hole, H_VAL] = h[j, H_VAL]
            hole = j
        j = (j + 1) & mask
    h[hole, H_VAL] = -1
    return True


@inline
def tuple_keys(rip, rport, lip, lport):
    return (rip << 16) | rport, (lip << 16) | lport
