"""Byte-level pieces shared by kernels: the HTTP/1.1 framing (server and client), frame copies.

Both parsers are incremental state machines over a short int64 row per
connection, never buffering message bytes.  What they have in common lives
here:

* FNV-1a 64-bit hashing, computed in wrapping int64 arithmetic so no uint64
  ever meets an int64 (numba would promote that to float64);
* a 256-entry character-class table (token, visible, field-value, digit, hex);
* the state-word layout both rows start with, and the shared flag bits;
* the header-field state machine (also used for chunked trailers), which
  recognises ``Connection``, ``Content-Length``, ``Transfer-Encoding`` and
  ``Keep-Alive`` by the hash of the lower-cased name and keeps only flags and
  two numbers (the length and the keep-alive ``timeout`` parameter);
* window copies used to regenerate a message slice from templates.

A field name is recognised when its 64-bit FNV-1a hash equals the hash of one
of those three names: another name that collides is treated as that header.
The chance is about 2**-64 per distinct name, and the traffic is our own, so
we accept it rather than keep name bytes per connection.
"""
import numpy as np

from nperf.kernels.jit import inline, kernel

# ------------------------------------------------------------------ hashing

FNV_PRIME = 0x100000001B3
FNV_BASIS = 0xCBF29CE484222325 - (1 << 64)  # the offset basis as a signed int64


