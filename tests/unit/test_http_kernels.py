"""HTTP/1.1 framing kernels: exact bytes, events, states and counters, at every split point.

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nperf.config import HttpConfig, HttpPath, load_worker
from nperf.roles.http_tables import build_request_table, build_response_table
from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs

HERE = Path(__file__).resolve().parent.parent      # tests/
SEED = HERE / "seed_configs/memif/test3/s.json"
HTTP = load_worker(str(SEED))[0].http_config
RT = build_response_table(HTTP)
QT = build_request_table(HTTP)
TABLE = RT.arrays()
LINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-\n"
PATTERN = LINE * 64
SEED_HEAD = b"HTTP/1.1 200 OK\r\nServer: unetbsd\r\nContent-Type: text/plain\r\n"
CLOSE, HEAD, INTERIM = hs.FLAG_CLOSE, hs.FLAG_HEAD, hs.FLAG_INTERIM
IP = (192 << 24) | (168 << 16) | (1 << 8) | 100  # 192.168.1.100

FUZZ = settings(derandomize=True, max_examples=1000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def arr(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).copy()


def splits(data: bytes, points) -> list[bytes]:
    cuts = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:])]


def response(table, index, flags) -> bytes:
    n = hs.response_length(table, index, flags)
    out = np.zeros(n, np.uint8)
    assert hs.response_copy(table, index, flags, 0, out, 0, n) == n
    return out.tobytes()


def request(index, close, ip=IP, port=8000) -> bytes:
    n = hc.request_length(QT.arrays(), index, close, ip, port)
    out = np.zeros(n, np.uint8)
    assert hc.request_copy(QT.arrays(), index, close, ip, port, 0, out, 0, n) == n
    return out.tobytes()


class Server:
    """One server connection: feeds chunks like a caller would, checking every return value."""

    def __init__(self, table=TABLE, maxev=8):
        self.table = table
        self.state = np.zeros(hs.HS_WORDS, np.int64)
        self.counters = np.zeros(hs.N_COUNTERS, np.int64)
        self.events_array = np.zeros((maxev, 2), np.int64)
        self.events: list[tuple[int, int]] = []

    def feed(self, *chunks: bytes) -> list[tuple[int, int]]:
        maxev = self.events_array.shape[0]
        for chunk in chunks:
            data, pos = arr(chunk), 0
            while True:
                end, nev = hs.server_parse(self.state, data, pos, len(data), self.table,
                                           self.events_array, self.counters)
                assert pos <= end <= len(data) and 0 <= nev <= maxev
                self.events += [tuple(map(int, e)) for e in self.events_array[:nev]]
                if end == len(data):
                    break
                assert nev == maxev, "stopped early with room for events"
                pos = end
        return self.events

    @property
    def stage(self) -> int:
        return int(self.state[hs.W_STAGE])


class Client:
    """One client connection; records (event, status, body bytes, close requested) per event."""

    def __init__(self):
        self.state = np.zeros(hc.HC_WORDS, np.int64)
        self.counters = np.zeros(hc.N_COUNTERS, np.int64)
        self.events: list[tuple[int, int, int, bool]] = []

    def feed(self, *chunks: bytes) -> list[tuple[int, int, int, bool]]:
        for chunk in chunks:
            data, pos = arr(chunk), 0
            while pos < len(data):
                end, ev = hc.client_parse(self.state, data, pos, len(data), self.counters, False)
                assert pos < end <= len(data) and ev in (0, 1, 2, 3)
                assert ev != 0 or end == len(data)
                if ev:
                    self._record(ev)
                pos = end
        return self.events

    def eof(self) -> int:
        ev = hc.client_eof(self.state, self.counters)
        if ev:
            self._record(ev)
        return ev

    def _record(self, ev):
        s = self.state
        self.events.append((int(ev), int(hc.client_status(s)), int(hc.client_body_bytes(s)),
                            bool(hc.client_close_requested(s))))

    @property
    def stage(self) -> int:
        return int(self.state[hc.W_STAGE])


COUNT_NAMES = ("requests", "bad", "too_large", "not_found", "not_implemented", "bytes", "not_allowed", "continue")
NONE_COUNTED = dict.fromkeys(COUNT_NAMES, 0)


def counts(server: Server) -> dict[str, int]:
    return dict(zip(COUNT_NAMES, map(int, server.counters)))


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
        assert s.stage == hs.S_IDLE
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
    assert s.stage == hs.S_DEAD
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
    assert counts(s)["not_implemented"] == 1 and s.stage == hs.S_DEAD


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
    assert (c["requests"], c["not_implemented"], c["not_allowed"]) == (2, 2, 0) and s.stage == hs.S_DEAD


EXPECTING = b"GET /hello HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_expect_100_continue_before_the_body():
    s = Server()
    assert s.feed(EXPECTING) == [(RT.r100, INTERIM)]
    assert s.stage == hs.S_BODY
    c = counts(s)
    assert (c["requests"], c["continue"]) == (0, 1)
    assert s.feed(b"hello") == [(RT.r100, INTERIM), (0, 0)]
    c = counts(s)
    assert (c["requests"], c["continue"], c["bytes"]) == (1, 1, len(EXPECTING) + 5) and s.stage == hs.S_IDLE
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
    assert s.stage == (hs.S_DEAD if flags else hs.S_IDLE)


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
    assert s.stage == hs.S_BODY
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
    """The caller's rows may be wider than HS_WORDS / HC_WORDS: the parsers touch only their own words."""
    state = np.full(hs.HS_WORDS + 2, 99, np.int64)
    hs.server_reset(state)
    events = np.zeros((4, 2), np.int64)
    data = arr(b"GET / HTTP/1.1\r\n\r\nGET /x")
    hs.server_parse(state, data, 0, len(data), TABLE, events, np.zeros(hs.N_COUNTERS, np.int64))
    assert state[hs.HS_WORDS:].tolist() == [99, 99]
    state = np.full(hc.HC_WORDS + 2, 99, np.int64)
    hc.client_reset(state)
    data = arr(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1")
    counters = np.zeros(hc.N_COUNTERS, np.int64)
    assert hc.client_parse(state, data, 0, len(data), counters, False)[1] == hc.EV_OK
    hc.client_parse(state, data, 38, len(data), counters, False)
    assert state[hc.HC_WORDS:].tolist() == [99, 99]


# ------------------------------------------------------------------ client side


def test_request_bytes_exact():
    headers = b"User-Agent: perf_tool/1.0\r\nAccept: */*\r\n"
    assert request(0, False) == b"GET /hello HTTP/1.1\r\nHost: 192.168.1.100:8000\r\n" + headers + b"\r\n"
    assert request(1, True, 0x0A000001, 80) == (
        b"GET /another HTTP/1.1\r\nHost: 10.0.0.1:80\r\n" + headers + b"Connection: close\r\n\r\n")
    assert b"Host: 0.0.0.0:1\r\n" in request(2, False, 0, 1)
    assert b"Host: 255.255.255.255:65535\r\n" in request(2, False, 0xFFFFFFFF, 65535)


def test_request_copy_every_window():
    full = request(0, True)
    table = QT.arrays()
    for offset in range(len(full) + 1):
        for n in range(len(full) - offset + 1):
            out = np.full(n + 2, 0xEE, np.uint8)
            assert hc.request_copy(table, 0, True, IP, 8000, offset, out, 1, n) == n
            assert out[1:1 + n].tobytes() == full[offset:offset + n]
            assert out[0] == 0xEE and out[-1] == 0xEE
    out = np.zeros(8, np.uint8)
    assert hc.request_copy(table, 3, True, IP, 8000, 0, out, 0, 8) == 0
    assert hc.request_copy(table, 0, True, IP, 8000, len(full) - 3, out, 0, 8) == 3


@pytest.mark.parametrize("index,flags", [(0, 0), (0, CLOSE), (2, 0), (2, CLOSE), (3, 0), (3, CLOSE)])
def test_round_trip_every_split_point(index, flags):
    text = response(TABLE, index, flags)
    body_len = len(text) - hs.response_header_length(TABLE, index, flags)
    ev = hc.EV_OK if index < RT.num_paths else hc.EV_BAD_STATUS
    status = 200 if index < RT.num_paths else 404
    closing = bool(flags & CLOSE)
    for i in range(len(text) + 1):
        c = Client()
        assert c.feed(text[:i], text[i:]) == [(ev, status, body_len, closing)], i
        assert c.stage == (hc.C_DEAD if closing else hc.C_IDLE)
        assert c.counters.tolist() == [1, body_len, len(text), 0, 0, int(ev == 1), 0, int(ev == 2), 0, 0]


def test_round_trip_5mib_in_segments_then_pipelined():
    big, small = response(TABLE, 1, 0), response(TABLE, 0, CLOSE)
    data = big + small
    c = Client()
    assert c.feed(*[data[k:k + 1460] for k in range(0, len(data), 1460)]) == [
        (1, 200, 5 * 1024 * 1024, False), (1, 200, 100, True)]
    assert c.counters[hc.CNT_BODY_BYTES] == 5 * 1024 * 1024 + 100
    state = np.zeros(hc.HC_WORDS, np.int64)
    counters = np.zeros(hc.N_COUNTERS, np.int64)
    keep = response(TABLE, 0, 0)
    buf, first = arr(keep + small), len(keep)
    assert hc.client_parse(state, buf, 0, len(buf), counters, False) == (first, hc.EV_OK)
    assert hc.client_parse(state, buf, first, len(buf), counters, False) == (len(buf), hc.EV_OK)


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n"
           b"A ; name=\"v\"\r\n0123456789\r\n"
           b"1a\r\n" + b"z" * 26 + b"\n"
           b"0\r\nTrailer-Field: x\r\nContent-Length: 99\r\n\r\n")


