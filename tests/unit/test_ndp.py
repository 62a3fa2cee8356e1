"""IPv6 for a server's own addresses (kernels.ndp, kernels.ipv6, TCP over IPv6): exact neighbour
advertisements, echo replies and segments, and a counted drop for what is not ours or is malformed.

Driven frame by frame through tests/tcp_wire.py, like test_arp and test_tcp.
"""
import ipaddress
import json
import struct

import pytest

from nperf.kernels import ndp
from tests.unit.test_tcp import HELLO
from tests.tcp_wire import (ACK, FIN, PEER_MAC, PSH, RST, SEED_SERVER, SERVER_MAC, SYN, Peer, Wire, changed,
                            checksum, eth, ipv6, pseudo_header)

SERVER6 = "fd00:77::10"          # owned: fd00:77::10 and ::11
PEER6 = "fd00:77::1"
ALL_NODES = "ff02::1"
ALL_NODES_MAC = bytes.fromhex("333300000001")


def solicited(addr: str) -> str:
    return str(ipaddress.IPv6Address("ff02::1:ff00:0") + (int(ipaddress.IPv6Address(addr)) & 0xFFFFFF))


def solicited_mac(addr: str) -> bytes:
    return b"\x33\x33" + ipaddress.IPv6Address(solicited(addr)).packed[-4:]


@pytest.fixture
def w(tmp_path):
    cfg = json.load(open(SEED_SERVER))
    cfg["network"]["l3"].update(dst_ip_start=SERVER6, dst_ip_end="fd00:77::11", src_ip_start=PEER6,
                                src_ip_end=PEER6)
    path = tmp_path / "s6.json"
    path.write_text(json.dumps(cfg))
    return Wire(config=path)


def icmp6(src: str, dst: str, typ: int, body: bytes, code: int = 0) -> bytes:
    msg = struct.pack("!BBH", typ, code, 0) + body
    csum = checksum(pseudo_header(src, dst, 58, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


def ns_frame(src: str, dst: str, target: str, *, sender_mac: bytes | None = PEER_MAC, hop_limit: int = 255,
             dst_mac: bytes | None = None, opt: bytes | None = None) -> bytes:
    if opt is None:
        opt = b"\x01\x01" + sender_mac if sender_mac else b""
    msg = icmp6(src, dst, 135, b"\0" * 4 + ipaddress.IPv6Address(target).packed + opt)
    return eth(dst_mac or solicited_mac(target), PEER_MAC, 0x86DD, ipv6(src, dst, 58, msg, hop_limit=hop_limit))


def na_frame(dst_mac: bytes, dst: str, target: str, flags: int) -> bytes:
    """The advertisement the server must send for its `target`."""
    msg = icmp6(target, dst, 136, struct.pack("!I", flags << 24) + ipaddress.IPv6Address(target).packed
                + b"\x02\x01" + SERVER_MAC)
    return eth(dst_mac, SERVER_MAC, 0x86DD, ipv6(target, dst, 58, msg, hop_limit=255))


def test_solicitation_for_an_owned_address_gets_the_exact_advertisement(w):
    before = w.counters()
    w.step([ns_frame(PEER6, solicited("fd00:77::11"), "fd00:77::11")])
    assert w.frames == [na_frame(PEER_MAC, PEER6, "fd00:77::11", 0x60)]      # solicited, override
    assert changed(w, before) == {"rx_frames": 1, "nd_in": 1, "nd_adverts": 1}
    before = w.counters()                                # a unicast probe without the sender's MAC option
    w.step([ns_frame(PEER6, SERVER6, SERVER6, sender_mac=None, dst_mac=SERVER_MAC)])
    assert w.frames == [na_frame(PEER_MAC, PEER6, SERVER6, 0x60)]
    assert changed(w, before) == {"rx_frames": 1, "nd_in": 1, "nd_adverts": 1}


def test_duplicate_address_detection_is_answered_to_all_nodes(w):
    before = w.counters()
    w.step([ns_frame("::", solicited(SERVER6), SERVER6, sender_mac=None)])
    assert w.frames == [na_frame(ALL_NODES_MAC, ALL_NODES, SERVER6, 0x20)]   # override, not solicited
    assert changed(w, before) == {"rx_frames": 1, "nd_in": 1, "nd_adverts": 1}


def test_solicitations_not_ours_or_malformed_are_counted_drops(w):
    before = w.counters()
    bad_sum = bytearray(ns_frame(PEER6, solicited(SERVER6), SERVER6))
    bad_sum[-1] ^= 1
    zero_option = ns_frame(PEER6, solicited(SERVER6), SERVER6, opt=b"\x01\x00" + PEER_MAC)   # RFC 4861 7.1.1
    w.step([ns_frame(PEER6, solicited("fd00:77::12"), "fd00:77::12"),          # someone else's address
            ns_frame(PEER6, solicited(SERVER6), SERVER6, hop_limit=64),        # from beyond the link
            ns_frame("::", SERVER6, SERVER6, sender_mac=None, dst_mac=SERVER_MAC),  # DAD must go to the group
            bytes(bad_sum), zero_option])
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 5, "drop_not_ours": 1, "drop_bad_nd": 3, "drop_bad_icmp": 1}


def test_echo_request_gets_the_exact_reply_also_after_an_extension_header(w):
    body = struct.pack("!HH", 0x1234, 7) + bytes(range(56))
    req = icmp6(PEER6, SERVER6, 128, body)
    reply = eth(PEER_MAC, SERVER_MAC, 0x86DD, ipv6(SERVER6, PEER6, 58, icmp6(SERVER6, PEER6, 129, body)))
    before = w.counters()
    w.step([eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6(PEER6, SERVER6, 58, req))])
    assert w.frames == [reply]
    dest_options = bytes([58, 0, 1, 4, 0, 0, 0, 0])     # PadN over 6 bytes: skipped
    w.step([eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6(PEER6, SERVER6, 60, dest_options + req))])
    assert w.frames == [reply]
    assert changed(w, before) == {"rx_frames": 2, "icmp_echo": 2}
    before = w.counters()
    w.step([eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6(PEER6, "fd00:77::99", 58, icmp6(PEER6, "fd00:77::99", 128, body))),
            eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6(PEER6, SERVER6, 58, icmp6(PEER6, SERVER6, 129, body)))])
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 2, "drop_not_ours": 1, "drop_protocol": 1}


