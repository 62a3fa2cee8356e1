"""An IPv6 client frame by frame (kernels.client_sched, kernels.ndp, kernels.neighbours): it solicits
its destination's MAC with the exact neighbour solicitation, takes the advertisement, opens over
IPv6 and sends a request whose Host is the bracketed address; a destination that never answers
fails after its tries, counted once. Driven through tests/tcp_wire.py like test_client_tcp."""
import ipaddress
import json
import struct

import pytest

from nperf.kernels import client_app as ca
from nperf.kernels.stack import P_ARP_TRIES, P_MSS
from tests.http_peer import SERVER_MAC, response, set_schedule
from tests.tcp_wire import (ACK, CLIENT_MAC, M32, PSH, SEED_CLIENT, SYN, Wire, changed, checksum, eth, ipv6,
                            opt_mss, pseudo_header, tcp_frame)
from tests.unit.test_client_app import PHASES

CLIENT6 = "fd00:77::1"
SERVER6 = "fd00:77::10"
SOLICITED = "ff02::1:ff00:10"
SOLICITED_MAC = bytes.fromhex("3333ff000010")
SECOND = 1_000_000


@pytest.fixture
def w(tmp_path):
    cfg = json.load(open(SEED_CLIENT))
    cfg["network"]["l3"].update(src_ip_start=CLIENT6, src_ip_end=CLIENT6, dst_ip_start=SERVER6, dst_ip_end=SERVER6)
    path = tmp_path / "c6.json"
    path.write_text(json.dumps(cfg))
    wire = Wire(role="client", config=path)
    set_schedule(wire.s, PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    return wire


def nd(src: str, dst: str, typ: int, flags: int, target: str, option: int, mac: bytes) -> bytes:
    """An ICMPv6 neighbour solicitation (135) or advertisement (136) with its one MAC option."""
    msg = struct.pack("!BBHI", typ, 0, 0, flags << 24) + ipaddress.IPv6Address(target).packed \
        + bytes([option, 1]) + mac
    csum = checksum(pseudo_header(src, dst, 58, len(msg)) + msg)
    return ipv6(src, dst, 58, msg[:2] + struct.pack("!H", csum) + msg[4:], hop_limit=255)


SOLICITATION = eth(SOLICITED_MAC, CLIENT_MAC, 0x86DD, nd(CLIENT6, SOLICITED, 135, 0, SERVER6, 1, CLIENT_MAC))
ADVERT = eth(CLIENT_MAC, SERVER_MAC, 0x86DD, nd(SERVER6, CLIENT6, 136, 0x60, SERVER6, 2, SERVER_MAC))


def client_counter(w, name: str) -> int:
    return int(w.s.counters[len(w.s.counters) - ca.N_CLIENT_COUNTERS + ca.CLIENT_COUNTER_NAMES.index(name)])


def test_the_client_solicits_its_destination_then_opens_and_asks_over_ipv6(w):
    before = w.counters()
    w.step()
    assert w.frames == [SOLICITATION]                       # the prepare phase resolves every destination
    assert changed(w, before) == {"nd_solicits": 1}
    before = w.counters()
    w.step([ADVERT])
    assert changed(w, before) == {"rx_frames": 1, "nd_in": 1}
    syns = []
    for _ in range(200):
        syns += [g for g in w.step(dt=1000) if g.flags & SYN]
        if syns:
            break
    syn = syns[0]
    assert (syn.src_ip, syn.dst_ip, syn.dport, syn.dst_mac, syn.flags) == (CLIENT6, SERVER6, 8000, SERVER_MAC, SYN)
    mtu = json.load(open(SEED_CLIENT))["interface"]["mtu"]
    assert syn.options["mss"] == int(w.s.params[P_MSS]) == mtu - 60       # less 60 over IPv6
    out = w.step([tcp_frame(SERVER6, CLIENT6, 8000, syn.sport, 7, syn.seq + 1, SYN | ACK, 65535,
                            options=opt_mss(1440), src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)])
    (req,) = [g for g in out if g.payload]
    assert req.flags == PSH | ACK and req.ack == 8 and (req.src_ip, req.dst_ip) == (CLIENT6, SERVER6)
    assert req.payload.startswith(b"GET /hello HTTP/1.1\r\nHost: [fd00:77:0:0:0:0:0:10]:8000\r\n")
    w.step([tcp_frame(SERVER6, CLIENT6, 8000, syn.sport, 8, (req.seq + len(req.payload)) & M32, PSH | ACK, 65535,
                      response(), src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)])
    assert client_counter(w, "responses_ok") == 1 and client_counter(w, "arp_failed") == 0


def test_a_destination_that_never_advertises_fails_after_its_tries_counted_once(w):
    set_schedule(w.s, [10, 11, 12, 13, 14])          # a prepare phase longer than the tries
    w.step()
    sent = list(w.frames)
    for _ in range(8):
        w.step(dt=SECOND)
        sent += w.frames
    assert sent == [SOLICITATION] * int(w.s.params[P_ARP_TRIES]) and int(w.s.params[P_ARP_TRIES]) == 5
    assert client_counter(w, "arp_failed") == 1 and client_counter(w, "connections_opened") == 0


def test_udp_stream_datagrams_over_ipv6_are_exact(w):
    set_schedule(w.s, PHASES, type=ca.O_UDP_STREAM, value=1000, interval_ns=1_000_000)
    w.step()
    w.step([ADVERT])
    sent = []
    for _ in range(200):
        w.step(dt=1000)
        sent += [f for f in w.frames if f[12:14] == b"\x86\xdd" and f[20] == 17]
        if len(sent) >= 3:
            break
    cfg = json.load(open(SEED_CLIENT))
    payload = cfg["client_payload"]["data"].encode()
    sport = cfg["network"]["l4"]["src_port_start"]
    for k, frame in enumerate(sent[:3]):
        udp = struct.pack("!HHHH", sport + k, 8000 + k, 8 + len(payload), 0) + payload     # both rotate
        csum = checksum(pseudo_header(CLIENT6, SERVER6, 17, len(udp)) + udp)
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        assert frame == eth(SERVER_MAC, CLIENT_MAC, 0x86DD, ipv6(CLIENT6, SERVER6, 17, udp)), k
    assert client_counter(w, "udp_sent") >= 3
