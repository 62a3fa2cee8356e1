"""Server-side HTTP/1.1 framing: an incremental request parser and response templates.

Sans-I/O: bytes and a state row in, events out; responses are regenerated at
any byte offset from a `ResponseTable` (see nperf.roles.http_tables), so neither
direction keeps message bytes per connection.

Parser state: one int64[HS_WORDS] row per connection, zero = a new connection.
Requests are routed by the FNV-1a 64 hash and length of their path (the
target up to '?'), compared with the configured paths' precomputed ones: a
different path of the same length whose hash collides with a configured one
(chance about 2**-64 each) would be served as that path.  We accept this
because the client is our own load generator and no path bytes are kept.

Limits: a request line of more than LINE_LIMIT bytes (counted with its line
end) is answered 414, a header section of more than HEADER_LIMIT bytes
(every field line and the empty line, with their line ends) 431.  Leading
empty lines before a request line are skipped (RFC 9112 section 2.2).
Obs-fold, whitespace before a field colon, a bad Content-Length (non-digit,
empty, list, or two different values) and any version other than HTTP/1.x
are answered 400.  Any Transfer-Encoding is answered 501.  These errors
close the connection.

Methods (RFC 9110 section 9.1): GET and HEAD are served; another registered
method (RFC 9110's, PATCH, WebDAV's) is answered 405 with ``Allow: GET,
HEAD``, any other token 501.  Those two are answered like a path: after any
Content-Length body, keeping the connection as the request asks.  A request
that announces a body with ``Expect: 100-continue`` (HTTP/1.1) gets the
interim ``100 Continue`` before the body is read (section 10.1.1), as nginx
answers; without it a client that waits for the 100 would stall.
"""
import numpy as np

from nperf.kernels.bytes_util import (
    CL_TCHAR, CL_VISIBLE, COMMON_WORDS, CR, FNV_BASIS, HR_BAD, HR_DONE, HR_MORE, LF, MF_CLOSE,
    MF_EXPECT_CONTINUE, MF_HTTP10, MF_KEEPALIVE, MF_SIDE, MF_TE, PARSER_WORDS, SP, ST_HDR_LINE, ST_SIDE,
    W_COUNT, W_FLAGS, W_HASH, W_NUM, W_SIZE, W_STAGE, begin_message, copy_bytes, copy_span, fnv64, fnv_step,
    has_class, header_run, version_byte, window_size,
)
from nperf.kernels import head_memo
from nperf.kernels.jit import inline, kernel

# --------------------------------------------------------------- state row

REQUEST_PARSER_WORDS = PARSER_WORDS + (
    "route",        # response index chosen from the path
)
W_ROUTE, = range(COMMON_WORDS, len(REQUEST_PARSER_WORDS))
HS_WORDS = len(REQUEST_PARSER_WORDS)

RQ_IDLE = 0              # between requests (zeroed row)
RQ_METHOD = ST_SIDE
RQ_TARGET = ST_SIDE + 1  # path part of the request-target
RQ_QUERY = ST_SIDE + 2   # after '?': not routed
RQ_VERSION = ST_SIDE + 3
RQ_LINE_LF = ST_SIDE + 4
RQ_BODY = ST_SIDE + 5    # skipping Content-Length body bytes
RQ_DEAD = ST_SIDE + 6    # after a closing event: input is consumed and ignored

MF_HEAD = MF_SIDE         # method is HEAD
MF_NOT_ALLOWED = MF_SIDE << 1    # a registered method other than GET/HEAD: 405
MF_UNKNOWN_METHOD = MF_SIDE << 2  # not a registered method: 501

