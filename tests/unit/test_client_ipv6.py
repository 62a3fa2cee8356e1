"""An IPv6 client frame by frame (kernels.client_sched, kernels.ndp, kernels.neighbours): it solicits
its destination's MAC with the exact neighbour solicitation, takes the advertisement, opens over
IPv6 and sends a request whose Host is the bracketed address; a destination that never answers
fails after its tries, counted once. Driven through tests/tcp_wire.py like test_client_tcp."""
import ipaddress
import json
import struct

import pytest

from nperf.kernels import client_app as ca
from nperf.kernels import lookup
from nperf.kernels.jit import kernel
from nperf.kernels.net import ipv6_words
from nperf.kernels.stack import P_ARP_TRIES, P_MSS
from nperf.kernels.tcp_table import tuple_keys
from tests.http_peer import SERVER_MAC, response, set_schedule
from tests.tcp_wire import (ACK, CLIENT_MAC, M32, PSH, SEED_CLIENT, SYN, Wire, arp_frame, changed, checksum, eth,
                            ipv6, opt_mss, pseudo_header, tcp_frame)
from tests.unit.test_client_app import PHASES

CLIENT4, SERVER4 = "192.168.1.10", "192.168.1.100"
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


def test_a_mixed_client_resolves_and_opens_to_both_families_and_counts_each(tmp_path):
    """IPv4 ranges with network.l3.ipv6 beside them: the prepare phase asks ARP for the IPv4
    destination and solicits the IPv6 one; connections alternate between them, each from a source of
    its family, and the IPv6 share of each count is kept apart."""
    cfg = json.load(open(SEED_CLIENT))
    cfg["network"]["l3"] = {"src_ip_start": CLIENT4, "src_ip_end": CLIENT4, "dst_ip_start": SERVER4,
                            "dst_ip_end": SERVER4, "ipv6": {"src_ip_start": CLIENT6, "src_ip_end": CLIENT6,
                                                            "dst_ip_start": SERVER6, "dst_ip_end": SERVER6}}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(cfg))
    w = Wire(role="client", config=path)
    set_schedule(w.s, PHASES, type=ca.O_HTTP_REQUESTS, value=2, rpc=1)
    w.step()
    assert w.frames == [arp_frame(1, CLIENT_MAC, CLIENT4, b"\0" * 6, SERVER4), SOLICITATION]
    w.step([arp_frame(2, SERVER_MAC, SERVER4, CLIENT_MAC, CLIENT4, dst_mac=CLIENT_MAC), ADVERT])
    syns = []
    for _ in range(200):
        syns += [g for g in w.step(dt=1000) if g.flags & SYN]
        if len(syns) >= 2:
            break
    assert [(g.src_ip, g.dst_ip) for g in syns[:2]] == [(CLIENT4, SERVER4), (CLIENT6, SERVER6)]
    for syn in syns[:2]:
        w.step([tcp_frame(syn.dst_ip, syn.src_ip, syn.dport, syn.sport, 7, syn.seq + 1, SYN | ACK, 65535,
                          options=opt_mss(1400), src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)])
    reqs = {(g.src_ip, g.seq): g for g in w.log if g.payload}.values()
    hosts = sorted(g.payload.split(b"\r\n")[1] for g in reqs)
    assert hosts == [b"Host: 192.168.1.100:" + str(syns[0].dport).encode(),
                     b"Host: [fd00:77:0:0:0:0:0:10]:" + str(syns[1].dport).encode()]
    assert client_counter(w, "connections_opened") == 2 and client_counter(w, "ipv6_connections_opened") == 1


@kernel
def _pair_index(s, k2):
    return lookup.pair_index(s, k2)


def test_a_mixed_clients_pairs_index_every_source_pair_of_both_families_once(tmp_path):
    """The direct index holds IPv4 sources, then IPv6 ones: every (address, port) of either family has
    its own row, and an address outside both ranges has none."""
    cfg = json.load(open(SEED_CLIENT))
    cfg["network"]["l3"] = {"src_ip_start": "192.168.1.10", "src_ip_end": "192.168.1.12",
                            "dst_ip_start": SERVER4, "dst_ip_end": SERVER4,
                            "ipv6": {"src_ip_start": "fd00:77::ffff:fffe", "src_ip_end": "fd00:77::ffff:ffff",
                                     "dst_ip_start": SERVER6, "dst_ip_end": SERVER6}}
    cfg["network"]["l4"].update(src_port_start=1000, src_port_end=1009)
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(cfg))
    s = Wire(role="client", config=path).s
    rows = []
    for address in ["192.168.1.10", "192.168.1.11", "192.168.1.12", "fd00:77::ffff:fffe", "fd00:77::ffff:ffff"]:
        a = ipaddress.ip_address(address)
        hi, lo = ipv6_words(a) if a.version == 6 else (0, int(a))
        rows += [_pair_index(s, tuple_keys(1, 80, lo, port, hi, hi)[1]) for port in range(1000, 1010)]
    assert sorted(rows) == list(range(50)) and len(s.pairs) == 50
    for address, port in (("192.168.1.13", 1000), ("fd00:77::1:0:0", 1000), ("192.168.1.10", 1010)):
        a = ipaddress.ip_address(address)
        hi, lo = ipv6_words(a) if a.version == 6 else (0, int(a))
        assert _pair_index(s, tuple_keys(1, 80, lo, port, hi, hi)[1]) == -1, address
