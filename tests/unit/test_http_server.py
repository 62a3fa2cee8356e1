"""The server's HTTP/1.1 parser and response table (kernels.http_server): exact bytes, events,
states and counters, at every split point (the harness is tests/http_messages.py).

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nperf.config import HttpConfig, HttpPath
from nperf.kernels import http_server as hs
from nperf.roles.http_tables import build_response_table
from tests.http_messages import (CLOSE, FUZZ, HEAD, HTTP, INTERIM, LINE, NONE_COUNTED, PATTERN, RT, SEED_HEAD, TABLE,
                                 Server, arr, chunked_input, counts, request, response, splits)


# ------------------------------------------------------------------ response table


def test_response_exact_bytes_small_body():
    body = LINE + LINE[:36]
    head = SEED_HEAD + b"Content-Length: 100\r\n"
    assert response(TABLE, 0, 0) == head + b"\r\n" + body
    assert response(TABLE, 0, CLOSE) == head + b"Connection: close\r\n\r\n" + body
    assert response(TABLE, 0, HEAD) == head + b"\r\n"
    assert hs.response_header_length(TABLE, 0, 0) == len(head) + 2
    assert hs.response_header_length(TABLE, 0, CLOSE) == len(head) + 21
    assert hs.response_length(TABLE, 0, CLOSE | HEAD) == len(head) + 21


def test_error_responses_exact():
    assert (RT.num_paths, RT.r404, RT.r400, RT.r414, RT.r431, RT.r501, RT.r405, RT.r100) == (3, 3, 4, 5, 6, 7, 8, 9)
    expected = {
        RT.r404: b"404 Not Found", RT.r400: b"400 Bad Request", RT.r414: b"414 URI Too Long",
        RT.r431: b"431 Request Header Fields Too Large", RT.r501: b"501 Not Implemented",
        RT.r405: b"405 Method Not Allowed\r\nAllow: GET, HEAD",
    }
    assert response(TABLE, RT.r404, 0) == (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n")
    for index, status in expected.items():
        text = response(TABLE, index, CLOSE)
        head, body = text.split(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n")
        assert head.endswith(b"Content-Length: %d\r\nConnection: close" % len(body))
    assert response(TABLE, RT.r100, INTERIM) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_response_body_text_cycled_and_exact():
    paths = [HttpPath(path="/c", response_body="abcdefg", response_body_size=10000),
             HttpPath(path="/e", response_body="exact body", response_code=201),
             HttpPath(path="/n", response_body_size=5, response_code=204, response_headers=["X-A: 1"])]
    table = build_response_table(HttpConfig(paths=paths)).arrays()
    assert response(table, 0, 0) == (b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
                                     + (b"abcdefg" * 1429)[:10000])
    assert response(table, 1, 0) == b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nexact body"
    assert response(table, 2, 0) == b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"


@pytest.mark.parametrize("index", [0, 2])
def test_response_copy_random_offsets_small(index):
    rng = np.random.default_rng(index)
    for flags in (0, CLOSE, HEAD):
        full = response(TABLE, index, flags)
        for _ in range(300):
            offset = int(rng.integers(0, len(full) + 1))
            n = int(rng.integers(0, len(full) - offset + 1))
            out = np.full(n + 7, 0xEE, np.uint8)
            assert hs.response_copy(TABLE, index, flags, offset, out, 3, n) == n
            assert out[3:3 + n].tobytes() == full[offset:offset + n]
            assert (out[:3] == 0xEE).all() and (out[3 + n:] == 0xEE).all()


def test_response_copy_5mib_body():
    size = 5 * 1024 * 1024
    head = SEED_HEAD + b"Content-Length: 5242880\r\n\r\n"
    full = response(TABLE, 1, 0)
    assert full == head + PATTERN * (size // len(PATTERN))
    rng = np.random.default_rng(7)
    for _ in range(200):
        offset = int(rng.integers(0, len(full)))
        n = int(rng.integers(0, 20000))
        out = np.zeros(n, np.uint8)
        got = hs.response_copy(TABLE, 1, 0, offset, out, 0, n)
        assert got == min(n, len(full) - offset)
        assert out[:got].tobytes() == full[offset:offset + got]


def test_response_copy_clamps_to_message_and_out():
    full = response(TABLE, 0, 0)
    out = np.zeros(10, np.uint8)
    assert hs.response_copy(TABLE, 0, 0, len(full) - 4, out, 0, 100) == 4
    assert out[:4].tobytes() == full[-4:]
    assert hs.response_copy(TABLE, 0, 0, 0, out, 6, 100) == 4
    assert out[6:].tobytes() == full[:4]
    for index, offset, pos, n in [(-1, 0, 0, 5), (RT.r100 + 1, 0, 0, 5), (0, -1, 0, 5),
                                  (0, len(full) + 1, 0, 5), (0, 0, 11, 5), (0, 0, -1, 5), (0, 0, 0, -5)]:
        assert hs.response_copy(TABLE, index, 0, offset, out, pos, n) == 0
    assert hs.response_length(TABLE, -1, 0) == 0 and hs.response_length(TABLE, RT.r100 + 1, 0) == 0


# ------------------------------------------------------------------ server parser


def test_every_seed_path_routed():
    for i, p in enumerate(HTTP.paths):
        s = Server()
        assert s.feed(request(i, False)) == [(i, 0)]
        assert s.stage == hs.RQ_IDLE
        assert counts(s) == {**NONE_COUNTED, "requests": 1, "bytes": len(request(i, False))}


def test_unknown_path_404_keeps_connection():
    s = Server()
    req = b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"
    assert s.feed(req) == [(RT.r404, 0), (0, 0)]
    assert counts(s)["not_found"] == 1 and counts(s)["requests"] == 2


@pytest.mark.parametrize("target,index", [
    (b"/hello?x=1&y", 0), (b"/hello?", 0), (b"/?/hello", 2), (b"/another?a b", None),
    (b"/hell?o", 3), (b"/hello/", 3), (b"/HELLO", 3), (b"?x", 3),
])
def test_query_string_ignored_for_routing(target, index):
    s = Server()
    events = s.feed(b"GET " + target + b" HTTP/1.1\r\n\r\n")
    assert events == ([(RT.r400, CLOSE)] if index is None else [(index, 0)])


def test_route_compares_length_too():
    """A hash match alone is not enough: the path length must match as well."""
    meta, blob, routes = TABLE
    routes = routes.copy()
    routes[0, hs.ROUTE_LEN] += 1
    assert Server(table=(meta, blob, routes)).feed(b"GET /hello HTTP/1.1\r\n\r\n") == [(RT.r404, 0)]


BAD_REQUESTS = [
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET / HTTP/1.x\r\n\r\n",
    b"GET / http/1.1\r\n\r\n",
    b"GET / HTTP/1.1\rX\r\n\r\n",
    b"G(T / HTTP/1.1\r\n\r\n",
    b" GET / HTTP/1.1\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\n: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\r\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\r",
    b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
]


@pytest.mark.parametrize("req", BAD_REQUESTS)
def test_bad_request_400_then_dead(req):
    s = Server()
    assert s.feed(req, b"GET / HTTP/1.1\r\n\r\n") == [(RT.r400, CLOSE)]
    assert s.stage == hs.RQ_DEAD
    c = counts(s)
    assert (c["requests"], c["bad"], c["bytes"]) == (1, 1, len(req) + 18)


def test_bad_request_keeps_head_flag():
    assert Server().feed(b"HEAD / HTTP/1.1\r\nA B\r\n\r\n") == [(RT.r400, CLOSE | HEAD)]


def test_same_content_length_twice_accepted():
    req = b"GET / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length:3 \r\n\r\nabcGET / HTTP/1.1\r\n\r\n"
    assert Server().feed(req) == [(2, 0), (2, 0)]


def _line(k):
    return b"GET /" + b"a" * k + b" HTTP/1.1\r\n"


def test_request_line_limit_414():
    ok, big = _line(hs.LINE_LIMIT - 16), _line(hs.LINE_LIMIT - 15)
    assert (len(ok), len(big)) == (hs.LINE_LIMIT, hs.LINE_LIMIT + 1)
    assert Server().feed(ok + b"\r\n") == [(RT.r404, 0)]
    for chunks in ([big + b"\r\n"], [big[:5000], big[5000:]], [bytes([b]) for b in big]):
        s = Server()
        assert s.feed(*chunks) == [(RT.r414, CLOSE)]
        assert counts(s)["too_large"] == 1
    unterminated = Server()
    assert unterminated.feed(b"GET /" + b"a" * 9000) == [(RT.r414, CLOSE)]


def _headers(m):
    return b"GET / HTTP/1.1\r\nX: " + b"v" * m + b"\r\n\r\n"


def test_header_section_limit_431():
    ok, big = _headers(hs.HEADER_LIMIT - 7), _headers(hs.HEADER_LIMIT - 6)
    assert len(ok) - 16 == hs.HEADER_LIMIT
    assert Server().feed(ok) == [(2, 0)]
    for chunks in ([big], [big[:9000], big[9000:]], [bytes([b]) for b in big]):
        s = Server()
        assert s.feed(*chunks) == [(RT.r431, CLOSE)]
        assert counts(s)["too_large"] == 1
    many = b"GET / HTTP/1.1\r\n" + b"Accept: */*\r\n" * 2000
    assert Server().feed(many) == [(RT.r431, CLOSE)]


@pytest.mark.parametrize("te", [b"chunked", b"gzip, chunked", b"", b"identity"])
def test_transfer_encoding_501(te):
    s = Server()
    assert s.feed(b"POST /hello HTTP/1.1\r\nTransfer-encoding: " + te + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n") \
        == [(RT.r501, CLOSE)]
    assert counts(s)["not_implemented"] == 1 and s.stage == hs.RQ_DEAD


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PATCH",
                                    b"PROPFIND", b"MKCOL", b"UNLOCK"])
def test_registered_methods_405_keep_connection(method):
    s = Server()
    assert s.feed(method + b" /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
                  method + b" /nowhere HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n") == [
        (RT.r405, 0), (RT.r405, 0), (2, 0)]
    c = counts(s)
    assert (c["requests"], c["not_allowed"], c["not_found"], c["not_implemented"]) == (3, 2, 0, 0)


@pytest.mark.parametrize("method", [b"FOO", b"get", b"GETS", b"HEADER", b"POSTS", b"X-CUSTOM"])
def test_unknown_methods_501_keep_connection(method):
    s = Server()
    assert s.feed(method + b" /hello HTTP/1.1\r\n\r\n" + method + b" / HTTP/1.0\r\n\r\n") == [
        (RT.r501, 0), (RT.r501, CLOSE)]
    c = counts(s)
    assert (c["requests"], c["not_implemented"], c["not_allowed"]) == (2, 2, 0) and s.stage == hs.RQ_DEAD


EXPECTING = b"GET /hello HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_expect_100_continue_before_the_body():
    s = Server()
    assert s.feed(EXPECTING) == [(RT.r100, INTERIM)]
    assert s.stage == hs.RQ_BODY
    c = counts(s)
    assert (c["requests"], c["continue"]) == (0, 1)
    assert s.feed(b"hello") == [(RT.r100, INTERIM), (0, 0)]
    c = counts(s)
    assert (c["requests"], c["continue"], c["bytes"]) == (1, 1, len(EXPECTING) + 5) and s.stage == hs.RQ_IDLE
    whole = EXPECTING + b"helloGET / HTTP/1.1\r\n\r\n"
    for i in range(len(whole) + 1):
        assert Server().feed(whole[:i], whole[i:]) == [(RT.r100, INTERIM), (0, 0), (2, 0)], i


@pytest.mark.parametrize("head,events", [
    (b"GET /hello HTTP/1.1\r\nEXPECT:  100-Continue \r\nContent-Length: 1\r\n\r\nx", [(RT.r100, INTERIM), (0, 0)]),
    (b"GET /hello HTTP/1.1\r\nExpect: foo, 100-continue\r\nContent-Length: 1\r\n\r\nx",
     [(RT.r100, INTERIM), (0, 0)]),
    (b"POST /hello HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", [(RT.r100, INTERIM), (RT.r405, 0)]),
    (b"GET /hello HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", [(0, CLOSE)]),
    (b"GET /hello HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", [(0, 0)]),
    (b"GET /hello HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", [(0, 0)]),
    (b"GET /hello HTTP/1.1\r\nExpect: 100-continued\r\nContent-Length: 1\r\n\r\nx", [(0, 0)]),
    (b"GET /hello HTTP/1.1\r\nX-Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx", [(0, 0)]),
])
def test_expect_100_continue_only_when_a_body_waits(head, events):
    assert Server().feed(head) == events


def test_head_request():
    s = Server()
    assert s.feed(b"HEAD /hello HTTP/1.1\r\n\r\nHEAD /zz HTTP/1.1\r\n\r\nHEADER / HTTP/1.1\r\n\r\n") == [
        (0, HEAD), (RT.r404, HEAD), (RT.r501, 0)]
    assert response(TABLE, 0, HEAD) == response(TABLE, 0, 0)[:hs.response_header_length(TABLE, 0, 0)]


@pytest.mark.parametrize("version,connection,flags", [
    (b"1.0", None, CLOSE),
    (b"1.0", b"keep-alive", 0),
    (b"1.0", b"Keep-Alive", 0),
    (b"1.0", b"close, keep-alive", CLOSE),
    (b"1.1", None, 0),
    (b"1.1", b"close", CLOSE),
    (b"1.1", b"  Upgrade ,CLOSE\t", CLOSE),
    (b"1.1", b"closed", 0),
    (b"1.1", b"keep-alive", 0),
    (b"1.9", b"close", CLOSE),
])
def test_connection_persistence(version, connection, flags):
    req = b"GET /hello HTTP/" + version + b"\r\nHost: x\r\n"
    if connection is not None:
        req += b"CONNECTION:" + connection + b"\r\n"
    s = Server()
    assert s.feed(req + b"\r\n" + b"GET / HTTP/1.1\r\n\r\n") == [(0, flags)] + ([] if flags else [(2, 0)])
    assert s.stage == (hs.RQ_DEAD if flags else hs.RQ_IDLE)


PIPELINE = (b"GET /hello?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nconnection: keep-alive\r\n\r\nhello"
            b"GET /another HTTP/1.1\n\n"
            b"\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
PIPELINE_EVENTS = [(0, 0), (1, 0), (2, CLOSE)]


def test_pipelined_requests_in_one_buffer():
    s = Server()
    assert s.feed(PIPELINE) == PIPELINE_EVENTS
    assert counts(s) == {**NONE_COUNTED, "requests": 3, "bytes": len(PIPELINE)}


def test_every_split_point_two_and_three_chunks():
    n = len(PIPELINE)
    for i in range(n + 1):
        s = Server()
        assert s.feed(PIPELINE[:i], PIPELINE[i:]) == PIPELINE_EVENTS, i
        assert s.counters[hs.CNT_BYTES] == n
        for j in range(i, n + 1):
            assert Server().feed(*splits(PIPELINE, [i, j])) == PIPELINE_EVENTS, (i, j)


def test_large_request_body_across_calls():
    body = b"x" * 1_000_000
    s = Server()
    assert s.feed(b"GET /hello HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", body[:700_000]) == []
    assert s.stage == hs.RQ_BODY
    assert s.feed(body[700_000:] + b"GET /zz HTTP/1.1\r\n\r\n") == [(0, 0), (RT.r404, 0)]


def test_events_full_stops_and_resumes():
    three = b"GET /hello HTTP/1.1\r\n\r\n" * 3
    state = np.zeros(hs.HS_WORDS, np.int64)
    counters = np.zeros(hs.N_COUNTERS, np.int64)
    events = np.zeros((2, 2), np.int64)
    data = arr(three)
    assert hs.server_parse(state, data, 0, len(data), TABLE, events, counters) == (46, 2)
    assert hs.server_parse(state, data, 46, len(data), TABLE, events, counters) == (69, 1)
    assert counters[hs.CNT_REQUESTS] == 3 and counters[hs.CNT_BYTES] == 69
    one = Server(maxev=1)
    assert one.feed(three[:30], three[30:]) == [(0, 0)] * 3


def test_closing_event_with_full_events_consumes_the_rest():
    state = np.zeros(hs.HS_WORDS, np.int64)
    counters = np.zeros(hs.N_COUNTERS, np.int64)
    events = np.zeros((1, 2), np.int64)
    data = arr(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert hs.server_parse(state, data, 0, len(data), TABLE, events, counters) == (len(data), 1)
    assert events.tolist() == [[2, CLOSE]]


def test_parse_clamps_start_end_and_reset():
    state = np.zeros(hs.HS_WORDS, np.int64)
    counters = np.zeros(hs.N_COUNTERS, np.int64)
    events = np.zeros((4, 2), np.int64)
    data = arr(b"GET / HTTP/1.1\r\n\r\n")
    assert hs.server_parse(state, data, -5, 999, TABLE, events, counters) == (len(data), 1)
    assert hs.server_parse(state, data, 50, 40, TABLE, events, counters) == (len(data), 0)
    state[:] = 7
    hs.server_reset(state)
    assert not state.any()


def test_wider_rows_keep_their_extra_words():
    """The caller's row may be wider than HS_WORDS: the parser touches only its own words."""
    state = np.full(hs.HS_WORDS + 2, 99, np.int64)
    hs.server_reset(state)
    events = np.zeros((4, 2), np.int64)
    data = arr(b"GET / HTTP/1.1\r\n\r\nGET /x")
    hs.server_parse(state, data, 0, len(data), TABLE, events, np.zeros(hs.N_COUNTERS, np.int64))
    assert state[hs.HS_WORDS:].tolist() == [99, 99]


