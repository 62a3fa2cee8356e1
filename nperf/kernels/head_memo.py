"""Message heads parsed once: a parse of bytes seen before is replayed, not redone.

A load test sends the same few requests and gets the same few responses
millions of times, and parsing each head byte by byte was about 45 % of
both sides' time per keep-alive request (`nperf bench tcp`, perf). Both
HTTP parsers are deterministic functions of (parser row, bytes[, HEAD]) to
(row, bytes consumed, events, counter increments), and split-independent:
parsing P and then R gives what parsing P+R gives. So the first time a
message head P is parsed from a row R, the outcome is recorded with P's
bytes; when a later segment starts with exactly P and the row is exactly R
(every byte and every word compared, no hashing), the recorded outcome is
applied instead and the parser goes on after P as usual. The result is the
full parse's, by construction; `tests/unit/test_head_memo.py` checks it
against the parser on random heads, splits and event room.

A head here is the bytes up to the end of the first empty line (at most
MEMO_BYTES): a request's line and fields, a response's status line and
fields; bodies are skipped by count anyway. Entries sit in MEMO_SETS sets
of MEMO_WAYS, the set chosen by a hash of the segment's length and first
64 bytes (where a request's line and Host field are: a client spreads
its requests over every destination address and port, each with its own
Host value, 88 of them for the seed's files), and are replaced round robin
within their set. The parsers' wrappers take their first step on an idle
row (clearing what the last message left) before looking up, so one entry
serves a head on every connection, new or kept alive. Date-stamped heads from a real server miss once a
second. One table per stack (per process), so nothing is shared between
cores.
"""
from collections import namedtuple

import numpy as np

from nperf.bindings.intrinsics import array_addr, load_u64
from nperf.kernels.bytes_util import CR, LF, copy_bytes
from nperf.kernels.jit import inline
from nperf.kernels.tcp_table import APP_WORDS, APPQ

MEMO_SETS = 128
MEMO_WAYS = 4
MEMO_BYTES = 512
HASHED_BYTES = 64               # of a segment, with its length, choose the set (set_of: eight words)
MAX_EVENTS = APPQ               # events a head can produce on the server (one per queued response)
EVENT_WIDTH = 2                 # words per event (http_server.EVENT_WORDS)
MAX_DELTAS = 16                 # counters a parser may change (its region of the stack's counters)

KEY_WORDS = (                   # what must equal for a replay; then APP_WORDS words: the row before
    "length",       # head bytes (0: the entry is empty)
    "extra",        # the parse's other input (client: the request was HEAD)
)
MK_LENGTH, MK_EXTRA = range(len(KEY_WORDS))
MK_ROW = len(KEY_WORDS)
N_KEY = MK_ROW + APP_WORDS

RESULT_WORDS = (                # what the parse of the head did; then the row after, events and deltas
    "consumed",     # bytes of the head the parser took (all, unless a client response ended inside it)
    "outcome",      # server: events produced; client: the EV_* returned
)
MR_CONSUMED, MR_OUTCOME = range(len(RESULT_WORDS))
MR_ROW = len(RESULT_WORDS)
MR_EVENTS = MR_ROW + APP_WORDS
MR_DELTAS = MR_EVENTS + MAX_EVENTS * EVENT_WIDTH
N_RESULT = MR_DELTAS + MAX_DELTAS

VAR_WORDS = (
    "hits",         # heads replayed
    "misses",       # heads parsed (recorded, or too long or unfinished to record)
)
MV_HITS, MV_MISSES = range(len(VAR_WORDS))
MV_BEFORE = len(VAR_WORDS)      # then the row and the counters before a parse that may be recorded
N_VAR = MV_BEFORE + APP_WORDS + MAX_DELTAS

# keys, heads and results have a row per entry, entry = set * MEMO_WAYS + way; victims[set] is the
# way its next record replaces
Memo = namedtuple("Memo", ("keys", "heads", "results", "var", "victims"))


def new_memo() -> Memo:
    n = MEMO_SETS * MEMO_WAYS
    return Memo(np.zeros((n, N_KEY), np.int64), np.zeros((n, MEMO_BYTES), np.uint8),
                np.zeros((n, N_RESULT), np.int64), np.zeros(N_VAR, np.int64), np.zeros(MEMO_SETS, np.int64))


@inline
def same_bytes(a, ai, b, bi, n):
    """a[ai:ai+n] == b[bi:bi+n], eight bytes at a time; the callers keep both ranges in bounds."""
    pa = np.int64(array_addr(a)) + ai
    pb = np.int64(array_addr(b)) + bi
    if n < 8:
        for k in range(n):
            if a[ai + k] != b[bi + k]:
                return False
        return True
    k = np.int64(0)
    while k + 8 <= n:
        if load_u64(pa + k) != load_u64(pb + k):
            return False
        k += 8
    return k == n or load_u64(pa + n - 8) == load_u64(pb + n - 8)     # the tail, overlapping


