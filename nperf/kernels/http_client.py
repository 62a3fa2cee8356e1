"""Client-side HTTP/1.1 framing: request templates and an incremental response parser.

Sans-I/O like the server side: requests are regenerated at any byte offset
from a `RequestTable` (nperf.roles.http_tables) plus the connection's destination,
rendered as the Host value ``a.b.c.d:port`` from integers (IPv4 only); the
parser keeps an int64[HC_WORDS] row per connection (zero = new connection)
and never stores message bytes.

Parsing rules: status line ``HTTP/1.x SP 3DIGIT [SP reason] CRLF`` (a bare LF
ends lines too; the status must be 100..599); header fields as on the server
(obs-fold rejected; a section over HEADER_LIMIT bytes is malformed); the
body is framed by Transfer-Encoding (chunked as the last coding: chunk
sizes, extensions and trailers), else Content-Length, else it runs until
the server closes (call `client_eof`).  1xx responses
(101 included) are interim: they are counted in CNT_STATUS_1XX and skipped;
204, 304 and every response to a HEAD request (the caller says which) have
no body.  A Keep-Alive field's ``timeout=N`` is kept in W_KA_TIMEOUT.
"""
import numpy as np

from nperf.kernels.bytes_util import (
    CL_DIGIT, CL_FIELD, CL_HEX, COMMON_WORDS, CR, HR_DONE, HR_MORE, HTAB, LF, MAX_LENGTH, MF_CHUNKED, MF_CL,
    MF_CLOSE, MF_HTTP10, MF_KEEPALIVE, MF_SIDE, MF_TE, MF_TRAILER, PARSER_WORDS, SP, ST_HDR_LINE, ST_SIDE,
    W_COUNT, W_FLAGS, W_KA_TIMEOUT, W_NUM, W_SIZE, W_STAGE, begin_message, copy_span, has_class, header_run,
    hex_value, version_byte, window_size,
)
from nperf.kernels import head_memo
from nperf.kernels.jit import inline, kernel

# --------------------------------------------------------------- state row

RESPONSE_PARSER_WORDS = PARSER_WORDS + (
    "status",       # status code of the current / last response
    "body",         # body bytes received of the current / last response
)
W_STATUS, W_BODY = range(COMMON_WORDS, len(RESPONSE_PARSER_WORDS))
HC_WORDS = len(RESPONSE_PARSER_WORDS)

RS_IDLE = 0                   # between responses (zeroed row)
RS_VERSION = ST_SIDE          # status line and chunk framing: RS_VERSION..RS_CHUNK_LF, byte by byte
RS_CODE = ST_SIDE + 1
RS_REASON = ST_SIDE + 2
RS_LINE_LF = ST_SIDE + 3
RS_CHUNK_SIZE = ST_SIDE + 4   # chunk-size line (this and the next two: see _line_end)
RS_CHUNK_EXT = ST_SIDE + 5
RS_CHUNK_SIZE_LF = ST_SIDE + 6
RS_CHUNK_CR = ST_SIDE + 7     # CRLF after chunk data
RS_CHUNK_LF = ST_SIDE + 8
RS_BODY = ST_SIDE + 9         # Content-Length body
RS_CHUNK_DATA = ST_SIDE + 10
RS_UNTIL_CLOSE = ST_SIDE + 11  # body delimited by the connection's end
RS_DEAD = ST_SIDE + 12        # after a closing or malformed response: input is ignored

MF_CONN_CLOSE = MF_SIDE        # the last response ends the connection

HEADER_LIMIT = 80 * 1024     # a longer header section is malformed (wrk's parser and curl stop near here;
                             # nothing is buffered, the bound says the peer is broken)

# --------------------------------------------------------------- events

EV_NONE = 0
EV_OK = 1           # complete, 2xx or 3xx
EV_BAD_STATUS = 2   # complete, 4xx or 5xx
EV_MALFORMED = 3    # unparsable: the connection is dead
EV_TRUNCATED = 4    # the server closed in the middle of a response

COUNTER_NAMES = (               # client_parse counters (int64 array of N_COUNTERS)
    "responses",        # complete final responses
    "body_bytes",
    "bytes",            # bytes consumed
    "malformed",
    "status_1xx",       # one counter per status class: CNT_STATUS_1XX + class - 1 (1xx counts interim responses)
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    "truncated",        # responses cut short by the server's close
)
(CNT_RESPONSES, CNT_BODY_BYTES, CNT_BYTES, CNT_MALFORMED, CNT_STATUS_1XX, CNT_STATUS_2XX, CNT_STATUS_3XX,
 CNT_STATUS_4XX, CNT_STATUS_5XX, CNT_TRUNCATED) = range(len(COUNTER_NAMES))
