"""Wire formats: byte order, header offsets and Internet checksums.

Network byte order is handled here and nowhere else: kernels read and write
header fields with `get16/get32/put16/put32` on uint8 views of a frame.
Checksums are RFC 1071 ones'-complement sums, folded once at the end.
"""
import numpy as np

from nperf.bindings.intrinsics import array_addr, load_u16, load_u32, view_u32
from nperf.kernels.jit import inline
from nperf.kernels.mbuf import CSUM_BAD, CSUM_SOFTWARE

ETH_LEN = 14
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
IP_LEN = 20                 # IPv4 header without options
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
TCP_LEN = 20                # TCP header without options
UDP_LEN = 8

# Header fields: byte offsets from the start of their header (as smoltcp's `wire::*::field`).
# Ethernet
ETH_DST = 0
ETH_SRC = 6
ETH_TYPE = 12
# IPv4 (RFC 791 3.1); a frame's IPv4 header starts at ETH_LEN
IP_VER_IHL = 0              # version << 4 | header length in 32-bit words
IP_TOS = 1
IP_TOTAL_LEN = 2
IP_ID = 4
IP_FRAG = 6                 # flags << 13 | fragment offset
IP_TTL = 8
IP_PROTO = 9
IP_CHECKSUM = 10
IP_SRC = 12
IP_DST = 16
IP_DF = 0x4000              # IP_FRAG: don't fragment
IP_MF_OFFSET = 0x3FFF       # IP_FRAG: more fragments, or an offset: a fragment
# TCP (RFC 9293 3.1)
TCP_SPORT = 0
TCP_DPORT = 2
TCP_SEQ = 4
TCP_ACK = 8
TCP_DATA_OFF = 12           # header length in 32-bit words << 4
TCP_FLAGS = 13
TCP_WINDOW = 14
TCP_CHECKSUM = 16
TCP_URGENT = 18
TCP_OPTIONS = 20
OPT_END = 0                 # TCP option kinds
OPT_NOP = 1
OPT_MSS = 2                 # kind, length 4, MSS (16 bits)
OPT_WSCALE = 3              # kind, length 3, shift count
OPT_SACK_PERM = 4           # kind, length 2 (SYN only)
OPT_SACK = 5                # kind, length 2 + 8 per block: left and right edges (32 bits each)
OPT_TIMESTAMP = 8           # kind, length 10, TSval and TSecr (32 bits each)
# UDP (RFC 768)
UDP_SPORT = 0
UDP_DPORT = 2
UDP_LENGTH = 4
UDP_CHECKSUM = 6
# ARP for IPv4 over Ethernet (RFC 826); a frame's ARP header starts at ETH_LEN
ARP_HTYPE = 0               # 1: Ethernet
ARP_PTYPE = 2               # ETH_IPV4
ARP_HLEN = 4                # 6
ARP_PLEN = 5                # 4
ARP_OP = 6                  # ARP_REQUEST or ARP_REPLY
ARP_SHA = 8                 # sender MAC
ARP_SPA = 14                # sender IPv4 address
ARP_THA = 18                # target MAC
ARP_TPA = 24                # target IPv4 address
ARP_LEN = 28
ARP_REQUEST = 1
ARP_REPLY = 2
# IPv6 (RFC 8200 3), ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861 4.3, 4.4)
IP6_PAYLOAD_LEN = 4
IP6_NEXT = 6
IP6_HOP_LIMIT = 7
IP6_SRC = 8                 # each address is two 64-bit words (get64): high, then low
IP6_DST = 24
IP6_LEN = 40
PROTO_ICMP6 = 58
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ICMP6_NEIGHBOR_SOLICIT = 135
ICMP6_NEIGHBOR_ADVERT = 136
ND_FLAGS = 4                # a neighbour advertisement's R, S, O bits (ND_SOLICITED, ND_OVERRIDE)
ND_TARGET = 8               # the solicited or advertised address, after type, code, checksum and a word
ND_OPTIONS = 24
ND_SOLICITED = 0x40
ND_OVERRIDE = 0x20
ND_OPT_SOURCE_MAC = 1       # option types; an option's length byte counts 8-byte units
ND_OPT_TARGET_MAC = 2
ND_HOP_LIMIT = 255          # every ND message, sent and received (RFC 4861 7.1)
# ICMP (RFC 792)
ICMP_TYPE = 0
ICMP_CODE = 1
ICMP_CHECKSUM = 2
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0

# TCP flags
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


@inline
def get16(b, o):
    return (np.int64(b[o]) << 8) | np.int64(b[o + 1])


@inline
def get32(b, o):
    return (np.int64(b[o]) << 24) | (np.int64(b[o + 1]) << 16) | (np.int64(b[o + 2]) << 8) | np.int64(b[o + 3])


