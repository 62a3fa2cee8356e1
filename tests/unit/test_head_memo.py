"""Replayed heads (kernels.head_memo) give exactly what parsing them gives.

The stack parses through server_parse_memo / client_parse_memo; each test
here runs the plain parser beside them on the same input (the harness in
tests/http_messages.py) and compares every event, state word and counter,
first while the memo records, then while it replays, at random splits and
event room. One memo serves all the examples of a test, so stale entries
of other inputs are in the way, as on a real stack.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nperf.kernels import head_memo as hm
from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs
from tests.http_messages import (CLOSE, FUZZ, HEAD, RT, TABLE, Client, Server, chunked_input, request, response,
                                 splits)
from tests.unit.test_http_client import VALID_RESPONSES
from tests.unit.test_http_server import VALID_REQUESTS

SERVER_MEMO = hm.new_memo()
CLIENT_MEMO = hm.new_memo()


def same_server(ref: Server, got: Server):
    assert got.events == ref.events
    assert (got.state[:hs.HS_WORDS] == ref.state).all() and not got.state[hs.HS_WORDS:].any()
    assert (got.counters == ref.counters).all()


def same_client(ref: Client, got: Client):
    assert got.events == ref.events
    assert (got.state[:hc.HC_WORDS] == ref.state).all() and not got.state[hc.HC_WORDS:].any()
    assert (got.counters == ref.counters).all()


@FUZZ
@given(chunked_input(VALID_REQUESTS), st.integers(1, 4))
def test_fuzz_server_replay_equals_parse(case, maxev):
    data, points = case
    chunks = splits(data, points)
    ref = Server(maxev=maxev)
    ref.feed(*chunks, *chunks)              # the same connection sends it all twice
    for _ in range(2):                      # records, then replays
        got = Server(maxev=maxev, memo=SERVER_MEMO)
        got.feed(*chunks, *chunks)
        same_server(ref, got)


@FUZZ
@given(chunked_input(VALID_RESPONSES), st.booleans())
def test_fuzz_client_replay_equals_parse(case, head):
    data, points = case
    chunks = splits(data, points)
    ref = Client(head=head)
    ref.feed(*chunks, *chunks)
    for _ in range(2):
        got = Client(memo=CLIENT_MEMO, head=head)
        got.feed(*chunks, *chunks)
        same_client(ref, got)


def test_keepalive_requests_are_parsed_once_then_replayed():
    """The first request is parsed; every later one replays it, whatever the one before left in the row."""
    memo = hm.new_memo()
    ref, got = Server(), Server(memo=memo)
    req = request(0, False)
    for _ in range(100):
        ref.feed(req)
        got.feed(req)
    same_server(ref, got)
    assert ref.events == [(0, 0)] * 100
    assert (memo.var[hm.MV_HITS], memo.var[hm.MV_MISSES]) == (99, 1)
    e = np.flatnonzero(memo.keys[:, hm.MK_LENGTH])
    assert list(memo.keys[e, hm.MK_LENGTH]) == [len(req)]
    assert memo.heads[e[0], :len(req)].tobytes() == req
    assert list(memo.results[e[0], hm.MR_EVENTS:hm.MR_EVENTS + 2]) == [0, 0]


def test_response_heads_replayed_bodies_counted():
    memo = hm.new_memo()
    resp = response(TABLE, 0, 0)
    ref, got = Client(), Client(memo=memo)
    for _ in range(50):
        ref.feed(resp)
        got.feed(resp)
    same_client(ref, got)
    assert ref.events == [(hc.EV_OK, 200, 100, False)] * 50
    assert (memo.var[hm.MV_HITS], memo.var[hm.MV_MISSES]) == (49, 1)
    assert got.counters[hc.CNT_BODY_BYTES] == 5000 and got.counters[hc.CNT_BYTES] == 50 * len(resp)


def test_a_head_answering_head_is_not_replayed_for_get():
    """The same response head frames a body after GET and none after HEAD: the key holds which."""
    memo = hm.new_memo()
    head = response(TABLE, 0, HEAD)
    full = response(TABLE, 0, 0)
    assert full.startswith(head)
    for asked_head, data in ((True, head), (False, full), (True, head), (False, full)):
        ref, got = Client(head=asked_head), Client(memo=memo, head=asked_head)
        ref.feed(data, data)
        got.feed(data, data)
        same_client(ref, got)
        assert got.events == [(hc.EV_OK, 200, 0 if asked_head else 100, False)] * 2
    assert (memo.var[hm.MV_HITS], memo.var[hm.MV_MISSES]) == (6, 2)


def test_replay_needs_more_room_than_the_head_used():
    """Recorded with room for every pipelined request; with room for one the parse stops after it."""
    memo = hm.new_memo()
    req = request(0, False)
    warm = Server(maxev=4, memo=memo)
    warm.feed(req, req)
    for maxev in (1, 2, 4):
        ref, got = Server(maxev=maxev), Server(maxev=maxev, memo=memo)
        ref.feed(req + req, req)
        got.feed(req + req, req)
        same_server(ref, got)
        assert got.events == [(0, 0)] * 3


def test_long_heads_are_parsed_not_kept():
    memo = hm.new_memo()
    req = b"GET /hello HTTP/1.1\r\nX-Pad: " + b"p" * hm.MEMO_BYTES + b"\r\n\r\n"
    ref, got = Server(), Server(memo=memo)
    for _ in range(3):
        ref.feed(req)
        got.feed(req)
    same_server(ref, got)
    assert (memo.var[hm.MV_HITS], memo.var[hm.MV_MISSES]) == (0, 3) and not memo.keys[:, hm.MK_LENGTH].any()


def test_close_variant_is_its_own_head():
    memo = hm.new_memo()
    for close in (False, True, False, True):
        ref, got = Server(), Server(memo=memo)
        ref.feed(request(0, close))
        got.feed(request(0, close))
        same_server(ref, got)
        assert got.events == [(0, CLOSE if close else 0)]
    assert memo.var[hm.MV_HITS] == 2 and RT.num_paths == 3


def test_same_bytes_every_length_and_offset():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, 64, dtype=np.uint8)
    for n in range(0, 40):
        for ai in (0, 1, 5):
            b = np.zeros(64, np.uint8)
            b[3:3 + n] = a[ai:ai + n]
            assert hm.same_bytes(a, ai, b, 3, n)
            for k in range(n):
                b[3 + k] ^= 1
                assert not hm.same_bytes(a, ai, b, 3, n)
                b[3 + k] ^= 1




def test_every_destination_of_the_seed_client_is_kept():
    """The seed's client sends /hello to 8 addresses x 11 ports, each with its own Host value: the sets
    hold all 88 heads, so each is parsed once and then replayed on every connection."""
    memo = hm.new_memo()
    reqs = [request(0, False, (192 << 24) | (168 << 16) | (1 << 8) | (100 + a), 8000 + p)
            for a in range(8) for p in range(11)]
    for rnd in range(3):
        for req in reqs:
            ref, got = Server(), Server(memo=memo)
            ref.feed(req, req)
            got.feed(req, req)
            same_server(ref, got)
    assert (memo.var[hm.MV_HITS], memo.var[hm.MV_MISSES]) == (3 * 2 * 88 - 88, 88)
