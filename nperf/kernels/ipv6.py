"""IPv6 input (RFC 8200): a frame's header and extension-header chain, down to its upper layer.

A worker serves no upper layer over IPv6 yet (neighbour discovery, ICMPv6
echo, TCP and UDP over IPv6 are issue 9's next slice), but every IPv6 frame
is already checked and walked, and dropped with its cause counted: a
malformed header or chain, a fragment, a header nperf must not skip. A
frame may carry any chain of the extension headers a host skips (hop-by-hop
first, destination options, a routing header with no segments left);
options are skipped only where their type says a node that does not know
them may (RFC 8200 4.2). The walk reads nothing past the payload length or
the frame, and every header moves it on by at least 8 bytes, so it ends.
"""
import numpy as np

from nperf.kernels import net
from nperf.kernels.jit import inline
from nperf.kernels.stack import C_DROP_BAD_IP, C_DROP_FRAGMENT, C_DROP_PROTOCOL

PAYLOAD_LEN = 4              # offsets in the fixed header (net.IP6_NEXT, IP6_SRC, IP6_DST: the others)
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
    end = o + net.get16(b, ip + PAYLOAD_LEN)
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
    """Walk the IPv6 frame b[:n] and count its drop: it is malformed (drop_bad_ip), a fragment
    (drop_fragment), or refused or of an upper layer not served over IPv6 yet (drop_protocol)."""
    nh, _, _ = upper_layer(b, n)
    if nh == WALK_BAD:
        s.counters[C_DROP_BAD_IP] += 1
    elif nh == WALK_FRAGMENT:
        s.counters[C_DROP_FRAGMENT] += 1
    else:
        s.counters[C_DROP_PROTOCOL] += 1
