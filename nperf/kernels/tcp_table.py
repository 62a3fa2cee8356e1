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
F_SACK = 256            # both ends permitted SACK (RFC 2018): blocks go out and are taken in
F_TS = 512              # both ends sent timestamps (RFC 7323): every segment but a RST carries one
F_PROBE_TIMER = 1024    # the retransmission timer holds a probe timeout (tcp._on_pto), not the RTO
F_PROBE_NEW = 2048      # the loss probe is new data: tcp_output sends a segment past cwnd
F_PROBED = 4096         # a loss probe is out and nothing new was acknowledged since: a duplicate ACK
                        #   starts recovery
F_PROBE_RESENT = 8192   # the probe resent the last segment: an ACK of it all halves the window

APPQ = 4                # application messages in flight per connection (pipelining depth)
TS_OPTION_LEN = 12      # NOP, NOP, timestamps (RFC 7323): on every segment of an F_TS connection
SACK_RANGES = 4         # SACKed ranges a row remembers (as many as one option carries without timestamps)
APP_WORDS = 10          # the application's parser state (nperf.kernels.http_server / http_client rows)

# how a connection ended (the `how` of tcp.release and app.app_closed); END_ABORT: still open at exit
END_CLOSED, END_RESET, END_TIMEOUT, END_IDLE, END_ABORT = range(5)
END_TLS_FAILED = 5      # to the role only (app.app_closed): TCP closed, but the TLS handshake had failed

# row words: hot ones first (one segment mostly touches the first two cache lines)
FIELDS = (
    "state",        # CLOSED .. TIME_WAIT
    "flags",        # F_* bits
    "snd_una",      # oldest unacknowledged sequence offset
    "snd_nxt",      # next sequence offset to send
    "snd_max",      # highest sequence offset sent (snd_nxt falls back on retransmission)
    "snd_end",      # end of the queued data (the FIN follows it)
    "snd_wnd",      # the peer's window, scaled (bytes)
    "rcv_nxt",      # next sequence offset expected from the peer
    "iss",          # our initial sequence number (wire value)
    "irs",          # the peer's initial sequence number (wire value)
    "mss",          # the segment size agreed for sending
    "cwnd",         # congestion window (bytes)
    "ssthresh",     # slow-start threshold (bytes)
    "t_rto",        # deadline of the retransmission (or persist, or SYN) timer; 0: off
    "t_dack",       # deadline of the delayed ACK; 0: off
    "t_end",        # deadline of the idle timeout; 0: off
    "lip",          # local IPv4 address, or an IPv6 address's low 64 bits
    "rip",          # remote IPv4 address, or an IPv6 address's low 64 bits
    "addr_sum",     # both addresses' 16-bit words summed: the pseudo-header's share of a checksum
    "lport",        # local port
    "rport",        # remote port
    "peer_mac",     # the next hop's MAC address
    "snd_wscale",   # the peer's window scale shift
    "rcv_wscale",   # ours (0 when the peer did not offer scaling)
    "snd_wl1",      # the segment sequence of the last window update (RFC 9293 SND.WL1)
    "dupacks",      # duplicate ACKs in a row
    "recover",      # NewReno: snd_max when fast recovery began
    "srtt",         # smoothed RTT (us); 0: no sample yet
    "rttvar",       # RTT variation (us)
    "rto",          # the retransmission timeout (us, RFC 6298), before back-off doubles it
    "rtt_seq",      # the sequence offset being timed (F_RTT)
    "rtt_start",    #   and when it was sent
    "backoff",      # retransmissions in a row of the segment at snd_una
    "w_due",        # timer wheel: the tick this row is queued at; -1: not queued
    "w_next",       #   next row in that slot's list
    "w_prev",       #   previous row
    "q_head",       # the application's message queue: first message not fully acknowledged
    "q_tail",       #   and the next free position (k = position % APPQ)
    "app_done",     # the application's per-connection bits (client: CF_* bits)
    "app_t",        # the application's time word (client: the outstanding request's start)
    "born",         # when the connection started (us; 0 for a row never used)
    "user",         # the application's count word (client: requests sent)
    "ooo_head",     # kept out-of-order segments (nperf.kernels.reassembly): the first's slot + 1; 0: none
    "ooo_n",        #   and how many
    "ooo_last",     #   the start of the latest segment kept (a SACK option's first block holds it)
    "sack_n",       # the SACK scoreboard (nperf.kernels.sack): ranges held, at T_SACK
    "rtx_nxt",      #   holes below it were sent again in this recovery
    "ts_recent",    # RFC 7323 TS.Recent: the peer's timestamp our next segments echo (F_TS)
    "last_ack",     #   and Last.ACK.sent, the receive offset our latest ACK carried
    "lip_hi",       # local IPv6 address's high 64 bits; 0: an IPv4 connection (::/64 is no unicast)
    "rip_hi",       # remote IPv6 address's high 64 bits; 0 with lip_hi
    "dupthresh",    # SACK: segments SACKed above a hole before it counts lost, less sack.DUP_THRESH
                    #   (0 at first; D-SACKs of needless resends raise it: nperf.kernels.sack)
    "tls",          # a TLS connection's slot + 1 (nperf.kernels.tls_layer); 0: plain
)
(T_STATE, T_FLAGS, T_SND_UNA, T_SND_NXT, T_SND_MAX, T_SND_END, T_SND_WND, T_RCV_NXT, T_ISS, T_IRS, T_MSS,
 T_CWND, T_SSTHRESH, T_T_RTO, T_T_DACK, T_T_END, T_LIP, T_RIP, T_ADDR_SUM, T_LPORT, T_RPORT, T_PEER_MAC,
 T_SND_WSCALE,
 T_RCV_WSCALE, T_SND_WL1, T_DUPACKS, T_RECOVER, T_SRTT, T_RTTVAR, T_RTO, T_RTT_SEQ, T_RTT_START, T_BACKOFF,
 T_W_DUE, T_W_NEXT, T_W_PREV, T_Q_HEAD, T_Q_TAIL, T_APP_DONE, T_APP_T, T_BORN, T_USER, T_OOO_HEAD,
 T_OOO_N, T_OOO_LAST, T_SACK_N, T_RTX_NXT, T_TS_RECENT, T_LAST_ACK, T_LIP_HI, T_RIP_HI,
 T_DUPTHRESH, T_TLS) = range(len(FIELDS))