# ------------------------------------------------------------------ fuzz

VALID_REQUESTS = [request(0, False), request(1, True), PIPELINE, b"HEAD /x?y HTTP/1.0\r\n\r\n",
                  b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
                  b"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
                  b"PUT /hello HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", b"FOO / HTTP/1.1\r\n\r\n"]


ERRORS = {RT.r400: "bad", RT.r414: "too_large", RT.r431: "too_large", RT.r404: "not_found",
          RT.r501: "not_implemented", RT.r405: "not_allowed", RT.r100: "continue"}
KEEPING = {RT.r404, RT.r405, RT.r501, RT.r100}  # responses that need not close: paths' and these


@FUZZ
@given(chunked_input(VALID_REQUESTS), st.integers(1, 3))
def test_fuzz_server_parse(case, maxev):
    data, points = case
    s = Server(maxev=maxev)
    events = s.feed(*splits(data, points))
    whole = Server()
    assert whole.feed(data) == events and (whole.state == s.state).all()
    assert (whole.counters == s.counters).all()
    c = counts(s)
    assert c["bytes"] == len(data) and c["requests"] == sum(index != RT.r100 for index, _ in events)
    for name in ("bad", "too_large", "not_found", "not_implemented", "not_allowed", "continue"):
        assert c[name] == sum(ERRORS.get(index) == name for index, _ in events)
    for k, (index, flags) in enumerate(events):
        assert 0 <= index <= RT.r100 and 0 <= flags <= 3 or (index, flags) == (RT.r100, INTERIM)
        assert (index == RT.r100) == (flags == INTERIM)
        assert flags & CLOSE or index in KEEPING or index < RT.num_paths
        assert not flags & CLOSE or k == len(events) - 1
    if not events:
        assert s.stage != hs.RQ_DEAD and (s.stage != hs.RQ_IDLE or set(data) <= {13, 10})


@FUZZ
@given(st.integers(-2, RT.r100 + 2), st.integers(-1, 3), st.integers(-5, 6000), st.integers(-2, 3000),
       st.integers(0, 3000), st.integers(-2, 3000))
def test_fuzz_response_copy(index, flags, offset, n, out_len, out_pos):
    out = np.zeros(out_len, np.uint8)
    got = hs.response_copy(TABLE, index, flags, offset, out, out_pos, n)
    if not 0 <= index <= RT.r100:
        assert got == 0
        return
    full = response(TABLE, index, flags) if index != 1 else b""
    total = hs.response_length(TABLE, index, flags)
    valid = 0 <= offset <= total and 0 <= out_pos <= out_len and n >= 0
    assert got == (min(n, total - offset, out_len - out_pos) if valid else 0)
    if full and got:
        assert out[out_pos:out_pos + got].tobytes() == full[offset:offset + got]