N_COUNTERS = len(COUNTER_NAMES)

# --------------------------------------------------------------- table

# RequestTable.arrays() = (meta int64[N, REQ_COLS], blob uint8[:], hosts int64[HOST_SLOTS, 2],
# host_text uint8[HOST_SLOTS, HOST_BYTES]); request i is prefix + host + suffix, the suffix in a
# keep-alive (+0) and close (+1) variant. hosts/host_text cache rendered Host values (_host_slot).
REQUEST_COLUMNS = (
    "pre_off",          # the prefix (the request line and "Host: "): its offset in blob
    "pre_len",          #   and length
    "suf_off",          # the suffix (after the host, to the head's end): offset, keep-alive variant
    "suf_off_close",    #   Connection: close variant
    "suf_len",          # its length, keep-alive variant
    "suf_len_close",    #   Connection: close variant
    "head",             # 1 when the method is HEAD (its response has no body)
)
REQ_PRE_OFF, REQ_PRE_LEN, REQ_SUF_OFF, _, REQ_SUF_LEN, _, REQ_HEAD = range(len(REQUEST_COLUMNS))
REQ_COLS = len(REQUEST_COLUMNS)
HOST_SLOTS = 256                # rendered Host values kept, direct-mapped by destination
HOST_BYTES = 48                 # room for "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" (47)
HOST_WORDS = ("lo", "hi", "port", "len")     # a hosts row: the address, port + 1 (0: empty), the text's length
HOST_LO, HOST_HI, HOST_PORT, HOST_LEN = range(len(HOST_WORDS))


# --------------------------------------------------------------- requests


@inline
def _ndigits(v):
    n = 1
    while v >= 10:
        v //= 10
        n += 1
    return np.int64(n)