@inline
def head_end(data, i, end):
    """Where the head starting at data[i] ends (after its empty line: LF LF or LF CR LF), or -1."""
    j = i
    while j + 1 < end:
        if data[j] == LF:
            if data[j + 1] == LF:
                return j + 2
            if data[j + 1] == CR and j + 2 < end and data[j + 2] == LF:
                return j + 3
        j += 1
    return np.int64(-1)


@inline
def set_of(memo, data, i, end):
    """The set of the segment data[i:end]: a hash of its length and first words.

    Each word is folded (its high half into its low half: a product's low
    bits see only its factors' low bits) and multiplied by a constant of its
    own; the products are independent, so they overlap in the pipeline
    instead of forming a chain, and the set is taken from the sum's high bits.
    The arithmetic is unsigned: Numba marks int64 products and sums "no
    signed wrap", and these overflow by design (tcp_table.wrapping_mul).
    """
    n = end - i
    p = np.int64(array_addr(data)) + i
    m = min(n, HASHED_BYTES) >> 3
    h = np.uint64(n) * np.uint64(0x9E3779B97F4A7C15) + _folded(p, m, 0) + _folded(p, m, 1) + _folded(p, m, 2) \
        + _folded(p, m, 3) + _folded(p, m, 4) + _folded(p, m, 5) + _folded(p, m, 6) + _folded(p, m, 7)
    return np.int64(h >> np.uint64(40)) & (memo.victims.shape[0] - 1)


@inline
def _folded(p, m, k):
    """Word k of the m hashed words at address p, folded and weighted; 0 past them.

    Eight straight-line calls, not a loop: LLVM vectorized the loop into
    gathers, slower than the eight loads (HASHED_BYTES is eight words)."""
    if k >= m:
        return np.uint64(0)
    w = np.uint64(load_u64(p + 8 * k))
    return (w ^ (w >> np.uint64(32))) * (np.uint64(0xFF51AFD7ED558CCD) + np.uint64(2 * k))


@inline
def find(memo, row, extra, data, i, end):
    """The entry whose head data[i:end] starts with, parsed from this row with this extra input; -1 if none."""
    keys = memo.keys
    first = set_of(memo, data, i, end) * MEMO_WAYS
    for e in range(first, first + MEMO_WAYS):
        n = keys[e, MK_LENGTH]
        if n == 0 or n > end - i or keys[e, MK_EXTRA] != extra:
            continue
        same = True
        for w in range(APP_WORDS):
            if keys[e, MK_ROW + w] != row[w]:
                same = False
                break
        if same and same_bytes(data, i, memo.heads[e], 0, n):
            memo.var[MV_HITS] += 1
            return np.int64(e)
    memo.var[MV_MISSES] += 1
    return np.int64(-1)


@inline
def replay(memo, e, row, counters):
    """Apply entry e's outcome to the row and the counters; returns (bytes consumed, outcome)."""
    r = memo.results[e]
    for w in range(APP_WORDS):
        row[w] = r[MR_ROW + w]
    for k in range(counters.shape[0]):
        counters[k] += r[MR_DELTAS + k]
    return r[MR_CONSUMED], r[MR_OUTCOME]


@inline
def replay_events(memo, e, events):
    """The server's events of entry e (as many as its outcome says) into events[0:]."""
    r = memo.results[e]
    for q in range(r[MR_OUTCOME]):
        for w in range(EVENT_WIDTH):
            events[q, w] = r[MR_EVENTS + q * EVENT_WIDTH + w]


@inline
def before(memo, row, counters):
    """Note the row and the counters before parsing a head that may be recorded."""
    v = memo.var
    for w in range(APP_WORDS):
        v[MV_BEFORE + w] = row[w]
    for k in range(counters.shape[0]):
        v[MV_BEFORE + APP_WORDS + k] = counters[k]


@inline
def record(memo, extra, data, i, end, n, consumed, outcome, row, counters):
    """Keep the parse of head data[i:i+n] (noted with `before`) of segment data[i:end] in its set,
    round robin; returns the entry (for `record_events`), or -1 if the head is too long to keep."""
    if n > MEMO_BYTES or counters.shape[0] > MAX_DELTAS:
        return np.int64(-1)
    v = memo.var
    g = set_of(memo, data, i, end)
    e = g * MEMO_WAYS + memo.victims[g]
    memo.victims[g] = (memo.victims[g] + 1) % MEMO_WAYS
    k = memo.keys[e]
    r = memo.results[e]
    k[MK_LENGTH] = n
    k[MK_EXTRA] = extra
    for w in range(APP_WORDS):
        k[MK_ROW + w] = v[MV_BEFORE + w]
        r[MR_ROW + w] = row[w]
    copy_bytes(memo.heads[e], 0, data, i, n)
    r[MR_CONSUMED] = consumed
    r[MR_OUTCOME] = outcome
    for c in range(MAX_DELTAS):
        r[MR_DELTAS + c] = counters[c] - v[MV_BEFORE + APP_WORDS + c] if c < counters.shape[0] else 0
    return e


@inline
def record_events(memo, e, events, nev):
    """The server's events of the head just recorded in entry e."""
    for q in range(nev):
        for w in range(EVENT_WIDTH):
            memo.results[e, MR_EVENTS + q * EVENT_WIDTH + w] = events[q, w]