def signed64(x: int) -> int:
    """A 64-bit word as kernels hold it, in an int64 (wrapping): for IPv6 address words from Python."""
    return ((x + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def ipv6_words(address) -> tuple[int, int]:
    """An IPv6 address (ipaddress.IPv6Address or its int) as kernels hold it: (high, low) int64 words."""
    x = int(address)
    return signed64(x >> 64), signed64(x & ((1 << 64) - 1))


@inline
def get64(b, o):
    """Eight bytes as one int64 (wrapping: an IPv6 address's high or low word may be negative)."""
    return (get32(b, o) << 32) | get32(b, o + 4)


@inline
def put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


@inline
def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


@inline
def put64(b, o, v):
    put32(b, o, (v >> 32) & 0xFFFFFFFF)
    put32(b, o + 4, v & 0xFFFFFFFF)


@inline
def get_mac(b, o):
    """Six bytes as one int64 (first byte most significant)."""
    return (get16(b, o) << 32) | get32(b, o + 2)


@inline
def put_mac(b, o, mac):
    put16(b, o, mac >> 32)
    put32(b, o + 2, mac & 0xFFFFFFFF)


SHORT_SUM = 32              # sum16: up to this many bytes (headers, ACKs) without a vector loop


@inline
def _u32(p, k, j):
    """The 32-bit word at address p + j if j < k, else 0."""
    return np.int64(load_u32(p + j)) if j < k else np.int64(0)


@inline
def sum16(b, o, n, acc):
    """Add the 16-bit big-endian words of b[o:o+n] to `acc` (odd tail padded).

    The bytes are loaded as little-endian 32-bit words, so the loop over a
    payload vectorizes, and the folded sum is byte-swapped once: the
    ones'-complement sum depends neither on byte order nor on adding 32-bit
    words instead of 16-bit ones (RFC 1071 section 2(B), and 2**16 = 1 in
    ones'-complement arithmetic). A header or an ACK (SHORT_SUM bytes or
    fewer) takes a few plain loads instead: the vector loop's set-up and
    masked tail cost more than the sum (perf: about 5 % of a keep-alive
    pair's time was one instruction of that tail). Never reads past the end of b.
    """
    n = max(min(n, b.shape[0] - o), 0)
    p = np.int64(array_addr(b)) + o
    le = np.int64(0)
    k = n & ~3
    if n <= SHORT_SUM:                  # straight-line: a loop here was vectorized into gathers
        le = _u32(p, k, 0) + _u32(p, k, 4) + _u32(p, k, 8) + _u32(p, k, 12) + _u32(p, k, 16) + _u32(p, k, 20) \
            + _u32(p, k, 24) + _u32(p, k, 28)
    else:
        words = view_u32(p, n >> 2)
        for i in range(np.uint64(n >> 2)):
            le += np.int64(words[i])
    if n - k >= 2:
        le += np.int64(load_u16(p + k))
    while le >> 16:
        le = (le & 0xFFFF) + (le >> 16)
    acc += ((le & 0xFF) << 8) | (le >> 8)
    if n & 1:
        acc += np.int64(b[o + n - 1]) << 8
    return acc


@inline
def fold(acc):
    """Fold a sum to 16 bits and complement it: the checksum field value."""
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return (~acc) & 0xFFFF


@inline
def word_sum(v):
    """The four 16-bit words of the 64-bit v, summed (a pseudo-header's share of an IPv6 address)."""
    return ((v >> 48) & 0xFFFF) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF)


@inline
def addr_sum(src_hi, src, dst_hi, dst):
    """Two addresses' share of a pseudo-header sum: IPv4 (high words 0) or IPv6 alike."""
    return word_sum(src_hi) + word_sum(src) + word_sum(dst_hi) + word_sum(dst)


@inline
def pseudo_sum(src_hi, src, dst_hi, dst, proto, length):
    """Pseudo-header sum for TCP, UDP and ICMPv6 checksums: IPv6's (RFC 8200 8.1), or with high words
    0 IPv4's (RFC 9293 3.1); their words add up alike."""
    return addr_sum(src_hi, src, dst_hi, dst) + proto + length


@inline
def checksum_bad(port_found, b, o, n, pseudo):
    """Whether a TCP or UDP segment b[o:o+n] fails its checksum: as the port found it
    (mbuf.rx_checksums), or summed here with its pseudo-header sum when the port did not check."""
    if port_found != CSUM_SOFTWARE:
        return port_found == CSUM_BAD
    return fold(sum16(b, o, n, pseudo)) != 0


@inline
def ipv4_header_ok(b, o):
    """The header checksum over a header of IHL words verifies."""
    ihl = (np.int64(b[o + IP_VER_IHL]) & 0xF) * 4
    return fold(sum16(b, o, ihl, np.int64(0))) == 0


@inline
def tcp_header_sum(sport, dport, seq, ack, hlen, flags, window):
    """The 16-bit words of a TCP header without options (checksum and urgent pointer 0), summed
    from the field values (see frame_out.put_ipv4 for why not from the frame)."""
    return sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) \
        + (((hlen // 4) << 12) | flags) + window


@inline
def tcp_option(b, i, end):
    """The TCP option at or after b[i], NOPs skipped, within b[:end]: (kind, its offset, its length).
    Kind -1 at the end of the options or at a malformed one (a length below 2, or past end): either
    ends the walk."""
    while i < end and b[i] == OPT_NOP:
        i += 1
    if i + 1 >= end or b[i] == OPT_END or b[i + 1] < 2 or i + b[i + 1] > end:
        return np.int64(-1), i, np.int64(0)
    return np.int64(b[i]), i, np.int64(b[i + 1])


@inline
def seq_diff(a, b):
    """a - b for 32-bit sequence numbers, as a signed int in -2**31..2**31-1."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
