"""IPv6 input (RFC 8200): a frame's header and extension-header chain, down to its upper layer.

Every IPv6 frame is checked and walked, and dropped with its cause counted
where nperf does not serve it: a malformed header or chain, a fragment, a
header nperf must not skip. A frame may carry any chain of the extension
headers a host skips (hop-by-hop first, destination options, a routing
header with no segments left); options are skipped only where their type
says a node that does not know them may (RFC 8200 4.2). The walk reads
nothing past the payload length or the frame, and every header moves it on
by at least 8 bytes, so it ends. ICMPv6 goes on to nperf.kernels.ndp, TCP
and UDP to the same input as over IPv4 (worker_loop.frame_input), with the
addresses' high words set (nperf.kernels.tcp_table).
"""
import numpy as np

from nperf.kernels import mbuf, ndp, net
from nperf.kernels.jit import inline
from nperf.kernels.stack import (C_DROP_BAD_IP, C_DROP_FRAGMENT, C_DROP_NOT_OURS, C_DROP_PROTOCOL, C_RX_CSUM_BY_PORT,
                                 P_PORT_CHECKSUMS)

HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTIONS = 0, 43, 44, 60
EXT_LEN_UNIT = 8             # an extension header is (its length byte + 1) units long
ROUTING_SEGMENTS_LEFT = 3    # in a routing header
PAD1 = 0
OPT_ACTION_SHIFT = 6         # an option type's two high bits: 0 = skip it if unknown, else discard

# what upper_layer returns in place of a next header
WALK_BAD, WALK_FRAGMENT, WALK_REFUSED = -1, -2, -3


@inline
def upper_layer(b, n):
    """(next header, offset, length) of the upper-layer data of the IPv6 packet in frame b[:n];
    (WALK_BAD | WALK_FRAGMENT | WALK_REFUSED, 0, 0) if the packet is malformed, a fragment, or
    carries a header or option nperf must not skip. Ethernet padding past the payload is ignored."""
    ip = net.ETH_LEN
    if n < ip + net.IP6_LEN or b[ip] >> 4 != 6:
        return np.int64(WALK_BAD), np.int64(0), np.int64(0)
    o = np.int64(ip + net.IP6_LEN)
    end = o + net.get16(b, ip + net.IP6_PAYLOAD_LEN)
    if end > n:
        return np.int64(WALK_BAD), np.int64(0), np.int64(0)
    nh = np.int64(b[ip + net.IP6_NEXT])
    while nh == HOP_BY_HOP or nh == DEST_OPTIONS or nh == ROUTING or nh == FRAGMENT:
        if nh == FRAGMENT:
            return np.int64(WALK_FRAGMENT), np.int64(0), np.int64(0)
        if o + EXT_LEN_UNIT > end or (nh == HOP_BY_HOP and o != ip + net.IP6_LEN):
            return np.int64(WALK_BAD), np.int64(0), np.int64(0)       # hop-by-hop comes first or not at all
        size = (np.int64(b[o + 1]) + 1) * EXT_LEN_UNIT
        if o + size > end:
            return np.int64(WALK_BAD), np.int64(0), np.int64(0)
        if nh == ROUTING:
            verdict = np.int64(0) if b[o + ROUTING_SEGMENTS_LEFT] == 0 else np.int64(WALK_REFUSED)   # not a router
        else:
            verdict = _options(b, o + 2, o + size)
        if verdict != 0:
            return verdict, np.int64(0), np.int64(0)
        nh = np.int64(b[o])
        o += size
    return nh, o, end - o


@inline
def _options(b, i, end):
    """0 if the options in b[i:end] may all be skipped; WALK_BAD if one runs past end, WALK_REFUSED
    for one whose type says to discard the packet when the option is not known."""
    while i < end:
        kind = b[i]
        if kind == PAD1:
            i += 1
            continue
        if i + 2 > end or i + 2 + np.int64(b[i + 1]) > end:
            return np.int64(WALK_BAD)
        if kind >> OPT_ACTION_SHIFT != 0:
            return np.int64(WALK_REFUSED)
        i += 2 + np.int64(b[i + 1])
    return np.int64(0)


@inline
def ipv6_input(s, b, n):
    """The IPv6 frame b[:n]: (next header, upper-layer offset and length, source and destination as
    (high, low) words); next header -1 when it was dropped (counted): malformed (drop_bad_ip), a
    fragment (drop_fragment), a refused header (drop_protocol), or not for us (drop_not_ours). ICMPv6
    comes back whatever its destination (a solicitation goes to a multicast group: nperf.kernels.ndp)."""
    zero = np.int64(0)
    nh, o, length = upper_layer(b, n)
    if nh < 0:
        s.counters[C_DROP_FRAGMENT if nh == WALK_FRAGMENT else C_DROP_BAD_IP if nh == WALK_BAD
                   else C_DROP_PROTOCOL] += 1
        return np.int64(-1), zero, zero, zero, zero, zero, zero
    ip = net.ETH_LEN
    src_hi, src = net.get64(b, ip + net.IP6_SRC), net.get64(b, ip + net.IP6_SRC + 8)
    dst_hi, dst = net.get64(b, ip + net.IP6_DST), net.get64(b, ip + net.IP6_DST + 8)
    if nh != net.PROTO_ICMP6:
        if not ndp.owns6(s, dst_hi, dst):
            s.counters[C_DROP_NOT_OURS] += 1
            return np.int64(-1), zero, zero, zero, zero, zero, zero
        if src_hi == 0:                  # ::/64 sends no segments (and would read as IPv4: tcp_table)
            s.counters[C_DROP_BAD_IP] += 1
            return np.int64(-1), zero, zero, zero, zero, zero, zero
    return nh, o, length, src_hi, src, dst_hi, dst


@inline
def l4_csum(s, m):
    """What the port found of a received IPv6 frame's TCP or UDP checksum (mbuf.CSUM_*); a frame
    whose checksum it found good counts as rx_csum_by_port."""
    if s.params[P_PORT_CHECKSUMS]:
        found = mbuf.rx_checksums(m)[1]
        if found == mbuf.CSUM_GOOD:
            s.counters[C_RX_CSUM_BY_PORT] += 1
        return found
    return np.int64(mbuf.CSUM_SOFTWARE)
