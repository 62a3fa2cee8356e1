"""A worker's frame input (kernels.worker_loop): every malformed or foreign frame is dropped and
counted by its cause, and nothing is sent; valid padding and IP options are accepted.

Driven frame by frame through tests/tcp_wire.py, like test_tcp. Like every unit test, they run once
more with bounds checks (test_with_bounds_checks).
"""
import socket
import struct

import pytest

from nperf.kernels import mbuf
from tests.tcp_wire import (ACK, OTHER_MAC, PEER_IP, PEER_MAC, SERVER_IP, SERVER_MAC, SYN, Wire, changed, checksum,
                            eth, ipv4, ipv6, opt_mss, tcp_frame, tcp_segment)


def _syn_ip(**ip) -> bytes:
    seg = tcp_segment(PEER_IP, SERVER_IP, 40000, 8000, 1, 0, SYN, 65535)
    return ipv4(PEER_IP, SERVER_IP, 6, seg, **ip)


def _bad_frames():
    good = tcp_frame(PEER_IP, SERVER_IP, 40000, 8000, 1, 0, SYN, 65535)
    bad_tcp = bytearray(good)
    bad_tcp[50] ^= 0xFF                                  # TCP checksum byte
    short_tcp = ipv4(PEER_IP, SERVER_IP, 6, b"\0" * 12)
    seg = tcp_segment(PEER_IP, SERVER_IP, 40000, 8000, 1, 0, SYN, 65535)
    doff_16 = ipv4(PEER_IP, SERVER_IP, 6, seg[:12] + b"\x40" + seg[13:])        # (checked before the checksum)
    doff_60 = ipv4(PEER_IP, SERVER_IP, 6, seg[:12] + b"\xf0" + seg[13:])
    return [
        ("bad_ip_checksum", eth(SERVER_MAC, PEER_MAC, 0x0800, _syn_ip(bad_checksum=True)), "drop_ip_checksum"),
        ("bad_tcp_checksum", bytes(bad_tcp), "drop_tcp_checksum"),
        ("more_fragments", eth(SERVER_MAC, PEER_MAC, 0x0800, _syn_ip(frag=0x2000)), "drop_fragment"),
        ("fragment_offset", eth(SERVER_MAC, PEER_MAC, 0x0800, _syn_ip(frag=0x0010)), "drop_fragment"),
        ("other_mac", eth(OTHER_MAC, PEER_MAC, 0x0800, _syn_ip()), "drop_not_ours"),
        ("ip_not_owned", tcp_frame(PEER_IP, "192.168.1.108", 40000, 8000, 1, 0, SYN, 65535), "drop_not_ours"),
        ("runt_13", good[:13], "drop_runt"),
        ("ip_header_cut", good[:30], "drop_bad_ip"),
        ("ip_length_beyond_frame", good[:-1], "drop_bad_ip"),
        ("ihl_4", eth(SERVER_MAC, PEER_MAC, 0x0800, b"\x44" + _syn_ip()[1:]), "drop_bad_ip"),
        ("ipv6_hop_by_hop_past_payload", eth(SERVER_MAC, PEER_MAC, 0x86DD, b"\x60" + b"\0" * 59), "drop_bad_ip"),
        ("ipv6_tcp_to_an_address_not_owned", eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6("fd00::10", "fd00::100", 6, seg)),
         "drop_not_ours"),
        ("ipv6_fragment", eth(SERVER_MAC, PEER_MAC, 0x86DD, ipv6("fd00::10", "fd00::100", 44, b"\x06" + b"\0" * 7
                                                                    + seg)), "drop_fragment"),
        ("vlan", eth(SERVER_MAC, PEER_MAC, 0x8100, b"\0\x07\x08\x00" + _syn_ip()), "drop_protocol"),
        ("udp", eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 17, b"\0" * 12)), "drop_protocol"),
        ("gre", eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 47, b"\0" * 12)), "drop_protocol"),
        ("udp_bad_checksum", eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 17, struct.pack(
            "!HHHH", 40000, 8000, 12, 0x1234) + b"abcd")), "drop_udp_checksum"),
        ("tcp_shorter_than_header", eth(SERVER_MAC, PEER_MAC, 0x0800, short_tcp), "drop_bad_tcp"),
        ("tcp_data_offset_16", eth(SERVER_MAC, PEER_MAC, 0x0800, doff_16), "drop_bad_tcp"),
        ("tcp_data_offset_beyond_segment", eth(SERVER_MAC, PEER_MAC, 0x0800, doff_60), "drop_bad_tcp"),
    ]


