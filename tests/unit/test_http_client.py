"""The client's HTTP/1.1 response parser and request table (kernels.http_client): exact bytes,
events, states and counters, at every split point (the harness is tests/http_messages.py).

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
import ipaddress

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs
from nperf.kernels.net import ipv6_words
from tests.http_messages import (CLOSE, FUZZ, IP, QT, RT, TABLE, Client, arr, chunked_input, request, response,
                                 splits)


# ------------------------------------------------------------------ client side


def test_request_bytes_exact():
    headers = b"User-Agent: perf_tool/1.0\r\nAccept: */*\r\n"
    assert request(0, False) == b"GET /hello HTTP/1.1\r\nHost: 192.168.1.100:8000\r\n" + headers + b"\r\n"
    assert request(1, True, 0x0A000001, 80) == (
        b"GET /another HTTP/1.1\r\nHost: 10.0.0.1:80\r\n" + headers + b"Connection: close\r\n\r\n")
    assert b"Host: 0.0.0.0:1\r\n" in request(2, False, 0, 1)
    assert b"Host: 255.255.255.255:65535\r\n" in request(2, False, 0xFFFFFFFF, 65535)


@pytest.mark.parametrize("address,host", [
    ("fd00:77::1", b"[fd00:77:0:0:0:0:0:1]:8000"),
    ("2001:db8:a0b:12f0::ffff", b"[2001:db8:a0b:12f0:0:0:0:ffff]:8000"),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", b"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:8000"),
    ("fe80::1:0", b"[fe80:0:0:0:0:0:1:0]:8000")])
def test_an_ipv6_host_is_bracketed_and_every_field_written(address, host):
    hi, lo = ipv6_words(ipaddress.ip_address(address))
    text = request(1, False, lo, 8000, hi)
    assert text.startswith(b"GET /another HTTP/1.1\r\nHost: " + host + b"\r\n")
    assert ipaddress.ip_address(host[1:host.index(b"]")].decode()) == ipaddress.ip_address(address)
    other = request(1, False, lo, 8000, hi ^ 1)        # the same cache slot, another /64: rendered anew
    assert host not in other and other.count(b"Host: [") == 1
    assert request(1, False, 0x0A000001, 8000).startswith(b"GET /another HTTP/1.1\r\nHost: 10.0.0.1:8000\r\n")


def test_request_copy_every_window():
    full = request(0, True)
    table = QT.arrays()
    for offset in range(len(full) + 1):
        for n in range(len(full) - offset + 1):
            out = np.full(n + 2, 0xEE, np.uint8)
            assert hc.request_copy(table, 0, True, 0, IP, 8000, offset, out, 1, n) == n
            assert out[1:1 + n].tobytes() == full[offset:offset + n]
            assert out[0] == 0xEE and out[-1] == 0xEE
    out = np.zeros(8, np.uint8)
    assert hc.request_copy(table, 3, True, 0, IP, 8000, 0, out, 0, 8) == 0
    assert hc.request_copy(table, 0, True, 0, IP, 8000, len(full) - 3, out, 0, 8) == 3


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
        assert c.stage == (hc.RS_DEAD if closing else hc.RS_IDLE)
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
    assert c.stage == hc.RS_DEAD and c.counters[hc.CNT_MALFORMED] == 1 and c.counters[hc.CNT_RESPONSES] == 0
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
        assert [e[0] for e in c.feed(*chunks)] == [hc.EV_MALFORMED] and c.stage == hc.RS_DEAD


def test_read_until_close():
    c = Client()
    assert c.feed(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nabc", b"defg") == []
    assert c.stage == hc.RS_UNTIL_CLOSE
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
    assert idle.eof() == hc.EV_NONE and idle.stage == hc.RS_DEAD
    state = np.full(hc.HC_WORDS, 9, np.int64)
    hc.client_reset(state)
    assert not state.any()


def test_wider_rows_keep_their_extra_words():
    """The caller's row may be wider than HC_WORDS: the parser touches only its own words."""
    state = np.full(hc.HC_WORDS + 2, 99, np.int64)
    hc.client_reset(state)
    data = arr(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1")
    counters = np.zeros(hc.N_COUNTERS, np.int64)
    assert hc.client_parse(state, data, 0, len(data), counters, False)[1] == hc.EV_OK
    hc.client_parse(state, data, 38, len(data), counters, False)
    assert state[hc.HC_WORDS:].tolist() == [99, 99]


# ------------------------------------------------------------------ fuzz

VALID_RESPONSES = [response(TABLE, 0, 0), response(TABLE, RT.r404, CLOSE), CHUNKED,
                   b"HTTP/1.0 200 OK\r\n\r\nbody", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n"]


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
        assert c.stage != hc.RS_DEAD
        assert c.stage != hc.RS_IDLE or not data or counters[hc.CNT_STATUS_1XX] > 0
    stage = c.stage
    ev = c.eof()
    assert (ev == hc.EV_NONE) == (stage in (hc.RS_IDLE, hc.RS_DEAD))
    assert c.stage == hc.RS_DEAD


@FUZZ
@given(st.integers(-1, 3), st.booleans(), st.integers(0, 2**32 - 1), st.integers(1, 65535),
       st.integers(-2, 200), st.integers(-2, 200), st.integers(0, 200), st.integers(-2, 200))
def test_fuzz_request_copy(index, close, ip, port, offset, n, out_len, out_pos):
    out = np.zeros(out_len, np.uint8)
    got = hc.request_copy(QT.arrays(), index, close, 0, ip, port, offset, out, out_pos, n)
    if not 0 <= index < 3:
        assert got == 0
        return
    full = request(index, close, ip, port)
    assert f"Host: {ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}:{port}\r\n".encode() in full
    valid = 0 <= offset <= len(full) and 0 <= out_pos <= out_len and n >= 0
    assert got == (min(n, len(full) - offset, out_len - out_pos) if valid else 0)
    assert out[out_pos:out_pos + got].tobytes() == full[offset:offset + got]