def test_every_owned_address_is_announced_once(w):
    w.step()                                             # a turn fills the stash of free mbufs
    assert ndp.nd_announce(w.s)
    w.step()                                             # and the next one sends what is queued
    assert w.frames == [na_frame(ALL_NODES_MAC, ALL_NODES, a, 0x20) for a in (SERVER6, "fd00:77::11")]
    assert ndp.nd_announce(w.s)
    w.step()
    assert w.frames == [] and w.counter("nd_adverts") == 2


def test_http_over_ipv6_exact_segments_from_handshake_to_close(w):
    p = Peer(w, ip=PEER6, server_ip=SERVER6, mss=1440)
    sa = p.syn()[0]
    assert sa.flags == SYN | ACK and (sa.src_ip, sa.dst_ip, sa.dst_mac) == (SERVER6, PEER6, PEER_MAC)
    assert sa.options["mss"] == 2000 - 60                # the seed's mtu less IPv6 and TCP headers
    assert p.ack() == [] and p.state == "ESTABLISHED"
    out = p.send(Peer.request("/hello"))
    assert [(g.flags, g.payload) for g in out] == [(PSH | ACK, HELLO)] and p.data == HELLO
    assert w.entry(PEER6, 40000, SERVER6, 8000) == p.slot
    assert [g.flags for g in p.fin()] == [FIN | ACK] and p.ack() == [] and p.state == "CLOSED"
    before = w.counters()
    w.step([Peer(w, ip=PEER6, port=40001, server_ip=SERVER6).frame(ACK, seq=5, ack=9)])
    assert [(g.flags, g.seq, g.src_ip, g.dst_ip) for g in w.out] == [(RST, 9, SERVER6, PEER6)]
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_no_listener": 1, "tcp_resets_out": 1}
    before = w.counters()
    w.step([Peer(w, ip=PEER6, port=40002, server_ip="fd00:77::12").frame(SYN),       # not an owned address
            Peer(w, ip="::1", port=40003, server_ip=SERVER6).frame(SYN)])            # ::/64 sends nothing
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 2, "drop_not_ours": 1, "drop_bad_ip": 1}


def udp6(src: str, dst: str, sport: int, dport: int, data: bytes, *, csum: int | None = None) -> bytes:
    d = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    value = checksum(pseudo_header(src, dst, 17, len(d)) + d) if csum is None else csum
    return eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6(src, dst, 17, d[:6] + struct.pack("!H", value) + d[8:]))


def test_udp_over_ipv6_is_counted_and_needs_its_checksum(w):
    before = w.counters()
    w.step([udp6(PEER6, SERVER6, 5000, 8001, b"x" * 100), udp6(PEER6, "fd00:77::11", 5000, 8000, b"y" * 10)])
    assert changed(w, before) == {"rx_frames": 2, "udp_in": 2, "udp_bytes_in": 110}
    before = w.counters()
    w.step([udp6(PEER6, SERVER6, 5000, 8000, b"z", csum=0),            # no checksum: allowed over IPv4 only
            udp6(PEER6, SERVER6, 5000, 8000, b"z", csum=0x1234),
            udp6(PEER6, SERVER6, 5000, 9000, b"z")])                   # not a listening port
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 3, "drop_udp_checksum": 2, "drop_protocol": 1}
