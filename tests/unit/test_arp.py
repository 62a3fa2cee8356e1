"""ARP for a worker's own addresses and ICMP echo (kernels.arp): exact replies, and no answer
(counted) for what is not ours or is malformed.

Driven frame by frame through tests/tcp_wire.py, like test_tcp. Like every unit test, they run once
more with bounds checks (test_with_bounds_checks).
"""
import struct

from nperf.kernels.stack import V_IP_ID
from tests.tcp_wire import (PEER_IP, PEER_MAC, SERVER_IP, SERVER_MAC, Wire, arp_frame, changed, eth, icmp_echo,
                            ipv4)


def test_arp_request_for_an_owned_address_gets_the_exact_reply():
    w = Wire()
    before = w.counters()
    req = arp_frame(1, PEER_MAC, PEER_IP, b"\0" * 6, "192.168.1.103") + b"\0" * 18   # padded to 60
    assert w.step([req]) == []
    reply = eth(PEER_MAC, SERVER_MAC, 0x0806, struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, SERVER_MAC, bytes([192, 168, 1, 103]), PEER_MAC,
        bytes([192, 168, 1, 10])))
    assert w.frames == [reply]
    assert changed(w, before) == {"rx_frames": 1, "arp_in": 1, "arp_replies": 1}


def test_arp_for_other_addresses_and_arp_replies_get_no_answer():
    w = Wire()
    before = w.counters()
    w.step([arp_frame(1, PEER_MAC, PEER_IP, b"\0" * 6, "192.168.1.99")])
    assert w.frames == []
    w.step([arp_frame(2, PEER_MAC, PEER_IP, SERVER_MAC, SERVER_IP, dst_mac=SERVER_MAC)])
    assert w.frames == []
    w.step([arp_frame(1, PEER_MAC, PEER_IP, b"\0" * 6, SERVER_IP)[:40]])   # cut short
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 3, "arp_in": 1, "drop_not_ours": 1, "drop_bad_arp": 1}


def test_icmp_echo_gets_the_exact_reply():
    w = Wire()
    data = bytes(range(56))
    req = eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, "192.168.1.101", 1, icmp_echo(0x1234, 7, data),
                                                  ip_id=99, ttl=17, frag=0))
    ip_id = (int(w.s.var[V_IP_ID]) + 1) & 0xFFFF
    before = w.counters()
    assert w.step([req]) == []
    expected = eth(PEER_MAC, SERVER_MAC, 0x0800, ipv4("192.168.1.101", PEER_IP, 1,
                                                      icmp_echo(0x1234, 7, data, typ=0), ip_id=ip_id))
    assert w.frames == [expected]
    assert changed(w, before) == {"rx_frames": 1, "icmp_echo": 1}
    before = w.counters()
    reply = eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 1, icmp_echo(1, 1, b"", typ=0)))
    bad = bytearray(req)
    bad[-1] ^= 1                                         # ICMP checksum no longer matches
    w.step([reply, bytes(bad)])
    assert w.frames == []
    assert changed(w, before) == {"rx_frames": 2, "drop_protocol": 1, "drop_bad_icmp": 1}