@pytest.mark.parametrize("name,frame,counter", _bad_frames(), ids=[f[0] for f in _bad_frames()])
def test_bad_frames_are_counted_and_nothing_is_sent(name, frame, counter):
    w = Wire()
    before = w.counters()
    assert w.step([frame]) == [] and w.frames == []
    assert changed(w, before) == {"rx_frames": 1, counter: 1}
    assert w.live() == 0


def test_frame_with_ethernet_padding_and_ip_options_is_accepted():
    seg = tcp_segment(PEER_IP, SERVER_IP, 40000, 8000, 1, 0, SYN, 65535, options=opt_mss(1460))
    frame = eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 6, seg, options=b"\x01\x01\x01\x00"))
    w = Wire()
    out = w.step([frame + b"\0" * 20])
    assert [(g.flags, g.ack) for g in out] == [(SYN | ACK, 2)]


RX_GOOD = mbuf.RX_IP_GOOD | mbuf.RX_L4_GOOD


def _udp_datagram() -> bytes:
    """To a listening port, with its checksum (one of 0 would mean none, whatever the port says)."""
    d = struct.pack("!HHHH", 40000, 8000, 12, 0) + b"abcd"
    csum = checksum(socket.inet_aton(PEER_IP) + socket.inet_aton(SERVER_IP) + struct.pack("!BBH", 0, 17, len(d)) + d)
    assert csum != 0
    return d[:6] + struct.pack("!H", csum) + d[8:]


def _broken(frame: bytes, *at: int) -> bytes:
    b = bytearray(frame)
    for i in at:
        b[i] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("trusted,flags,broken,expect", [
    # the port verified both checksums: a frame whose checksum bytes are wrong is taken as it said
    (True, RX_GOOD, (24, 50), {"rx_csum_by_port": 1, "tcp_segs_in": 1, "tcp_syns_in": 1}),
    # both bits of a pair (NONE: the bytes are not a valid checksum, the data's integrity was verified)
    (True, RX_GOOD | mbuf.RX_L4_BAD, (50,), {"rx_csum_by_port": 1, "tcp_segs_in": 1, "tcp_syns_in": 1}),
    (True, mbuf.RX_IP_BAD | mbuf.RX_L4_GOOD, (), {"drop_ip_checksum": 1}),
    (True, mbuf.RX_IP_GOOD | mbuf.RX_L4_BAD, (), {"rx_csum_by_port": 1, "drop_tcp_checksum": 1}),
    # the port did not check (a segment it does not parse): summed here
    (True, 0, (50,), {"drop_tcp_checksum": 1}),
    (True, 0, (), {"tcp_segs_in": 1, "tcp_syns_in": 1}),
    # a port that does not verify: its flags are whatever the buffer's last user left, never read
    (False, RX_GOOD, (50,), {"drop_tcp_checksum": 1}),
    (False, mbuf.RX_IP_BAD | mbuf.RX_L4_BAD, (), {"tcp_segs_in": 1, "tcp_syns_in": 1}),
], ids=["good", "l4_none", "ip_bad", "l4_bad", "unchecked_bad", "unchecked_good", "untrusted_good",
        "untrusted_bad"])
def test_a_port_that_verifies_checksums_is_believed(trusted, flags, broken, expect):
    """A port set up with RX checksum offload (a TAP port, a NIC) says in each mbuf what it found;
    the stack then does not sum again (`rx_csum_by_port`), and drops what the port found bad."""
    w = Wire(port_checksums=trusted)
    w.rx_flags = flags
    before = w.counters()
    out = w.step([_broken(tcp_frame(PEER_IP, SERVER_IP, 40000, 8000, 1, 0, SYN, 65535), *broken)])
    answered = "tcp_syns_in" in expect
    assert [g.flags for g in out] == ([SYN | ACK] if answered else [])
    assert changed(w, before) == {"rx_frames": 1, **expect, **({"tcp_segs_out": 1} if answered else {})}


@pytest.mark.parametrize("flags,expect", [
    (mbuf.RX_IP_GOOD | mbuf.RX_L4_GOOD, {"rx_csum_by_port": 1, "udp_in": 1, "udp_bytes_in": 4}),
    (mbuf.RX_IP_GOOD | mbuf.RX_L4_BAD, {"rx_csum_by_port": 1, "drop_udp_checksum": 1}),
], ids=["good", "bad"])
def test_a_udp_datagram_the_port_checked(flags, expect):
    w = Wire(port_checksums=True)
    w.rx_flags = flags
    before = w.counters()
    assert w.step([eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 17, _udp_datagram()))]) == []
    assert changed(w, before) == {"rx_frames": 1, **expect}