def fnv64(data: bytes) -> int:
    """FNV-1a 64 of data as a signed int64: the value `fnv_step` reaches from FNV_BASIS."""
    h = FNV_BASIS & 0xFFFFFFFFFFFFFFFF
    for c in data:
        h = ((h ^ c) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h


@inline
def fnv_step(h, c):
    """One FNV-1a round; int64 multiplication wraps, which is exactly mod 2**64."""
    return (h ^ np.int64(c)) * np.int64(FNV_PRIME)


# --------------------------------------------------------- character classes

CL_TCHAR = 1     # RFC 9110 token character
CL_VISIBLE = 2   # VCHAR or obs-text (0x21..0x7e, 0x80..0xff): request-target bytes
CL_FIELD = 4     # field-value / reason-phrase / chunk-ext byte: visible, SP or HTAB
CL_DIGIT = 8
CL_HEX = 16


def _char_classes() -> np.ndarray:
    table = np.zeros(256, np.uint8)
    tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for c in range(256):
        visible = 0x21 <= c <= 0x7E or c >= 0x80
        table[c] = ((CL_TCHAR if c in tchar else 0)
                    | (CL_VISIBLE if visible else 0)
                    | (CL_FIELD if visible or c in b" \t" else 0)
                    | (CL_DIGIT if c in b"0123456789" else 0)
                    | (CL_HEX if c in b"0123456789abcdefABCDEF" else 0))
    return table


CHAR_CLASS = _char_classes()
SP, HTAB, CR, LF = 0x20, 0x09, 0x0D, 0x0A
_HTTP1 = np.frombuffer(b"HTTP/1.", np.uint8)


@inline
def has_class(c, cls):
    """Whether byte c is in class cls (a CL_* bit); c is a uint8 so the lookup is in bounds."""
    return (CHAR_CLASS[c] & cls) != 0


@inline
def lower(c):
    """ASCII lower case, as an int64: field names and their tokens compare case-insensitively."""
    c = np.int64(c)
    return c + 32 if 65 <= c <= 90 else c


@inline
def hex_value(c):
    """Value of a hex digit byte (the caller checked CL_HEX)."""
    c = np.int64(c)
    if c <= 57:
        return c - 48
    return (c | 32) - 87


# --------------------------------------------------------------- state row

# Words common to the server and client rows; each side appends its own.
PARSER_WORDS = (
    "stage",        # parser stage (ST_* here, side-specific stages from ST_SIDE up)
    "flags",        # MF_* bits and the current field's HID_* id
    "hash",         # running FNV hash (method, path, field name, list token) or a number being read
    "count",        # bytes in the current element (literal position, token length, digit phase)
    "size",         # bytes of the current line / header section, for size limits
    "num",          # Content-Length value, then body (or chunk) bytes still to skip
    "ka_timeout",   # the Keep-Alive field's timeout=N (seconds), 0 if absent
)
W_STAGE, W_FLAGS, W_HASH, W_COUNT, W_SIZE, W_NUM, W_KA_TIMEOUT = range(len(PARSER_WORDS))
COMMON_WORDS = len(PARSER_WORDS)

# Header-section stages (shared); side stages use values >= 8.
ST_HDR_LINE = 1     # at the start of a field line (or the empty line)
ST_HDR_NAME = 2
ST_HDR_VALUE = 3
ST_HDR_LF = 4       # saw CR ending a field line
ST_HDR_END_LF = 5   # saw CR of the empty line
ST_SIDE = 8

# Shared flag bits, collected while parsing one message head.
MF_CLOSE = 1         # a Connection token "close"
MF_KEEPALIVE = 2     # a Connection token "keep-alive"
MF_CL = 4            # Content-Length seen (value in W_NUM)
MF_TE = 8            # Transfer-Encoding seen
MF_CHUNKED = 16      # the last transfer coding seen is "chunked"
MF_HTTP10 = 32       # the message's version is HTTP/1.0
MF_TRAILER = 64      # parsing chunked trailers: field semantics are ignored
MF_EXPECT_CONTINUE = 128  # an Expect token "100-continue" (RFC 9110 section 10.1.1)
MF_SIDE = 256        # first bit free for side-specific flags
HID_SHIFT = 12      # bits 12..15: id of the field whose value is being read
HID_MASK = 15 << HID_SHIFT
HID_OTHER, HID_CONNECTION, HID_CONTENT_LENGTH, HID_TRANSFER_ENCODING, HID_KEEP_ALIVE, HID_EXPECT = range(6)
KA_DIGITS = -1      # W_COUNT while reading the digits of Keep-Alive's timeout=
MAX_KA_TIMEOUT = 1 << 20

H_CONNECTION = fnv64(b"connection")
H_CONTENT_LENGTH = fnv64(b"content-length")
H_TRANSFER_ENCODING = fnv64(b"transfer-encoding")
H_KEEP_ALIVE = fnv64(b"keep-alive")
H_EXPECT = fnv64(b"expect")
H_PARAM_TIMEOUT = fnv64(b"timeout")
H_TOKEN_CLOSE = fnv64(b"close")
H_TOKEN_KEEPALIVE = fnv64(b"keep-alive")
H_TOKEN_CHUNKED = fnv64(b"chunked")
H_TOKEN_100_CONTINUE = fnv64(b"100-continue")

MAX_LENGTH = 1 << 60  # larger Content-Length / chunk sizes are rejected (no overflow)

# header_run results
HR_MORE, HR_DONE, HR_BAD, HR_BIG = 0, 1, 2, 3


@kernel
def begin_message(state, stage, nwords):
    """Start parsing a new message in stage: words 1..nwords-1 cleared, the hash at its basis.

    Only the side's own nwords are touched: the caller's row may be wider.
    """
    state[W_STAGE] = stage
    for w in range(W_FLAGS, nwords):
        state[w] = 0
    state[W_HASH] = FNV_BASIS


@inline
def version_byte(state, c):
    """Match c against "HTTP/1.x" at position state[W_COUNT] (0..7); false if it does not fit.

    The minor digit 0 sets MF_HTTP10, which changes the keep-alive default.
    """
    k = state[W_COUNT]
    state[W_COUNT] = k + 1
    if k < 7:
        return c == _HTTP1[k]
    if c == 48:
        state[W_FLAGS] |= MF_HTTP10
    return has_class(c, CL_DIGIT)


# ------------------------------------------------------------ header fields


@kernel
def header_run(state, data, i, end, limit):
    """Advance through field lines in data[i:end] until the empty line, an error or the data end.

    Returns (position, HR_*).  W_SIZE counts the section's bytes across
    calls; once it exceeds limit the result is HR_BIG whatever else is wrong
    or done, so the outcome does not depend on how the bytes were split.
    Ordinary field values are skipped in a tight loop.
    """
    i0 = i
    res = HR_MORE
    while i < end and res == HR_MORE:
        if state[W_STAGE] == ST_HDR_VALUE and (state[W_FLAGS] & HID_MASK) == 0:
            while i < end and has_class(data[i], CL_FIELD):
                i += 1
            if i == end:
                break
        res = _header_byte(state, data[i])
        i += 1
    state[W_SIZE] += i - i0
    if state[W_SIZE] > limit:
        return i, HR_BIG
    return i, res


@inline
def _header_byte(state, c):
    """One byte of the header section; HR_MORE, HR_DONE (empty line ended) or HR_BAD."""
    stage = state[W_STAGE]
    if stage == ST_HDR_VALUE:
        if c == CR or c == LF:
            state[W_STAGE] = ST_HDR_LF if c == CR else ST_HDR_LINE
            return _end_value(state)
        if has_class(c, CL_FIELD):
            return _value_byte(state, c)
        return HR_BAD
    if stage == ST_HDR_NAME:
        if has_class(c, CL_TCHAR):
            state[W_HASH] = fnv_step(state[W_HASH], lower(c))
            return HR_MORE
        if c == 58:  # ':'
            _begin_value(state)
            return HR_MORE
        return HR_BAD
    if stage == ST_HDR_LINE:
        if has_class(c, CL_TCHAR):
            state[W_STAGE] = ST_HDR_NAME
            state[W_HASH] = fnv_step(np.int64(FNV_BASIS), lower(c))
            return HR_MORE
        if c == CR:
            state[W_STAGE] = ST_HDR_END_LF
            return HR_MORE
        return HR_DONE if c == LF else HR_BAD  # SP/HTAB here would be obs-fold: rejected
    if c != LF:
        return HR_BAD
    if stage == ST_HDR_LF:
        state[W_STAGE] = ST_HDR_LINE
        return HR_MORE
    return HR_DONE


@inline
def _field_id(h):
    """HID_* of a field name, by the hash of its lower-cased bytes."""
    if h == H_CONNECTION:
        return HID_CONNECTION
    if h == H_CONTENT_LENGTH:
        return HID_CONTENT_LENGTH
    if h == H_TRANSFER_ENCODING:
        return HID_TRANSFER_ENCODING
    if h == H_KEEP_ALIVE:
        return HID_KEEP_ALIVE
    if h == H_EXPECT:
        return HID_EXPECT
    return HID_OTHER


@inline
def _begin_value(state):
    """Name complete: remember which field it is and prepare the value's accumulators."""
    hid = HID_OTHER if (state[W_FLAGS] & MF_TRAILER) != 0 else _field_id(state[W_HASH])
    flags = (state[W_FLAGS] & ~HID_MASK) | (hid << HID_SHIFT)
    if hid == HID_TRANSFER_ENCODING:
        flags |= MF_TE
    state[W_FLAGS] = flags
    state[W_STAGE] = ST_HDR_VALUE
    state[W_HASH] = 0 if hid == HID_CONTENT_LENGTH else np.int64(FNV_BASIS)
    state[W_COUNT] = 0


@inline
def _value_byte(state, c):
    """A value byte of a recognised field (ordinary values never reach here)."""
    hid = (state[W_FLAGS] & HID_MASK) >> HID_SHIFT
    if hid == HID_CONTENT_LENGTH:
        return _length_byte(state, c)
    if c == 44 or c == SP or c == HTAB:  # ',' and whitespace end a list token
        _end_token(state)
    elif hid == HID_KEEP_ALIVE:
        _keep_alive_byte(state, c)
    else:
        state[W_HASH] = fnv_step(state[W_HASH], lower(c))
        state[W_COUNT] += 1
    return HR_MORE


@inline
def _length_byte(state, c):
    """Content-Length: digits with optional surrounding whitespace; W_COUNT = 0 before, 1 in, 2 after."""
    phase = state[W_COUNT]
    if c == SP or c == HTAB:
        if phase == 1:
            state[W_COUNT] = 2
        return HR_MORE
    if phase == 2 or not has_class(c, CL_DIGIT):
        return HR_BAD
    v = state[W_HASH]
    d = np.int64(c) - 48
    if v > (MAX_LENGTH - d) // 10:
        return HR_BAD
    state[W_HASH] = v * 10 + d
    state[W_COUNT] = 1
    return HR_MORE


@inline
def _keep_alive_byte(state, c):
    """Keep-Alive parameters (``timeout=5, max=100``): only timeout's digits are kept."""
    if state[W_COUNT] == KA_DIGITS:
        if has_class(c, CL_DIGIT) and state[W_KA_TIMEOUT] < MAX_KA_TIMEOUT:
            state[W_KA_TIMEOUT] = state[W_KA_TIMEOUT] * 10 + (np.int64(c) - 48)
        return
    if c == 61 and state[W_COUNT] > 0 and state[W_HASH] == H_PARAM_TIMEOUT:  # '='
        state[W_COUNT] = KA_DIGITS
        state[W_KA_TIMEOUT] = 0
        return
    state[W_HASH] = fnv_step(state[W_HASH], lower(c))
    state[W_COUNT] += 1


@inline
def _end_token(state):
    """A Connection / Transfer-Encoding / Expect list token ended: record what it means."""
    if state[W_COUNT] == 0:
        return
    h = state[W_HASH]
    flags = state[W_FLAGS]
    if (flags & HID_MASK) == (HID_KEEP_ALIVE << HID_SHIFT):
        pass
    elif (flags & HID_MASK) == (HID_CONNECTION << HID_SHIFT):
        if h == H_TOKEN_CLOSE:
            flags |= MF_CLOSE
        elif h == H_TOKEN_KEEPALIVE:
            flags |= MF_KEEPALIVE
    elif (flags & HID_MASK) == (HID_EXPECT << HID_SHIFT):
        if h == H_TOKEN_100_CONTINUE:
            flags |= MF_EXPECT_CONTINUE
    elif h == H_TOKEN_CHUNKED:
        flags |= MF_CHUNKED
    else:
        flags &= ~MF_CHUNKED
    state[W_FLAGS] = flags
    state[W_HASH] = np.int64(FNV_BASIS)
    state[W_COUNT] = 0


@inline
def _end_value(state):
    """Field line complete: finish its last token or check its Content-Length."""
    flags = state[W_FLAGS]
    hid = (flags & HID_MASK) >> HID_SHIFT
    if hid == HID_CONNECTION or hid == HID_TRANSFER_ENCODING or hid == HID_KEEP_ALIVE or hid == HID_EXPECT:
        _end_token(state)
    elif hid == HID_CONTENT_LENGTH:
        v = state[W_HASH]
        if state[W_COUNT] == 0 or ((flags & MF_CL) != 0 and state[W_NUM] != v):
            return HR_BAD
        state[W_FLAGS] = flags | MF_CL
        state[W_NUM] = v
    return HR_MORE


# ------------------------------------------------------------------ copies


@inline
def copy_bytes(dst, dst_off, src, src_off, n):
    """dst[dst_off:dst_off+n] = src[src_off:src_off+n] with unsigned indexes.

    Signed indexes of unknown sign get Numba's negative-index wraparound,
    which stops LLVM from vectorizing the loop: it then moves one byte at a
    time (about 0.6 ns/byte here against 0.01 for the unsigned form).  The
    offsets are never negative; under NUMBA_BOUNDSCHECK a negative one
    becomes a huge index and is caught.  (Slice assignment is not an option:
    it may allocate, and kernels run without reference counting.)
    """
    d = np.uint64(dst_off)
    s = np.uint64(src_off)
    for j in range(np.uint64(n)):
        dst[d + j] = src[s + j]


@inline
def window_size(total, offset, out, out_pos, n):
    """How many of the n bytes from message offset fit, given the message and out sizes (0 if args are invalid)."""
    if offset < 0 or offset > total or out_pos < 0 or out_pos > out.shape[0] or n < 0:
        return np.int64(0)
    return min(n, total - offset, out.shape[0] - out_pos)


@inline
def copy_span(src, src_off, length, base, offset, out, out_pos, n):
    """Copy the part of a message span into a window.

    The span holds message bytes [base, base+length), stored at src[src_off:];
    the window wants message bytes [offset, offset+n) at out[out_pos:].
    """
    lo = max(base, offset)
    hi = min(base + length, offset + n)
    if lo < hi:
        copy_bytes(out, out_pos + lo - offset, src, src_off + lo - base, hi - lo)


@inline
def xorshift64(x):
    """The next state of a xorshift64 generator (never 0 from a state that is not 0): the stack's
    initial sequence numbers and loss knob and the lb's impairments need no cryptography."""
    x ^= (x << 13)
    x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
    x ^= (x << 17)
    return x