T_Q_KIND = len(FIELDS)              # + k: message k's kind (response / request index)
T_Q_FLAGS = T_Q_KIND + APPQ
T_Q_START = T_Q_FLAGS + APPQ        # stream offset of its first byte
T_Q_LEN = T_Q_START + APPQ
T_APP = T_Q_LEN + APPQ
T_SACK = T_APP + APP_WORDS          # + 2k, + 2k + 1: SACKed range k [left, right), sorted (T_SACK_N held)
N_WORDS = T_SACK + 2 * SACK_RANGES


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
        if name == "sack":
            return self.tcb[:, T_SACK:T_SACK + 2 * SACK_RANGES]
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

HASH_WORDS = (
    "k1",       # remote ip << 16 | remote port
    "k2",       # local ip << 16 | local port
    "val",      # the connection's row, a TIME-WAIT record (time_wait.TAG + index), or -1: empty
)
HASH_K1, HASH_K2, HASH_VAL = range(len(HASH_WORDS))
HASH_BYTES_PER_CONN = 2 * len(HASH_WORDS) * 8     # two rows per connection


def new_hash(capacity: int) -> np.ndarray:
    size = 1
    while size < 2 * capacity:
        size *= 2
    h = tables.zeros((size, len(HASH_WORDS)))
    h[:, HASH_VAL] = -1
    return h


@inline
def _home(k1, k2, mask):
    h = wrapping_mul(k1, GOLDEN) ^ wrapping_mul(k2, MIX)
    return (h ^ (h >> 29)) & mask


