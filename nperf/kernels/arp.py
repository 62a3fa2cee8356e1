"""ARP for a worker's own IPv4 addresses, and ICMP echo.

Requests for an owned address are answered in the request's own mbuf; the
sender is learnt (nperf.kernels.neighbours holds what a client resolves).
At start a worker announces each owned address once (gratuitous ARP).
"""
import numpy as np

from nperf.kernels import frame_out, mbuf, neighbours, net
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import (C_ARP_IN, C_ARP_REPLIES, C_ARP_REQUESTS, C_DROP_BAD_ARP, C_DROP_BAD_ICMP,
                                 C_DROP_NOT_OURS, C_DROP_PROTOCOL, C_ICMP_ECHO, P_IP_COUNT, P_IP_FIRST, P_MAC,
                                 V_ARP_ANNOUNCED)

BROADCAST = 0xFFFFFFFFFFFF
ARP_FRAME = net.ETH_LEN + net.ARP_LEN        # 42: an ARP frame without padding


@inline
def owns(s, ip):
    return 0 <= ip - s.params[P_IP_FIRST] < s.params[P_IP_COUNT]


@inline
def _put_arp(s, b, op, dst_mac, sender_ip, target_mac, target_ip):
    frame_out.put_eth(s, b, dst_mac, net.ETH_ARP)
    a = net.ETH_LEN
    net.put16(b, a + net.ARP_HTYPE, 1)
    net.put16(b, a + net.ARP_PTYPE, net.ETH_IPV4)
    b[a + net.ARP_HLEN] = 6
    b[a + net.ARP_PLEN] = 4
    net.put16(b, a + net.ARP_OP, op)
    net.put_mac(b, a + net.ARP_SHA, s.params[P_MAC])
    net.put32(b, a + net.ARP_SPA, sender_ip)
    net.put_mac(b, a + net.ARP_THA, target_mac)
    net.put32(b, a + net.ARP_TPA, target_ip)


@kernel
def arp_input(s, b, n, m):
    """Handle an ARP frame; True if mbuf m was reused for the reply."""
    a = net.ETH_LEN
    if n < ARP_FRAME or net.get16(b, a + net.ARP_HTYPE) != 1 or net.get16(b, a + net.ARP_PTYPE) != net.ETH_IPV4 \
            or b[a + net.ARP_HLEN] != 6 or b[a + net.ARP_PLEN] != 4:
        s.counters[C_DROP_BAD_ARP] += 1
        return False
    op = net.get16(b, a + net.ARP_OP)
    sha = net.get_mac(b, a + net.ARP_SHA)
    spa = net.get32(b, a + net.ARP_SPA)
    tpa = net.get32(b, a + net.ARP_TPA)
    if not owns(s, tpa):
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    s.counters[C_ARP_IN] += 1           # counted once: arp_in or a drop, as every received frame
    neighbours.learn(s.neighbours, spa, sha)
    if op != net.ARP_REQUEST or not frame_out.can_reuse(s):
        return False
    _put_arp(s, b, net.ARP_REPLY, sha, tpa, sha, spa)
    s.counters[C_ARP_REPLIES] += 1
    frame_out.send(s, m, ARP_FRAME)
    return True


@kernel
def arp_request(s, ip):
    """Ask who has `ip` (client_sched resolves through nperf.kernels.neighbours); False if no
    frame was free."""
    m = frame_out.take_mbuf(s)
    if m < 0:
        return False
    _put_arp(s, mbuf.buffer_view(m), net.ARP_REQUEST, BROADCAST, s.params[P_IP_FIRST], 0, ip)
    frame_out.send(s, m, ARP_FRAME)
    s.counters[C_ARP_REQUESTS] += 1
    return True


@kernel
def arp_announce(s):
    """Gratuitous ARP for owned addresses not yet announced; True when all are."""
    while s.var[V_ARP_ANNOUNCED] < s.params[P_IP_COUNT]:
        m = frame_out.take_mbuf(s)
        if m < 0:
            return False
        ip = s.params[P_IP_FIRST] + s.var[V_ARP_ANNOUNCED]
        _put_arp(s, mbuf.buffer_view(m), net.ARP_REQUEST, BROADCAST, ip, 0, ip)
        frame_out.send(s, m, ARP_FRAME)
        s.counters[C_ARP_REQUESTS] += 1
        s.var[V_ARP_ANNOUNCED] += 1
    return True


@kernel
def icmp_echo(s, b, n, ihl, ip_len, m):
    """Answer an echo request in place; True if m was reused."""
    o = net.ETH_LEN + ihl
    icmp_len = ip_len - ihl
    if ihl != net.IP_LEN or icmp_len < 8 or net.fold(net.sum16(b, o, icmp_len, np.int64(0))) != 0:
        s.counters[C_DROP_BAD_ICMP] += 1
        return False
    if b[o + net.ICMP_TYPE] != net.ICMP_ECHO_REQUEST:         # only echo requests are answered
        s.counters[C_DROP_PROTOCOL] += 1
        return False
    if not frame_out.can_reuse(s):
        return False
    src = net.get32(b, net.ETH_LEN + net.IP_SRC)
    dst = net.get32(b, net.ETH_LEN + net.IP_DST)
    peer = net.get_mac(b, net.ETH_SRC)
    frame_out.put_eth(s, b, peer, net.ETH_IPV4)
    b[o + net.ICMP_TYPE] = net.ICMP_ECHO_REPLY
    net.put16(b, o + net.ICMP_CHECKSUM, 0)
    net.put16(b, o + net.ICMP_CHECKSUM, net.fold(net.sum16(b, o, icmp_len, np.int64(0))))
    frame_out.put_ipv4(s, b, dst, src, net.PROTO_ICMP, icmp_len)
    s.counters[C_ICMP_ECHO] += 1
    frame_out.send(s, m, net.ETH_LEN + net.IP_LEN + icmp_len)
    return True
