"""Wire formats: byte order, header offsets and Internet checksums.

Network byte order is handled here and nowhere else: kernels read and write
header fields with `get16/get32/put16/put32` on uint8 views of a frame.
Checksums are RFC 1071 ones'-complement sums, folded once at the end.
"""
import numpy as np

from nperf.bindings.intrinsics import array_addr, view_u16
from nperf.kernels.jit import inline

ETH_LEN = 14
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
IP_LEN = 20                 # IPv4 header without options
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
TCP_LEN = 20                # TCP header without options

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
def get_mac(b, o):
    """Six bytes as one int64 (first byte most significant)."""
    return (get16(b, o) << 32) | get32(b, o + 2)


@inline
def put_mac(b, o, mac):
    put16(b, o, mac >> 32)
    put32(b, o + 2, mac & 0xFFFFFFFF)


@inline
def sum16(b, o, n, acc):
    """Add the 16-bit big-endian words of b[o:o+n] to `acc` (odd tail padded).

    The words are loaded in the machine's (little-endian) order so the loop
    vectorizes, and the folded sum is byte-swapped once: the ones'-complement
    sum does not depend on byte order (RFC 1071 section 2(B)). Never reads
    past the end of b.
    """
    n = max(min(n, b.shape[0] - o), 0)
    words = view_u16(array_addr(b) + o, n >> 1)
    le = np.int64(0)
    for i in range(np.uint64(n >> 1)):
        le += np.int64(words[i])
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
def pseudo_sum(src, dst, proto, length):
    """IPv4 pseudo-header sum for TCP/UDP checksums."""
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + length


@inline
def ipv4_header_ok(b, o):
    """The header checksum over a header of IHL words verifies."""
    ihl = (np.int64(b[o]) & 0xF) * 4
    return fold(sum16(b, o, ihl, np.int64(0))) == 0


@inline
def set_ipv4_checksum(b, o):
    b[o + 10] = 0
    b[o + 11] = 0
    put16(b, o + 10, fold(sum16(b, o, IP_LEN, np.int64(0))))


@inline
def seq_diff(a, b):
    """a - b for 32-bit sequence numbers, as a signed int in -2**31..2**31-1."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