GOLDEN = np.uint64(0x9E3779B97F4A7C15)      # multipliers of splitmix64
MIX = np.uint64(0xBF58476D1CE4E5B9)


@inline
def wrapping_mul(a, b):
    """a * b modulo 2**64, as an int64 (b a np.uint64: an int64 one would make the product a float). Numba marks an int64 product "no signed wrap", so LLVM may
    assume a hash's overflowing product away (it did: a key's home row came out differently inlined
    and called); the unsigned product has no such mark."""
    return np.int64(np.uint64(a) * b)


@step
def hash_find(h, k1, k2):
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, HASH_VAL] >= 0:
        if h[i, HASH_K1] == k1 and h[i, HASH_K2] == k2:
            return h[i, HASH_VAL]
        i = (i + 1) & mask
    return np.int64(-1)


@inline
def hash_set(h, k1, k2, v):
    """Give an existing key the value v; False if the key is absent."""
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, HASH_VAL] >= 0:
        if h[i, HASH_K1] == k1 and h[i, HASH_K2] == k2:
            h[i, HASH_VAL] = v
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
    while h[i, HASH_VAL] >= 0:
        i = (i + 1) & mask
    h[i, HASH_K1] = k1
    h[i, HASH_K2] = k2
    h[i, HASH_VAL] = c


@kernel
def hash_remove(h, k1, k2):
    """Delete a key, shifting later members of its probe run back into the hole."""
    mask = h.shape[0] - 1
    i = _home(k1, k2, mask)
    while h[i, HASH_VAL] >= 0 and not (h[i, HASH_K1] == k1 and h[i, HASH_K2] == k2):
        i = (i + 1) & mask
    if h[i, HASH_VAL] < 0:
        return False
    hole = i
    j = (i + 1) & mask
    while h[j, HASH_VAL] >= 0:
        home = _home(h[j, HASH_K1], h[j, HASH_K2], mask)
        # j's entry may move into the hole if its home is not in (hole, j]
        if ((j - home) & mask) >= ((j - hole) & mask):
            h[hole, HASH_K1] = h[j, HASH_K1]
            h[hole, HASH_K2] = h[j, HASH_K2]
            h[hole, HASH_VAL] = h[j, HASH_VAL]
            hole = j
        j = (j + 1) & mask
    h[hole, HASH_VAL] = -1
    return True


V6_KEY = np.int64(1) << 62      # set in both keys of an IPv6 4-tuple: IPv4 keys stay below 2**48
FOLD_BITS = 46


@inline
def tuple_keys(rip, rport, lip, lport, rip_hi=0, lip_hi=0):
    """The hash keys of a 4-tuple: (remote address << 16 | port, local address << 16 | port).

    An IPv4 4-tuple's keys are exact. Over IPv6 (high words nonzero) the local
    address is keyed by its last 32 bits, exact since a worker's IPv6 range
    lies within one /96 (worker_stack.owned_ranges), and in the form a
    client's pair table indexes (nperf.kernels.lookup). The remote address
    is folded to FOLD_BITS bits (fold6), so two IPv6 4-tuples to one local
    pair share keys only if the remote addresses' folds and ports are
    equal: about 2**-46 for a pair of peers with equal ports. Rows and
    TIME-WAIT records trust keys.
    """
    if rip_hi == 0:
        return (rip << 16) | rport, (lip << 16) | lport
    return V6_KEY | (fold6(rip_hi, rip) << 16) | rport, V6_KEY | ((lip & np.int64(0xFFFFFFFF)) << 16) | lport


@inline
def fold6(hi, lo):
    """An IPv6 address's words mixed down to FOLD_BITS bits (multiply-xorshift, as splitmix64)."""
    h = wrapping_mul(hi, GOLDEN) ^ lo
    h ^= (h >> 31) & np.int64(0x1FFFFFFFF)
    h = wrapping_mul(h, MIX)
    h ^= (h >> 29) & np.int64(0x7FFFFFFFF)
    return h & ((np.int64(1) << FOLD_BITS) - 1)
