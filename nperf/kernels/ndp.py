"""ICMPv6 for a worker's own IPv6 addresses: neighbour discovery (RFC 4861) and echo (RFC 4443).

A worker answers neighbour solicitations for the addresses it owns and
echo requests to them, each in the request's own mbuf, and announces every
owned address once at start (an unsolicited advertisement to all nodes, as
`arp.arp_announce` does for IPv4). An address is its (high, low) 64-bit
words (net.ipv6_words); the worker owns the high word P_IP6_HI with a low
word in [P_IP6_FIRST, P_IP6_LAST]. Every ND message must arrive with hop
limit 255, so that it cannot come from beyond the link, and is sent with
it. A server answers a connection's segments at the MAC they came from, so
it resolves no peer; a client solicits each destination (`solicit`), and
the advertisements, and the peers' own solicitations, update the
neighbour cache (nperf.kernels.neighbours) where it has asked.
"""
import numpy as np

from nperf.kernels import frame_out, mbuf, neighbours, net
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import (C_DROP_BAD_ICMP, C_DROP_BAD_ND, C_DROP_NOT_OURS, C_DROP_PROTOCOL, C_ICMP_ECHO,
                                 C_ND_ADVERTS, C_ND_IN, C_ND_SOLICITS, P_IP6_FIRST, P_IP6_HI, P_IP6_LAST, P_MAC,
                                 V_ND_ANNOUNCED)

LINK_LOCAL_MULTICAST_HI = net.signed64(0xFF02 << 48)     # ff02::/64: all nodes, solicited nodes
ALL_NODES_LO = 1                                        # ff02::1
SOLICITED_LO = 0x1FF000000                              # ff02::1:ffXX:XXXX, XX:XXXX the address's low 24 bits
MULTICAST_MAC = 0x333300000000          # an IPv6 multicast group's MAC: 33:33, then the group's low 32 bits
SOLICITED_MAC = 0x3333FF                # a solicited-node group's MAC, >> 24 (RFC 2464 7)
ND_LEN = net.ND_OPTIONS + 8             # a solicitation or advertisement with its one MAC option
ND_FRAME = net.ETH_LEN + net.IP6_LEN + ND_LEN
ECHO_MIN = 8                            # type, code, checksum, identifier, sequence number


@inline
def owns6(s, hi, lo):
    """Whether the worker owns the IPv6 address (hi, lo)."""
    return hi == s.params[P_IP6_HI] and hi != 0 and s.params[P_IP6_FIRST] <= lo <= s.params[P_IP6_LAST]


@inline
def solicited_mac(mac):
    """Whether a frame to `mac` may carry a solicitation to a solicited-node group (ours or not:
    its target says)."""
    return (mac >> 24) == SOLICITED_MAC


@inline
def solicited_group(hi, lo):
    """Whether (hi, lo) is a solicited-node multicast address (RFC 4291 2.7.1)."""
    return hi == LINK_LOCAL_MULTICAST_HI and (lo & ~np.int64(0xFFFFFF)) == SOLICITED_LO


@inline
def _checksum6(b, o, n, src_hi, src, dst_hi, dst):
    """The folded ICMPv6 checksum of b[o:o+n] (0 when a received message is intact)."""
    return net.fold(net.sum16(b, o, n, net.pseudo_sum(src_hi, src, dst_hi, dst, net.PROTO_ICMP6, n)))


@kernel
def icmp6_input(s, b, m, o, length, src_hi, src, dst_hi, dst):
    """An ICMPv6 message b[o:o+length] from (src_hi, src) to (dst_hi, dst); True if m was reused
    for the answer. Solicitations may come to a solicited-node group, everything else to an owned
    address; types other than echo request and ND are not served (drop_protocol)."""
    if length < 4 or _checksum6(b, o, length, src_hi, src, dst_hi, dst) != 0:
        s.counters[C_DROP_BAD_ICMP] += 1
        return False
    kind = b[o + net.ICMP_TYPE]
    if kind == net.ICMP6_NEIGHBOR_SOLICIT or kind == net.ICMP6_NEIGHBOR_ADVERT:
        return _nd_input(s, b, m, o, length, kind, src_hi, src, dst_hi, dst)
    if not owns6(s, dst_hi, dst):
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    if kind != net.ICMP6_ECHO_REQUEST or length < ECHO_MIN:
        s.counters[C_DROP_PROTOCOL] += 1
        return False
    return _echo(s, b, m, o, length, src_hi, src, dst_hi, dst)


