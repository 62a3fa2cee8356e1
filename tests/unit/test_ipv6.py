"""IPv6 input (kernels.ipv6): the extension-header walk finds the upper layer exactly, refuses what a
host must not skip, and never reads past the payload or the frame, whatever the bytes.

Exact cases name each rule of RFC 8200 the walk follows; the fuzz compares it with a plain Python walk
over random chains (truncated ones included). Frame-level drops are in test_worker_input.
"""
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nperf.kernels import ipv6
from tests.http_messages import FUZZ
from tests.tcp_wire import PEER_MAC, SERVER_MAC, eth
from tests.tcp_wire import ipv6 as ipv6_packet

SRC, DST = "fd00::10", "fd00::100"
TCP, NO_NEXT = 6, 59
UPPER = 14 + 40


def walk(frame: bytes) -> tuple[int, int, int]:
    a = np.frombuffer(frame, np.uint8).copy()
    return tuple(int(v) for v in ipv6.upper_layer(a, len(frame)))


def ext(next_header: int, body: bytes) -> bytes:
    """An extension header: next header, length in 8-byte units past the first, body (padded by the caller)."""
    assert (2 + len(body)) % 8 == 0
    return bytes([next_header, (2 + len(body)) // 8 - 1]) + body


def frame(first: int, payload: bytes, **kw) -> bytes:
    return eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6_packet(SRC, DST, first, payload, **kw))


PADN4 = b"\x01\x02\0\0"
ROUTER_ALERT = b"\x05\x02\0\0"           # type 5: action bits 00, skipped by a node that does not know it
JUMBO = b"\xc2\x04\0\0\0\0"              # type 0xC2: action bits 11, the packet is discarded


def test_no_extension_headers():
    assert walk(frame(TCP, b"x" * 30)) == (TCP, UPPER, 30)


def test_ethernet_padding_past_the_payload_is_not_upper_layer_data():
    assert walk(frame(TCP, b"x" * 2) + b"\0" * 10) == (TCP, UPPER, 2)


def test_a_chain_of_skippable_headers():
    hop_by_hop, dest_options, routing = ext(60, ROUTER_ALERT + b"\0\0"), ext(43, PADN4 + b"\0\0"), ext(TCP, b"\0" * 6)
    chain = hop_by_hop + dest_options + routing + b"x" * 7
    assert walk(frame(0, chain)) == (TCP, UPPER + 24, 7)


def test_pad1_options_fill_a_header():
    assert walk(frame(60, ext(TCP, b"\0" * 14) + b"x")) == (TCP, UPPER + 16, 1)


def test_an_option_unknown_with_skip_action_is_skipped_one_to_discard_refuses():
    assert walk(frame(60, ext(TCP, b"\x3e\x00" + PADN4))) == (TCP, UPPER + 8, 0)
    assert walk(frame(0, ext(TCP, JUMBO))) == (ipv6.WALK_REFUSED, 0, 0)
    assert walk(frame(60, ext(TCP, b"\x80\x00" + PADN4))) == (ipv6.WALK_REFUSED, 0, 0)


def test_routing_with_segments_left_is_refused():
    assert walk(frame(43, ext(TCP, b"\0\x01" + b"\0" * 4))) == (ipv6.WALK_REFUSED, 0, 0)


def test_fragment_header():
    assert walk(frame(44, ext(TCP, b"\0" * 6))) == (ipv6.WALK_FRAGMENT, 0, 0)
    assert walk(frame(60, ext(44, PADN4 + b"\0\0") + ext(TCP, b"\0" * 6))) == (ipv6.WALK_FRAGMENT, 0, 0)


def test_no_next_header_is_an_upper_layer_nperf_does_not_serve():
    assert walk(frame(NO_NEXT, b"")) == (NO_NEXT, UPPER, 0)


def test_malformed():
    bad = (ipv6.WALK_BAD, 0, 0)
    assert walk(frame(TCP, b"x" * 8)[:UPPER - 1]) == bad                      # shorter than the header
    assert walk(frame(TCP, b"x" * 8, version=4)) == bad
    assert walk(frame(TCP, b"x" * 8, payload_len=9)) == bad                   # payload past the frame
    assert walk(frame(0, b"\x06\x00" + PADN4)) == bad                         # header past the payload
    assert walk(frame(60, ext(TCP, b"\x01\x05\0\0\0\0"))) == bad               # option past its header
    assert walk(frame(60, ext(0, PADN4 + b"\0\0") + ext(TCP, PADN4 + b"\0\0"))) == bad   # hop-by-hop not first


def reference(frame: bytes) -> tuple[int, int, int]:
    """RFC 8200's rules, walked in Python."""
    bad = (ipv6.WALK_BAD, 0, 0)
    if len(frame) < UPPER or frame[14] >> 4 != 6:
        return bad
    end = UPPER + struct.unpack_from("!H", frame, 18)[0]
    if end > len(frame):
        return bad
    nh, o = frame[20], UPPER
    while nh in (0, 43, 44, 60):
        if nh == 44:
            return ipv6.WALK_FRAGMENT, 0, 0
        if o + 8 > end or (nh == 0 and o != UPPER) or o + (frame[o + 1] + 1) * 8 > end:
            return bad
        size = (frame[o + 1] + 1) * 8
        if nh == 43 and frame[o + 3]:
            return ipv6.WALK_REFUSED, 0, 0
        if nh != 43:
            i = o + 2
            while i < o + size:
                if frame[i] == 0:
                    i += 1
                    continue
                if i + 2 > o + size or i + 2 + frame[i + 1] > o + size:
                    return bad
                if frame[i] >> 6:
                    return ipv6.WALK_REFUSED, 0, 0
                i += 2 + frame[i + 1]
        nh, o = frame[o], o + size
    return nh, o, end - o


OPTION = st.one_of(st.just(b"\0"), st.just(PADN4), st.just(ROUTER_ALERT), st.just(JUMBO),
                   st.binary(min_size=1, max_size=6))
HEADER = st.tuples(st.sampled_from([0, 43, 44, 60, 60, 43]), st.lists(OPTION, max_size=4),
                   st.integers(0, 2))


@FUZZ
@given(st.lists(HEADER, max_size=4), st.sampled_from([TCP, 17, 58, NO_NEXT]), st.binary(max_size=20),
       st.integers(-12, 12), st.integers(0, 12))
def test_walk_equals_rfc_8200_on_random_chains(headers, upper, data, length_error, cut):
    chain, first = b"", upper
    for kind, options, segments_left in reversed(headers):
        body = (b"\0" + bytes([segments_left]) + b"\0" * 4) if kind in (43, 44) else b"".join(options)
        body += b"\0" * (-(2 + len(body)) % 8)
        chain = ext(first, body) + chain
        first = kind
    chain += data
    f = frame(first, chain, payload_len=max(len(chain) + length_error, 0))
    f = f[:max(len(f) - cut, 0)]
    got = walk(f)
    assert got == reference(f)
    if got[0] >= 0:
        assert UPPER <= got[1] and got[1] + got[2] <= len(f)