def test_chunked_body_every_split_point():
    data = CHUNKED + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    expected = [(1, 200, 41, False), (2, 404, 0, False)]
    for i in range(len(data) + 1):
        c = Client()
        assert c.feed(data[:i], data[i:]) == expected, i
        assert c.counters.tolist() == [2, 41, len(data), 0, 0, 1, 0, 1, 0, 0]


def test_chunked_without_trailers_and_not_last():
    c = Client()
    assert c.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") == [
        (1, 200, 3, False)]
    c = Client()
    assert c.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n") == []
    assert c.eof() == hc.EV_OK and c.events == [(1, 200, 13, True)]


@pytest.mark.parametrize("status,ev,cls", [(201, 1, 2), (302, 1, 3), (404, 2, 4), (500, 2, 5), (599, 2, 5)])
def test_status_classes(status, ev, cls):
    c = Client()
    text = b"HTTP/1.1 %d Whatever It Is\r\nContent-Length: 2\r\n\r\nok" % status
    assert c.feed(text) == [(ev, status, 2, False)]
    assert c.counters[hc.CNT_STATUS_1XX + cls - 1] == 1 and c.counters[hc.CNT_RESPONSES] == 1


def test_interim_and_bodiless_responses():
    c = Client()
    data = (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
            b"HTTP/1.1 304 Not Modified\r\n\r\n"
            b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    assert c.feed(data) == [(1, 200, 2, False), (1, 204, 0, False), (1, 304, 0, False), (1, 200, 0, False)]
    assert c.counters[hc.CNT_STATUS_1XX] == 1 and c.counters[hc.CNT_RESPONSES] == 4


MALFORMED = [
    b"HTTP/2.0 200 OK\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 099 Low\r\n\r\n", b"HTTP/1.1 600 High\r\n\r\n", b"XTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n", b"HTTP/1.1 200 O\x00K\r\n\r\n", b"HTTP/1.1 200 OK\rX",
    b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 20 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_response_kills_connection(text):
    c = Client()
    events = c.feed(text, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert [e[0] for e in events] == [hc.EV_MALFORMED]
    assert c.stage == hc.C_DEAD and c.counters[hc.CNT_MALFORMED] == 1 and c.counters[hc.CNT_RESPONSES] == 0
    assert c.eof() == hc.EV_NONE


def _response_with_header_section(n: int) -> bytes:
    """A 204 whose header section (field lines and the empty line) is exactly n bytes."""
    return b"HTTP/1.1 204 No Content\r\nX-Filler: " + b"f" * (n - 14) + b"\r\n\r\n"


def test_response_header_section_limit():
    at, over = _response_with_header_section(hc.HEADER_LIMIT), _response_with_header_section(hc.HEADER_LIMIT + 1)
    assert len(at) - len(b"HTTP/1.1 204 No Content\r\n") == hc.HEADER_LIMIT
    assert Client().feed(at) == [(hc.EV_OK, 204, 0, False)]
    for chunks in ([over], [over[:40000], over[40000:]]):
        c = Client()
        assert [e[0] for e in c.feed(*chunks)] == [hc.EV_MALFORMED] and c.stage == hc.C_DEAD


def test_read_until_close():
    c = Client()
    assert c.feed(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nabc", b"defg") == []
    assert c.stage == hc.C_UNTIL_CLOSE
    assert c.eof() == hc.EV_OK
    assert c.events == [(1, 200, 7, True)]
    assert c.counters.tolist() == [1, 7, 37, 0, 0, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("head,closing", [
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n", True),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n", False),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n", True),
])
def test_close_requested(head, closing):
    c = Client()
    assert c.feed(head + b"\r\nx") == [(1, 200, 1, closing)]


def test_eof_cases():
    truncated = Client()
    truncated.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert truncated.eof() == hc.EV_TRUNCATED and truncated.counters[hc.CNT_TRUNCATED] == 1
    assert truncated.counters[hc.CNT_MALFORMED] == 0
    idle = Client()
    idle.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert idle.eof() == hc.EV_NONE and idle.stage == hc.C_DEAD
    state = np.full(hc.HC_WORDS, 9, np.int64)
    hc.client_reset(state)
    assert not state.any()


# ------------------------------------------------------------------ fuzz

VALID_REQUESTS = [request(0, False), request(1, True), PIPELINE, b"HEAD /x?y HTTP/1.0\r\n\r\n",
                  b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
                  b"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
                  b"PUT /hello HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", b"FOO / HTTP/1.1\r\n\r\n"]
VALID_RESPONSES = [response(TABLE, 0, 0), response(TABLE, RT.r404, CLOSE), CHUNKED,
                   b"HTTP/1.0 200 OK\r\n\r\nbody", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n"]


@st.composite
def mutated(draw, samples):
    """A valid message (or a few pipelined) with random byte replacements, insertions and deletions."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(samples), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        op, byte = draw(st.integers(0, 2)), draw(st.integers(0, 255))
        if op == 0 and pos < len(data):
            data[pos] = byte
        elif op == 1:
            data.insert(pos, byte)
        elif pos < len(data):
            del data[pos]
    return bytes(data)


@st.composite
def chunked_input(draw, samples):
    data = draw(st.one_of(st.binary(max_size=200), mutated(samples)))
    points = draw(st.lists(st.integers(0, len(data)), max_size=6))
    return data, points


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
        assert s.stage != hs.S_DEAD and (s.stage != hs.S_IDLE or set(data) <= {13, 10})


@FUZZ
@given(chunked_input(VALID_RESPONSES))
def test_fuzz_client_parse(case):
    data, points = case
    c = Client()
    events = c.feed(*splits(data, points))
    whole = Client()
    assert whole.feed(data) == events and (whole.state == c.state).all()
    assert (whole.counters == c.counters).all()
    counters = c.counters
    assert counters[hc.CNT_BYTES] == len(data)
    assert counters[hc.CNT_RESPONSES] == sum(e[0] != hc.EV_MALFORMED for e in events)
    assert counters[hc.CNT_MALFORMED] == sum(e[0] == hc.EV_MALFORMED for e in events) <= 1
    assert counters[hc.CNT_STATUS_2XX:hc.CNT_STATUS_5XX + 1].sum() == counters[hc.CNT_RESPONSES]
    assert counters[hc.CNT_BODY_BYTES] <= len(data)
    if not events:
        assert c.stage != hc.C_DEAD
        assert c.stage != hc.C_IDLE or not data or counters[hc.CNT_STATUS_1XX] > 0
    stage = c.stage
    ev = c.eof()
    assert (ev == hc.EV_NONE) == (stage in (hc.C_IDLE, hc.C_DEAD))
    assert c.stage == hc.C_DEAD


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


@FUZZ
@given(st.integers(-1, 3), st.booleans(), st.integers(0, 2**32 - 1), st.integers(1, 65535),
       st.integers(-2, 200), st.integers(-2, 200), st.integers(0, 200), st.integers(-2, 200))
def test_fuzz_request_copy(index, close, ip, port, offset, n, out_len, out_pos):
    out = np.zeros(out_len, np.uint8)
    got = hc.request_copy(QT.arrays(), index, close, ip, port, offset, out, out_pos, n)
    if not 0 <= index < 3:
        assert got == 0
        return
    full = request(index, close, ip, port)
    assert f"Host: {ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}:{port}\r\n".encode() in full
    valid = 0 <= offset <= len(full) and 0 <= out_pos <= out_len and n >= 0
    assert got == (min(n, len(full) - offset, out_len - out_pos) if valid else 0)
    assert out[out_pos:out_pos + got].tobytes() == full[offset:offset + got]