@inline
def _echo(s, b, m, o, length, src_hi, src, dst_hi, dst):
    """The echo reply, in m: the request's message (moved up over any extension headers), retyped."""
    if not frame_out.can_reuse(s):
        return False
    peer = net.get_mac(b, net.ETH_SRC)
    r = net.ETH_LEN + net.IP6_LEN
    for i in range(length):              # r <= o: copying forwards never overwrites what is still to copy
        b[r + i] = b[o + i]
    frame_out.put_eth(s, b, peer, net.ETH_IPV6)
    frame_out.put_ipv6(b, dst_hi, dst, src_hi, src, net.PROTO_ICMP6, length, frame_out.HOP_LIMIT)
    b[r + net.ICMP_TYPE] = net.ICMP6_ECHO_REPLY
    net.put16(b, r + net.ICMP_CHECKSUM, 0)
    net.put16(b, r + net.ICMP_CHECKSUM, _checksum6(b, r, length, dst_hi, dst, src_hi, src))
    s.counters[C_ICMP_ECHO] += 1
    frame_out.send(s, m, r + length)
    return True


@inline
def _nd_input(s, b, m, o, length, kind, src_hi, src, dst_hi, dst):
    """A solicitation or advertisement (RFC 4861 7.1 checks); a solicitation for an owned address
    is answered in m (7.2.4): to its sender, or to all nodes when the sender is still unaddressed
    (duplicate address detection, which the answer defends)."""
    if b[net.ETH_LEN + net.IP6_HOP_LIMIT] != net.ND_HOP_LIMIT or b[o + net.ICMP_CODE] != 0 \
            or length < net.ND_OPTIONS or not _options_ok(b, o + net.ND_OPTIONS, o + length):
        s.counters[C_DROP_BAD_ND] += 1
        return False
    target_hi = net.get64(b, o + net.ND_TARGET)
    target = net.get64(b, o + net.ND_TARGET + 8)
    unaddressed = src_hi == 0 and src == 0
    if kind == net.ICMP6_NEIGHBOR_ADVERT:
        if not owns6(s, dst_hi, dst):        # the answer to a solicitation of ours
            s.counters[C_DROP_NOT_OURS] += 1
            return False
        s.counters[C_ND_IN] += 1
        mac = _option_mac(b, o + net.ND_OPTIONS, o + length, net.ND_OPT_TARGET_MAC)
        neighbours.update(s.neighbours, neighbours.key(target_hi, target),
                          mac if mac >= 0 else net.get_mac(b, net.ETH_SRC))
        return False
    if not owns6(s, target_hi, target) or not (owns6(s, dst_hi, dst) or solicited_group(dst_hi, dst)):
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    if unaddressed and not solicited_group(dst_hi, dst):
        s.counters[C_DROP_BAD_ND] += 1
        return False
    s.counters[C_ND_IN] += 1
    peer = _option_mac(b, o + net.ND_OPTIONS, o + length, net.ND_OPT_SOURCE_MAC)
    if peer < 0:
        peer = net.get_mac(b, net.ETH_SRC)
    elif not unaddressed:
        neighbours.update(s.neighbours, neighbours.key(src_hi, src), peer)      # RFC 4861 7.2.3
    if not frame_out.can_reuse(s) or mbuf.room(m) < ND_FRAME:
        return False
    out = mbuf.buffer_view(m)
    if unaddressed:
        _put_advert(s, out, target_hi, target, LINK_LOCAL_MULTICAST_HI, np.int64(ALL_NODES_LO),
                    MULTICAST_MAC | ALL_NODES_LO, net.ND_OVERRIDE)
    else:
        _put_advert(s, out, target_hi, target, src_hi, src, peer, net.ND_SOLICITED | net.ND_OVERRIDE)
    frame_out.send(s, m, ND_FRAME)
    return True