@inline
def _put_decimal(out, pos, v):
    """v in decimal at out[pos:]; the position after it."""
    scale = np.int64(1)
    for _ in range(_ndigits(v) - 1):
        scale *= 10
    while scale > 0:
        out[pos] = 48 + (v // scale) % 10
        pos += 1
        scale //= 10
    return pos


@inline
def _put_hex_field(out, pos, v):
    """A 16-bit field of an IPv6 address in lowercase hex without leading zeros (RFC 5952 4.1, 4.3)."""
    shift = np.int64(12)
    while shift > 0 and (v >> shift) & 0xF == 0:
        shift -= 4
    while shift >= 0:
        d = (v >> shift) & 0xF
        out[pos] = 48 + d if d < 10 else 87 + d
        pos += 1
        shift -= 4
    return pos


@kernel
def render_host(hi, lo, port, out):
    """Write the Host value of address (hi, lo) and port into out[0:]; returns its length. An IPv4
    address (hi 0) gives ``a.b.c.d:port``, an IPv6 one ``[x:x:x:x:x:x:x:x]:port`` (RFC 3986 3.2.2),
    every field written: valid text (RFC 4291 2.2), if longer than the ``::`` form."""
    pos = np.int64(0)
    if hi == 0:
        for f in range(4):
            pos = _put_decimal(out, pos, (lo >> (24 - 8 * f)) & 0xFF)
            out[pos] = 46 if f < 3 else 58  # '.' or ':'
            pos += 1
    else:
        out[0] = 91                         # '['
        pos = 1
        for f in range(8):
            word = hi if f < 4 else lo
            pos = _put_hex_field(out, pos, (word >> (48 - 16 * (f % 4))) & 0xFFFF)
            out[pos] = 58 if f < 7 else 93  # ':' or ']'
            pos += 1
        out[pos] = 58
        pos += 1
    return _put_decimal(out, pos, port & 0xFFFF)


@inline
def _host_slot(table, hi, ip, port):
    """The slot of the Host value of (hi, ip):port, rendered into it on first use.

    Rendering the decimal text digit by digit for every request segment was
    about 6 % of a keep-alive pair's time (`nperf bench tcp`); a client's
    destinations are few, so a direct-mapped cache keeps their text.
    """
    hosts = table[2]
    k = ((ip & 0xFFFF) * 31 + port) & (hosts.shape[0] - 1)
    if hosts[k, HOST_PORT] != port + 1 or hosts[k, HOST_LO] != ip or hosts[k, HOST_HI] != hi:
        hosts[k, HOST_LEN] = render_host(hi, ip, port, table[3][k])
        hosts[k, HOST_LO] = ip
        hosts[k, HOST_HI] = hi
        hosts[k, HOST_PORT] = port + 1
    return k


@inline
def request_length(table, index, close, hi, ip, port):
    """Bytes of request `index` to address (hi, ip) and port; close selects the variant with
    ``Connection: close``."""
    meta = table[0]
    if index < 0 or index >= meta.shape[0]:
        return np.int64(0)
    return meta[index, REQ_PRE_LEN] + table[2][_host_slot(table, hi, ip, port), HOST_LEN] \
        + meta[index, REQ_SUF_LEN + (close != 0)]


@inline
def request_is_head(table, index):
    return table[0][index, REQ_HEAD] != 0


@inline
def request_copy(table, index, close, hi, ip, port, offset, out, out_pos, n):
    """Write request bytes [offset, offset+n) into out[out_pos:]; returns how many were written.

    Inlined into the segment it fills: called, it took the request table's four arrays by value on
    the stack for every request (nperf bench tcp: 8 % of the client's time per request).
    """
    meta, blob = table[0], table[1]
    n = window_size(request_length(table, index, close, hi, ip, port), offset, out, out_pos, n)
    if n == 0:
        return n
    pre = meta[index, REQ_PRE_LEN]
    c = close != 0
    k = _host_slot(table, hi, ip, port)
    host = table[2][k, HOST_LEN]
    copy_span(blob, meta[index, REQ_PRE_OFF], pre, 0, offset, out, out_pos, n)
    copy_span(table[3][k], 0, host, pre, offset, out, out_pos, n)
    copy_span(blob, meta[index, REQ_SUF_OFF + c], meta[index, REQ_SUF_LEN + c], pre + host, offset, out, out_pos, n)
    return n


# --------------------------------------------------------------- responses


@kernel
def client_reset(state):
    """Return the row's first HC_WORDS words to the new-connection state (a wider row keeps the rest)."""
    state[:HC_WORDS] = 0


@inline
def client_status(state):
    """Status code of the current or last response."""
    return state[W_STATUS]


@inline
def client_body_bytes(state):
    """Body bytes received of the current or last response."""
    return state[W_BODY]


@inline
def client_keepalive_timeout(state):
    """Seconds the server keeps an idle connection (Keep-Alive: timeout=N of the last response), 0 if unsaid."""
    return state[W_KA_TIMEOUT]


@inline
def client_close_requested(state):
    """Whether the last response ends the connection (Connection: close, HTTP/1.0, or read-until-close)."""
    return (state[W_FLAGS] & MF_CONN_CLOSE) != 0


@kernel
def client_parse(state, data, start, end, counters, head):
    """Parse data[start:end] for one connection; returns (consumed_end, EV_*).

    `head` is true when the request being answered was HEAD (no body follows).
    Stops at the end of each complete response, so the caller loops while
    bytes remain and an event came back.  After EV_MALFORMED or a response
    that closes the connection, further input is consumed and ignored.
    """
    end = max(0, min(end, data.shape[0]))
    i = start = max(0, min(start, end))
    ev = EV_NONE
    while i < end and ev == EV_NONE:
        if state[W_STAGE] == RS_DEAD:
            i = end
            break
        i, ev = _client_step(state, data, i, end, counters, head)
    counters[CNT_BYTES] += i - start
    return i, ev


@inline
def client_parse_memo(memo, state, data, start, end, counters, head):
    """`client_parse`, replaying the parse of a response head seen before (nperf.kernels.head_memo).

    Only a head that starts at a response boundary (the row idle) is looked
    up or recorded; the body after it is parsed (skipped by count) as usual.
    """
    end = max(0, min(end, data.shape[0]))
    start = max(0, min(start, end))
    if state[W_STAGE] != RS_IDLE or start == end or state.shape[0] < head_memo.APP_WORDS:
        return client_parse(state, data, start, end, counters, head)
    begin_message(state, RS_VERSION, HC_WORDS)      # the parser's first step here (_client_step), taken first
    # so that every response meets the same row, whatever the last one left in it
    extra = np.int64(1 if head else 0)
    e = head_memo.find(memo, state, extra, data, start, end)
    if e < 0:
        return _parse_and_record(memo, state, data, start, end, counters, head, extra)
    consumed, ev = head_memo.replay(memo, e, state, counters)
    return _parse_rest(state, data, start + consumed, end, counters, head, ev)


@kernel
def _parse_and_record(memo, state, data, start, end, counters, head, extra):
    """No replay: parse the head, keep it (if it fits), then the rest (a call: misses are rare)."""
    h = head_memo.head_end(data, start, end)
    if h < 0 or h - start > head_memo.MEMO_BYTES:
        return client_parse(state, data, start, end, counters, head)
    head_memo.before(memo, state, counters)
    i, ev = client_parse(state, data, start, h, counters, head)
    head_memo.record(memo, extra, data, start, end, h - start, i - start, ev, state, counters)
    return _parse_rest(state, data, i, end, counters, head, ev)


@inline
def _parse_rest(state, data, i, end, counters, head, ev):
    """After a head that ended in event ev at i: what client_parse would do next."""
    if ev != EV_NONE or i == end:
        return i, ev
    if state[W_STAGE] == RS_BODY:       # what client_parse does here, in one step: take the body, or all
        k, ev = _take_body(state, i, end, counters)     # there is of it (perf: the call into the whole
        counters[CNT_BYTES] += k - i                    # parser cost a fifth of a replayed response)
        return k, ev
    return client_parse(state, data, i, end, counters, head)


@kernel
def client_eof(state, counters):
    """The server closed: completes a read-until-close body; a response cut short is EV_TRUNCATED."""
    stage = state[W_STAGE]
    ev = EV_NONE
    if stage == RS_UNTIL_CLOSE:
        ev = _complete(state, counters)
    elif stage != RS_IDLE and stage != RS_DEAD:
        counters[CNT_TRUNCATED] += 1
        ev = EV_TRUNCATED
    state[W_STAGE] = RS_DEAD
    return ev


@kernel
def _client_step(state, data, i, end, counters, head):
    """Advance through one stage's worth of bytes; returns (i, EV_*)."""
    stage = state[W_STAGE]
    if stage == RS_IDLE:
        begin_message(state, RS_VERSION, HC_WORDS)
        return i, EV_NONE
    if stage < ST_SIDE:
        i, res = header_run(state, data, i, end, HEADER_LIMIT)
        if res == HR_MORE:
            return i, EV_NONE
        return i, _head_done(state, counters, head) if res == HR_DONE else _malformed(state, counters)
    if stage > RS_CHUNK_LF:
        return _take_body(state, i, end, counters)
    return _framing_run(state, data, i, end, counters)


@kernel
def _framing_run(state, data, i, end, counters):
    """Status-line and chunk-framing bytes, until the stage moves on, the data ends or a byte is wrong."""
    ok = True
    while ok and i < end and ST_SIDE <= state[W_STAGE] <= RS_CHUNK_LF:
        ok = _framing_byte(state, data[i])
        i += 1
    return i, EV_NONE if ok else _malformed(state, counters)


@inline
def _framing_byte(state, c):
    """One byte of a status line or of chunk framing; false if malformed."""
    stage = state[W_STAGE]
    if stage == RS_VERSION:
        if state[W_COUNT] < 8:
            return version_byte(state, c)
        return _goto(state, RS_CODE, c == SP)
    if stage == RS_CODE:
        return _status_byte(state, c)
    if stage == RS_REASON or stage == RS_CHUNK_EXT:
        if c == CR or c == LF:
            return _line_end(state, c)
        return has_class(c, CL_FIELD)
    if stage == RS_CHUNK_SIZE:
        return _chunk_size_byte(state, c)
    if stage == RS_CHUNK_CR:
        if c == CR:
            return _goto(state, RS_CHUNK_LF, True)
        return _goto(state, RS_CHUNK_SIZE, c == LF)
    if stage == RS_CHUNK_LF:
        return _goto(state, RS_CHUNK_SIZE, c == LF)
    return c == LF and _line_end(state, c)  # RS_LINE_LF, RS_CHUNK_SIZE_LF


@inline
def _goto(state, stage, ok):
    """Enter stage with a fresh element count when ok; returns ok."""
    if ok:
        state[W_STAGE] = stage
        state[W_COUNT] = 0
    return ok


@inline
def _status_byte(state, c):
    """Three status digits (100..599), then SP and a reason, or the line end."""
    if state[W_COUNT] < 3:
        if not has_class(c, CL_DIGIT):
            return False
        state[W_STATUS] = state[W_STATUS] * 10 + (np.int64(c) - 48)
        state[W_COUNT] += 1
        return state[W_COUNT] < 3 or 100 <= state[W_STATUS] <= 599
    if c == SP:
        return _goto(state, RS_REASON, True)
    return (c == CR or c == LF) and _line_end(state, c)


@inline
def _chunk_size_byte(state, c):
    """Hex digits of a chunk size, then an extension (';' or whitespace) or the line end."""
    if has_class(c, CL_HEX):
        v = state[W_NUM]
        if v > MAX_LENGTH >> 4:
            return False
        state[W_NUM] = v * 16 + hex_value(c)
        state[W_COUNT] += 1
        return True
    if state[W_COUNT] == 0:
        return False
    if c == 59 or c == SP or c == HTAB:  # ';'
        state[W_STAGE] = RS_CHUNK_EXT
        return True
    return (c == CR or c == LF) and _line_end(state, c)


@inline
def _line_end(state, c):
    """CR waits for its LF; LF ends the status line or a chunk-size line."""
    stage = state[W_STAGE]
    if c == CR:
        state[W_STAGE] = RS_CHUNK_SIZE_LF if stage >= RS_CHUNK_SIZE else RS_LINE_LF
        return True
    if stage < RS_CHUNK_SIZE:
        _start_fields(state, 0)
    elif state[W_NUM] == 0:
        _start_fields(state, MF_TRAILER)
    else:
        state[W_STAGE] = RS_CHUNK_DATA
    return True


@inline
def _start_fields(state, flag):
    """Enter the header section (flag 0) or the trailer section (MF_TRAILER)."""
    state[W_STAGE] = ST_HDR_LINE
    state[W_FLAGS] |= flag
    state[W_SIZE] = 0


@kernel
def _head_done(state, counters, head):
    """End of a header or trailer section: choose how the body is framed, or finish."""
    f = state[W_FLAGS]
    status = state[W_STATUS]
    if (f & MF_TRAILER) != 0:
        return _complete(state, counters)
    if status < 200:
        counters[CNT_STATUS_1XX] += 1
        state[W_STAGE] = RS_IDLE
        return EV_NONE
    if (f & MF_CLOSE) != 0 or ((f & MF_HTTP10) != 0 and (f & MF_KEEPALIVE) == 0):
        f |= MF_CONN_CLOSE
    stage = RS_BODY
    if head or status == 204 or status == 304:
        state[W_NUM] = 0
    elif (f & MF_TE) != 0:
        stage = RS_CHUNK_SIZE if (f & MF_CHUNKED) != 0 else RS_UNTIL_CLOSE
        state[W_NUM] = 0
    elif (f & MF_CL) == 0:
        stage = RS_UNTIL_CLOSE
    if stage == RS_UNTIL_CLOSE:
        f |= MF_CONN_CLOSE
    state[W_FLAGS] = f
    if stage == RS_BODY and state[W_NUM] == 0:
        return _complete(state, counters)
    _goto(state, stage, True)
    return EV_NONE


@kernel
def _take_body(state, i, end, counters):
    """Skip body bytes (all that are there when reading until close), counting them."""
    stage = state[W_STAGE]
    k = end - i if stage == RS_UNTIL_CLOSE else min(end - i, state[W_NUM])
    state[W_BODY] += k
    counters[CNT_BODY_BYTES] += k
    if stage == RS_UNTIL_CLOSE:
        return end, EV_NONE
    state[W_NUM] -= k
    if state[W_NUM] > 0:
        return i + k, EV_NONE
    if stage == RS_BODY:
        return i + k, _complete(state, counters)
    state[W_STAGE] = RS_CHUNK_CR
    return i + k, EV_NONE


@kernel
def _complete(state, counters):
    """A final response is complete: count it and go idle (or dead if it closes)."""
    status = state[W_STATUS]
    counters[CNT_RESPONSES] += 1
    counters[CNT_STATUS_1XX + status // 100 - 1] += 1
    state[W_STAGE] = RS_DEAD if (state[W_FLAGS] & MF_CONN_CLOSE) != 0 else RS_IDLE
    return EV_OK if status < 400 else EV_BAD_STATUS


@kernel
def _malformed(state, counters):
    counters[CNT_MALFORMED] += 1
    state[W_STAGE] = RS_DEAD
    return EV_MALFORMED