LINE_LIMIT = 8192
HEADER_LIMIT = 16384
H_METHOD_GET = fnv64(b"GET")
H_METHOD_HEAD = fnv64(b"HEAD")
H_METHODS_NOT_ALLOWED = tuple(fnv64(m) for m in (
    b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK"))

# --------------------------------------------------------------- events

EVENT_WORDS = (                 # one row per request parsed: what to answer it with
    "response",     # the response's row in the response table
    "flags",        # FLAG_* bits
)
E_RESPONSE, E_FLAGS = range(len(EVENT_WORDS))
FLAG_CLOSE = 1  # close the connection after this response
FLAG_HEAD = 2   # HEAD: send the header only
FLAG_INTERIM = 4  # a 1xx response: the request's final response follows

# Fixed responses follow the P configured paths: index = P + R*.
R404, R400, R414, R431, R501, R405, R100 = range(7)
N_FIXED_RESPONSES = 7

COUNTER_NAMES = (               # server_parse counters (int64 array of N_COUNTERS)
    "requests",         # final responses owed (errors included; 100 Continue is not one)
    "bad_request",      # 400
    "too_large",        # 414 and 431
    "not_found",        # 404
    "not_implemented",  # 501
    "bytes",            # bytes consumed
    "not_allowed",      # 405
    "continue_sent",    # 100 Continue sent
)
(CNT_REQUESTS, CNT_BAD_REQUEST, CNT_TOO_LARGE, CNT_NOT_FOUND, CNT_NOT_IMPLEMENTED, CNT_BYTES, CNT_NOT_ALLOWED,
 CNT_CONTINUE) = range(len(COUNTER_NAMES))
N_COUNTERS = len(COUNTER_NAMES)

# --------------------------------------------------------------- table

# ResponseTable.arrays() = (meta int64[R, RESP_COLS], blob uint8[:], routes int64[P, 2]).
# The body comes from a pattern of `period` bytes stored twice, so that any slice of up to
# `period` bytes from phase < period is contiguous.  routes row p: (path hash, path length).
RESPONSE_COLUMNS = (
    "hdr_off",          # the head's offset in blob, keep-alive variant
    "hdr_off_close",    #   Connection: close variant
    "hdr_len",          # its length, keep-alive variant
    "hdr_len_close",    #   Connection: close variant
    "body_len",         # the body's length
    "body_off",         # the body pattern's offset in blob
    "body_period",      #   and its period
)
RESP_HDR_OFF, _, RESP_HDR_LEN, _, RESP_BODY_LEN, RESP_BODY_OFF, RESP_BODY_PERIOD = range(len(RESPONSE_COLUMNS))
RESP_COLS = len(RESPONSE_COLUMNS)
ROUTE_HASH, ROUTE_LEN = 0, 1


@kernel
def server_reset(state):
    """Return the row's first HS_WORDS words to the new-connection state (a wider row keeps the rest)."""
    state[:HS_WORDS] = 0


@kernel
def server_parse(state, data, start, end, table, events, counters):
    """Parse data[start:end] for one connection; returns (consumed_end, nevents).

    Appends (response index, FLAG_*) to events for each complete request, in
    order, and for each 100 Continue owed (FLAG_INTERIM).  Stops right after
    the request that fills events; the caller keeps the bytes from
    consumed_end and retries them.  After a FLAG_CLOSE event
    all further input is consumed without events.
    """
    routes = table[2]
    end = max(0, min(end, data.shape[0]))
    i = start = max(0, min(start, end))
    maxev = events.shape[0] if events.shape[1] >= 2 else 0
    nev = 0
    while i < end:
        if state[W_STAGE] == RQ_DEAD:
            i = end
            break
        if nev == maxev:
            break
        i, resp, flags = _server_step(state, data, i, end, routes)
        if resp >= 0:
            _emit(state, events, nev, resp, flags, counters, routes.shape[0])
            nev += 1
    counters[CNT_BYTES] += i - start
    return i, nev


@inline
def server_parse_memo(memo, state, data, start, end, table, events, counters):
    """`server_parse`, replaying the parse of a request head seen before (nperf.kernels.head_memo).

    Only a head that starts at a request boundary (the row idle, the first
    byte not a blank line's) is looked up or recorded; a replay needs more event room than the head produced, so
    that the full parse could not have stopped inside it either.
    """
    end = max(0, min(end, data.shape[0]))
    start = max(0, min(start, end))
    if state[W_STAGE] != RQ_IDLE or start == end or data[start] == CR or data[start] == LF \
            or state.shape[0] < head_memo.APP_WORDS:
        return server_parse(state, data, start, end, table, events, counters)
    begin_message(state, RQ_METHOD, HS_WORDS)       # the parser's first step here (_skip_blank_lines), taken
    # first so that every request meets the same row, whatever the last one left in it
    room = events.shape[0] if events.shape[1] >= head_memo.EVENT_WIDTH else 0
    e = head_memo.find(memo, state, 0, data, start, end)
    if e < 0 or memo.results[e, head_memo.MR_OUTCOME] >= room:
        return _parse_and_record(memo, state, data, start, end, table, events, counters)
    consumed, nev = head_memo.replay(memo, e, state, counters)
    head_memo.replay_events(memo, e, events)
    return _parse_rest(state, data, start + consumed, end, table, events, counters, nev)


@kernel
def _parse_and_record(memo, state, data, start, end, table, events, counters):
    """No replay: parse the head, keep it (if it fits), then the rest (a call: misses are rare)."""
    h = head_memo.head_end(data, start, end)
    if h < 0 or h - start > head_memo.MEMO_BYTES:
        return server_parse(state, data, start, end, table, events, counters)
    head_memo.before(memo, state, counters)
    i, nev = server_parse(state, data, start, h, table, events, counters)
    if i < h:                    # the events ran out inside the head: as the full parse would stop
        return i, nev
    e = head_memo.record(memo, 0, data, start, end, h - start, h - start, nev, state, counters)
    if e >= 0:
        head_memo.record_events(memo, e, events, nev)
    return _parse_rest(state, data, i, end, table, events, counters, nev)


@inline
def _parse_rest(state, data, i, end, table, events, counters, nev):
    """After a head that gave nev events: parse what follows it, if anything; returns (end, events)."""
    if i == end:
        return i, nev
    i, more = server_parse(state, data, i, end, table, events[nev:], counters)
    return i, nev + more


@kernel
def _server_step(state, data, i, end, routes):
    """Advance through one stage's worth of bytes; returns (i, response or -1, FLAG_*)."""
    npaths = routes.shape[0]
    stage = state[W_STAGE]
    if stage == RQ_IDLE:
        return _skip_blank_lines(state, data, i, end), -1, 0
    if stage == RQ_BODY:
        return _skip_body(state, i, end)
    if stage < ST_SIDE:
        i, res = header_run(state, data, i, end, HEADER_LIMIT)
        if res == HR_MORE:
            return i, -1, 0
        if res == HR_DONE:
            resp, flags = _head_done(state, npaths)
            return i, resp, flags
        bad = R400 if res == HR_BAD else R431
        return i, npaths + bad, _event_flags(state[W_FLAGS]) | FLAG_CLOSE
    return _line_run(state, data, i, end, routes)


@kernel
def _skip_blank_lines(state, data, i, end):
    """Skip CR/LF between requests; the first other byte starts a request line."""
    while i < end and (data[i] == CR or data[i] == LF):
        i += 1
    if i < end:
        begin_message(state, RQ_METHOD, HS_WORDS)
    return i


@kernel
def _line_run(state, data, i, end, routes):
    """Request-line bytes; past LINE_LIMIT the answer is 414 whatever else is wrong (split-independent)."""
    i0 = i
    res = HR_MORE
    while i < end and res == HR_MORE:
        res = _line_byte(state, data[i], routes)
        i += 1
    state[W_SIZE] += i - i0
    npaths = routes.shape[0]
    if state[W_SIZE] > LINE_LIMIT or res == HR_BAD:
        bad = R414 if state[W_SIZE] > LINE_LIMIT else R400
        return i, npaths + bad, _event_flags(state[W_FLAGS]) | FLAG_CLOSE
    if res == HR_DONE:
        state[W_STAGE] = ST_HDR_LINE
        state[W_SIZE] = 0
    return i, -1, 0


@inline
def _line_byte(state, c, routes):
    """One request-line byte: METHOD SP target SP HTTP/1.x CRLF; HR_MORE, HR_DONE or HR_BAD."""
    stage = state[W_STAGE]
    if stage == RQ_TARGET:
        if c == SP or c == 63:  # '?'
            if c == SP and state[W_COUNT] == 0:
                return HR_BAD
            state[W_ROUTE] = _method_route(state[W_FLAGS], routes, state[W_HASH], state[W_COUNT])
            _enter(state, RQ_VERSION if c == SP else RQ_QUERY)
            return HR_MORE
        return _hash_byte(state, c, CL_VISIBLE)
    if stage == RQ_METHOD:
        if c == SP and state[W_COUNT] > 0:
            state[W_FLAGS] |= _method_flags(state[W_HASH])
            _enter(state, RQ_TARGET)
            return HR_MORE
        return _hash_byte(state, c, CL_TCHAR)
    if stage == RQ_QUERY:
        if c == SP:
            _enter(state, RQ_VERSION)
            return HR_MORE
        return HR_MORE if has_class(c, CL_VISIBLE) else HR_BAD
    if stage == RQ_VERSION:
        if state[W_COUNT] < 8:
            return HR_MORE if version_byte(state, c) else HR_BAD
        if c == CR:
            state[W_STAGE] = RQ_LINE_LF
            return HR_MORE
    return HR_DONE if c == LF else HR_BAD


@inline
def _hash_byte(state, c, cls):
    """Add a byte of class cls to the running hash and length (method or path)."""
    if not has_class(c, cls):
        return HR_BAD
    state[W_HASH] = fnv_step(state[W_HASH], c)
    state[W_COUNT] += 1
    return HR_MORE


@inline
def _enter(state, stage):
    state[W_STAGE] = stage
    state[W_HASH] = FNV_BASIS
    state[W_COUNT] = 0


@inline
def _method_flags(h):
    """MF_HEAD, MF_NOT_ALLOWED or MF_UNKNOWN_METHOD for a method's hash; 0 for GET."""
    if h == H_METHOD_GET:
        return 0
    if h == H_METHOD_HEAD:
        return MF_HEAD
    for m in H_METHODS_NOT_ALLOWED:
        if h == m:
            return MF_NOT_ALLOWED
    return MF_UNKNOWN_METHOD


@inline
def _method_route(f, routes, h, n):
    """The response for the method in flags f and the path: 405 or 501 before any path."""
    if (f & MF_NOT_ALLOWED) != 0:
        return np.int64(routes.shape[0] + R405)
    if (f & MF_UNKNOWN_METHOD) != 0:
        return np.int64(routes.shape[0] + R501)
    return _route(routes, h, n)


@kernel
def _route(routes, h, n):
    """Index of the first configured path with this hash and length, else the 404 response."""
    for p in range(routes.shape[0]):
        if routes[p, ROUTE_HASH] == h and routes[p, ROUTE_LEN] == n:
            return np.int64(p)
    return np.int64(routes.shape[0] + R404)


@inline
def _event_flags(f):
    """FLAG_* for a request with parser flags f: HEAD, and close per version and Connection."""
    flags = FLAG_HEAD if (f & MF_HEAD) != 0 else 0
    if (f & MF_CLOSE) != 0 or ((f & MF_HTTP10) != 0 and (f & MF_KEEPALIVE) == 0):
        flags |= FLAG_CLOSE
    return np.int64(flags)


@kernel
def _head_done(state, npaths):
    """Header section complete: the event now, or after the Content-Length body (a 100 first if asked)."""
    f = state[W_FLAGS]
    if (f & MF_TE) != 0:
        return np.int64(npaths + R501), _event_flags(f) | FLAG_CLOSE
    if state[W_NUM] > 0:
        state[W_STAGE] = RQ_BODY
        if (f & MF_EXPECT_CONTINUE) != 0 and (f & MF_HTTP10) == 0:
            return np.int64(npaths + R100), np.int64(FLAG_INTERIM)
        return np.int64(-1), np.int64(0)
    return state[W_ROUTE], _event_flags(f)


@kernel
def _skip_body(state, i, end):
    """Consume request body bytes without looking at them."""
    k = min(state[W_NUM], end - i)
    state[W_NUM] -= k
    if state[W_NUM] == 0:
        return i + k, state[W_ROUTE], _event_flags(state[W_FLAGS])
    return i + k, np.int64(-1), np.int64(0)


@kernel
def _emit(state, events, nev, resp, flags, counters, npaths):
    """Record the event and its counters; after a final response the connection dies or waits for the next."""
    events[nev, E_RESPONSE] = resp
    events[nev, E_FLAGS] = flags
    if (flags & FLAG_INTERIM) != 0:
        counters[CNT_CONTINUE] += 1
        return
    counters[CNT_REQUESTS] += 1
    err = resp - npaths
    if err == R404:
        counters[CNT_NOT_FOUND] += 1
    elif err == R400:
        counters[CNT_BAD_REQUEST] += 1
    elif err == R414 or err == R431:
        counters[CNT_TOO_LARGE] += 1
    elif err == R501:
        counters[CNT_NOT_IMPLEMENTED] += 1
    elif err == R405:
        counters[CNT_NOT_ALLOWED] += 1
    state[W_STAGE] = RQ_DEAD if (flags & FLAG_CLOSE) != 0 else RQ_IDLE


# --------------------------------------------------------------- responses


@inline
def response_header_length(table, index, flags):
    """Bytes of the status line and header fields of a response, in its close or keep-alive variant."""
    meta = table[0]
    if index < 0 or index >= meta.shape[0]:
        return np.int64(0)
    return meta[index, RESP_HDR_LEN + (flags & FLAG_CLOSE)]


@inline
def response_length(table, index, flags):
    """Total bytes of a response as sent for these FLAG_* (HEAD: the header only)."""
    n = response_header_length(table, index, flags)
    if n > 0 and (flags & FLAG_HEAD) == 0:
        n += table[0][index, RESP_BODY_LEN]
    return n


@inline
def response_copy(table, index, flags, offset, out, out_pos, n):
    """Write response bytes [offset, offset+n) into out[out_pos:]; returns how many were written.

    The count is cut to what the response and out hold (0 for invalid arguments). Inlined into
    the segment it fills: called, it took the response table's arrays by value on the stack for
    every response (nperf bench tcp: a sixth of the server's time per keep-alive request).
    """
    meta, blob = table[0], table[1]
    total = response_length(table, index, flags)
    n = window_size(total, offset, out, out_pos, n)
    if n == 0:
        return n
    close = flags & FLAG_CLOSE
    hlen = meta[index, RESP_HDR_LEN + close]
    copy_span(blob, meta[index, RESP_HDR_OFF + close], hlen, 0, offset, out, out_pos, n)
    if offset + n > hlen:
        skip = max(offset, hlen)
        _copy_body(blob, meta[index, RESP_BODY_OFF], meta[index, RESP_BODY_PERIOD],
                   skip - hlen, out, out_pos + skip - offset, offset + n - skip)
    return n


@inline
def _copy_body(blob, src, period, body_pos, out, out_pos, n):
    """Copy n body bytes from body_pos: slices of up to `period` bytes of the doubled pattern."""
    while n > 0:
        phase = body_pos % period
        k = min(n, period)
        copy_bytes(out, out_pos, blob, src + phase, k)
        body_pos += k
        out_pos += k
        n -= k