@inline
def _options_ok(b, i, end):
    """Whether the ND options in b[i:end] are well formed: each at least 8 bytes, none past end."""
    while i < end:
        if i + 2 > end or b[i + 1] == 0 or i + np.int64(b[i + 1]) * 8 > end:
            return False
        i += np.int64(b[i + 1]) * 8
    return True


@inline
def _option_mac(b, i, end, kind):
    """The MAC in the first option of `kind` in b[i:end] (well formed, see _options_ok), or -1."""
    while i < end:
        if b[i] == kind and b[i + 1] == 1:
            return net.get_mac(b, i + 2)
        i += np.int64(b[i + 1]) * 8
    return np.int64(-1)


@inline
def _put_nd(s, b, kind, flags, src_hi, src, target_hi, target, dst_hi, dst, dst_mac, option):
    """A solicitation or advertisement (kind) of (target_hi, target), with our MAC as its one option."""
    frame_out.put_eth(s, b, dst_mac, net.ETH_IPV6)
    frame_out.put_ipv6(b, src_hi, src, dst_hi, dst, net.PROTO_ICMP6, ND_LEN, net.ND_HOP_LIMIT)
    o = net.ETH_LEN + net.IP6_LEN
    b[o + net.ICMP_TYPE] = kind
    b[o + net.ICMP_CODE] = 0
    net.put16(b, o + net.ICMP_CHECKSUM, 0)
    net.put32(b, o + net.ND_FLAGS, flags << 24)
    net.put64(b, o + net.ND_TARGET, target_hi)
    net.put64(b, o + net.ND_TARGET + 8, target)
    b[o + net.ND_OPTIONS] = option
    b[o + net.ND_OPTIONS + 1] = 1
    net.put_mac(b, o + net.ND_OPTIONS + 2, s.params[P_MAC])
    net.put16(b, o + net.ICMP_CHECKSUM, _checksum6(b, o, ND_LEN, src_hi, src, dst_hi, dst))


@inline
def _put_advert(s, b, target_hi, target, dst_hi, dst, dst_mac, flags):
    """A neighbour advertisement of (target_hi, target), ours, with our MAC as its target-MAC option."""
    _put_nd(s, b, net.ICMP6_NEIGHBOR_ADVERT, flags, target_hi, target, target_hi, target, dst_hi, dst, dst_mac,
            net.ND_OPT_TARGET_MAC)
    s.counters[C_ND_ADVERTS] += 1


@kernel
def solicit(s, hi, lo):
    """Ask for the MAC of (hi, lo) at its solicited-node group, from our first address (RFC 4861
    7.2.2; client_sched resolves through nperf.kernels.neighbours); False if no frame was free."""
    m = frame_out.take_mbuf(s)
    if m < 0:
        return False
    low24 = lo & np.int64(0xFFFFFF)
    _put_nd(s, mbuf.buffer_view(m), net.ICMP6_NEIGHBOR_SOLICIT, 0, s.params[P_IP6_HI], s.params[P_IP6_FIRST],
            hi, lo, LINK_LOCAL_MULTICAST_HI, SOLICITED_LO | low24, (SOLICITED_MAC << 24) | low24,
            net.ND_OPT_SOURCE_MAC)
    frame_out.send(s, m, ND_FRAME)
    s.counters[C_ND_SOLICITS] += 1
    return True


@kernel
def nd_announce(s):
    """An unsolicited advertisement to all nodes for each owned address not yet announced (RFC 4861
    7.2.6: peers that cached an old MAC for it take ours); True when all are."""
    if s.params[P_IP6_HI] == 0:
        return True
    while s.var[V_ND_ANNOUNCED] <= s.params[P_IP6_LAST] - s.params[P_IP6_FIRST]:
        m = frame_out.take_mbuf(s)
        if m < 0:
            return False
        _put_advert(s, mbuf.buffer_view(m), s.params[P_IP6_HI], s.params[P_IP6_FIRST] + s.var[V_ND_ANNOUNCED],
                    LINK_LOCAL_MULTICAST_HI, np.int64(ALL_NODES_LO), MULTICAST_MAC | ALL_NODES_LO,
                    net.ND_OVERRIDE)
        frame_out.send(s, m, ND_FRAME)
        s.var[V_ND_ANNOUNCED] += 1
    return True
