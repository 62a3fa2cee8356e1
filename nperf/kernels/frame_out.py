"""Building outgoing frames: free mbufs in, frames to transmit out.

Kernels never call DPDK while they process a burst: the poll loop tops up
`stash` (free mbufs) before, and transmits `txq` after. When the stash is
empty or the queue full, a sender stops and tries again next turn.
"""
import numpy as np

from nperf.kernels import mbuf, net
from nperf.kernels.jit import inline, step
from nperf.kernels.stack import C_DROP_TX_FULL, P_MAC, V_IP_ID, V_STASH_N, V_TXQ_N


@inline
def can_send(s, frames):
    """Room for `frames` more frames: free mbufs and transmit-queue slots."""
    return s.var[V_STASH_N] >= frames and s.txq.shape[0] - s.var[V_TXQ_N] >= frames


@inline
def can_reuse(s):
    """Room in the transmit queue to answer in a received mbuf (else counted)."""
    if s.var[V_TXQ_N] == s.txq.shape[0]:
        s.counters[C_DROP_TX_FULL] += 1
        return False
    return True


@inline
def take_mbuf(s):
    """A free mbuf from the stash, or -1 when this burst has no room left.

    Not a drop: TCP keeps what it could not send (the connection stays on
    the work list, an owed ACK stays owed) and sends it next turn.
    """
    n = s.var[V_STASH_N]
    if n == 0 or s.var[V_TXQ_N] == s.txq.shape[0]:
        return np.int64(-1)
    s.var[V_STASH_N] = n - 1
    return s.stash[n - 1]


@inline
def send(s, m, length):
    """Queue mbuf m, holding a frame of `length` bytes, for transmission
    (counted when the port or ring takes it)."""
    mbuf.set_len(m, length)
    s.txq[s.var[V_TXQ_N]] = m
    s.var[V_TXQ_N] += 1


@inline
def put_eth(s, b, dst_mac, ethertype):
    net.put_mac(b, net.ETH_DST, dst_mac)
    net.put_mac(b, net.ETH_SRC, s.params[P_MAC])
    net.put16(b, net.ETH_TYPE, ethertype)


IP_TTL = 64
HOP_LIMIT = 64              # IPv6's TTL, as Linux's default


@step
def put_ipv4(s, b, src, dst, proto, payload_len):
    """IPv4 header at offset 14, with its checksum.

    The checksum is summed from the field values, not read back from the
    frame: loading words just written a byte or two at a time stalls on
    store forwarding (perf: the read-back loops were the hottest spots of
    a connection's path).
    """
    o = net.ETH_LEN
    total = net.IP_LEN + payload_len
    s.var[V_IP_ID] = (s.var[V_IP_ID] + 1) & 0xFFFF
    ip_id = s.var[V_IP_ID]
    b[o + net.IP_VER_IHL] = 0x40 | net.IP_LEN // 4
    b[o + net.IP_TOS] = 0
    net.put16(b, o + net.IP_TOTAL_LEN, total)
    net.put16(b, o + net.IP_ID, ip_id)
    net.put16(b, o + net.IP_FRAG, net.IP_DF)
    b[o + net.IP_TTL] = IP_TTL
    b[o + net.IP_PROTO] = proto
    net.put32(b, o + net.IP_SRC, src)
    net.put32(b, o + net.IP_DST, dst)
    words = ((0x40 | net.IP_LEN // 4) << 8) + total + ip_id + net.IP_DF + ((IP_TTL << 8) | proto) \
        + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
    net.put16(b, o + net.IP_CHECKSUM, net.fold(words))


@inline
def put_ipv6(b, src_hi, src, dst_hi, dst, next_header, payload_len, hop_limit):
    """IPv6 header at offset 14, without extension headers; an address is its (high, low) words.
    IPv6 has no header checksum: the upper layer's covers the addresses (net.pseudo_sum)."""
    o = net.ETH_LEN
    net.put32(b, o, 6 << 28)                 # version 6, traffic class and flow label 0
    net.put16(b, o + net.IP6_PAYLOAD_LEN, payload_len)
    b[o + net.IP6_NEXT] = next_header
    b[o + net.IP6_HOP_LIMIT] = hop_limit
    net.put64(b, o + net.IP6_SRC, src_hi)
    net.put64(b, o + net.IP6_SRC + 8, src)
    net.put64(b, o + net.IP6_DST, dst_hi)
    net.put64(b, o + net.IP6_DST + 8, dst)


@inline
def l4_offset(dst_hi):
    """Where the TCP or UDP header starts in a frame we build to an address with high word dst_hi
    (0: IPv4, see tcp_table.tuple_keys)."""
    return net.ETH_LEN + (net.IP6_LEN if dst_hi != 0 else net.IP_LEN)


@inline
def put_ip(s, b, dst_mac, src_hi, src, dst_hi, dst, proto, payload_len):
    """The Ethernet and IP headers of a frame from (src_hi, src) to (dst_hi, dst): IPv6 when the
    high words are set, else IPv4."""
    if dst_hi != 0:
        put_eth(s, b, dst_mac, net.ETH_IPV6)
        put_ipv6(b, src_hi, src, dst_hi, dst, proto, payload_len, HOP_LIMIT)
    else:
        put_eth(s, b, dst_mac, net.ETH_IPV4)
        put_ipv4(s, b, src, dst, proto, payload_len)
