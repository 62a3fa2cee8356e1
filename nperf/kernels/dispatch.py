"""lb dispatch: which worker owns a frame's destination address.

IPv4 and IPv6 frames go by destination address, ARP by target protocol
address, and IPv6 neighbour solicitations by their target address (their
destination is a multicast group that no worker owns). A gratuitous ARP
(sender address = target address), or an IPv6 neighbour advertisement to
a multicast group, for an address no worker owns is a peer announcing
itself (in test3, lb_s receives the client's announcements from lb_c): it
is freed and counted apart, not as a drop. Everything else is a
counted drop with its cause. The owner table is open addressing over flat
arrays, built once from the lb config.
"""
import numpy as np

from nperf.kernels import mbuf, net
from nperf.kernels.jit import inline, kernel

# classify() results below zero: drop causes
NO_WORKER = -1
NOT_IP = -2
TRUNCATED = -3
ANNOUNCEMENT = -4        # not a drop: a peer's announcement (freed, counted in ANNOUNCEMENTS)

COUNTER_NAMES = (               # lb counters (int64 words of the lb's shared area, see nperf.roles.lb_shared)
    "rx_packets",       # frames received from the port
    "rx_bytes",
    "tx_packets",       # frames the port took
    "tx_bytes",
    "no_worker",        # drops: no worker owns the destination
    "not_ip_or_arp",    #   neither IPv4, IPv6 nor ARP
    "truncated",        #   shorter than the headers that route it
    "worker_ring_full", #   the worker's RX ring was full
    "port_tx_full",     #   the port still refused it at stop (in steady state frames wait: see lb_loop)
    "no_mbuf",          #   the port had no buffer for it (rte_eth_stats rx_nombuf)
    "port_rx_missed",   #   the port missed it (rte_eth_stats imissed)
    "announcements",    # peers' gratuitous ARP or IPv6 advertisements to all, of no worker's address (not drops)
)
(RX_PACKETS, RX_BYTES, TX_PACKETS, TX_BYTES, DROP_NO_WORKER, DROP_NOT_IP, DROP_TRUNCATED, DROP_RING_FULL,
 DROP_PORT_TX_FULL, DROP_NO_MBUF, DROP_RX_MISSED, ANNOUNCEMENTS) = range(len(COUNTER_NAMES))
N_COUNTERS = len(COUNTER_NAMES)
DROP_FIRST = DROP_NO_WORKER
DROP_NAMES = COUNTER_NAMES[DROP_FIRST:ANNOUNCEMENTS]

_HASH32 = np.uint64(0x9E3779B1)
_HASH64 = np.uint64(0x9E3779B97F4A7C15)


class OwnerTable:
    """IP → worker tables for the dispatch kernels (arrays only)."""

    def __init__(self, v4: list[tuple[int, int]], v6: list[tuple[int, int]]):
        self.v4_keys, self.v4_vals = _new_table(len(v4), np.uint32)
        for ip, worker in v4:
            _insert4(self.v4_keys, self.v4_vals, np.uint32(ip), worker)
        self.v6_hi, self.v6_vals = _new_table(len(v6), np.uint64)
        self.v6_lo = np.zeros_like(self.v6_hi)
        for ip, worker in v6:
            _insert6(self.v6_hi, self.v6_lo, self.v6_vals,
                     np.uint64(ip >> 64), np.uint64(ip & (2**64 - 1)), worker)

    def arrays(self):
        """The tuple that the kernels take as `table`."""
        return (self.v4_keys, self.v4_vals, self.v6_hi, self.v6_lo, self.v6_vals)


def _new_table(count, key_dtype):
    size = 16
    while size < 2 * count:
        size *= 2
    return np.zeros(size, key_dtype), np.full(size, -1, np.int32)


@inline
def _slot4(ip, size):
    """Table sizes are powers of two: the slot is a mask, never a division."""
    return np.int64(((np.uint64(ip) * _HASH32) >> np.uint64(16)) & np.uint64(size - 1))


@inline
def _slot6(hi, lo, size):
    h = (hi ^ (lo * _HASH64)) * _HASH64
    return np.int64((h >> np.uint64(32)) & np.uint64(size - 1))


@kernel
def _insert4(keys, vals, ip, worker):
    size = keys.shape[0]
    i = _slot4(ip, size)
    while vals[i] >= 0 and keys[i] != ip:
        i = (i + 1) & (size - 1)
    keys[i] = ip
    vals[i] = worker


@kernel
def _insert6(his, los, vals, hi, lo, worker):
    size = his.shape[0]
    i = _slot6(hi, lo, size)
    while vals[i] >= 0 and (his[i] != hi or los[i] != lo):
        i = (i + 1) & (size - 1)
    his[i] = hi
    los[i] = lo
    vals[i] = worker


@inline
def lookup4(keys, vals, ip):
    size = keys.shape[0]
    i = _slot4(ip, size)
    while vals[i] >= 0:
        if keys[i] == ip:
            return np.int64(vals[i])
        i = (i + 1) & (size - 1)
    return np.int64(NO_WORKER)


@inline
def lookup6(his, los, vals, hi, lo):
    size = his.shape[0]
    i = _slot6(hi, lo, size)
    while vals[i] >= 0:
        if his[i] == hi and los[i] == lo:
            return np.int64(vals[i])
        i = (i + 1) & (size - 1)
    return np.int64(NO_WORKER)


@inline
def _be32(b, o):
    return (np.uint32(b[o]) << 24) | (np.uint32(b[o + 1]) << 16) | (np.uint32(b[o + 2]) << 8) | np.uint32(b[o + 3])


@inline
def _be64(b, o):
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(b[o + k])
    return v


@inline
def classify(b, n, table):
    """Worker index for the frame `b[:n]`, or a negative drop cause."""
    v4_keys, v4_vals, v6_hi, v6_lo, v6_vals = table
    h = net.ETH_LEN           # where the IP or ARP header starts
    if n < h:
        return np.int64(TRUNCATED)
    ethertype = (np.int64(b[net.ETH_TYPE]) << 8) | np.int64(b[net.ETH_TYPE + 1])
    if ethertype == net.ETH_IPV4:
        if n < h + net.IP_LEN:
            return np.int64(TRUNCATED)
        if b[h + net.IP_VER_IHL] >> 4 != 4:
            return np.int64(NOT_IP)
        return lookup4(v4_keys, v4_vals, _be32(b, h + net.IP_DST))
    if ethertype == net.ETH_ARP:
        if n < h + net.ARP_LEN:
            return np.int64(TRUNCATED)
        if b[h + net.ARP_HLEN] != 6 or b[h + net.ARP_PLEN] != 4 or b[h + net.ARP_PTYPE] != 0x08 \
                or b[h + net.ARP_PTYPE + 1] != 0x00:
            return np.int64(NOT_IP)
        target = _be32(b, h + net.ARP_TPA)
        owner = lookup4(v4_keys, v4_vals, target)
        if owner == NO_WORKER and _be32(b, h + net.ARP_SPA) == target:
            return np.int64(ANNOUNCEMENT)
        return owner
    if ethertype == net.ETH_IPV6:
        if n < h + net.IP6_LEN:
            return np.int64(TRUNCATED)
        if b[h + net.IP_VER_IHL] >> 4 != 6:
            return np.int64(NOT_IP)
        at = h + net.IP6_DST
        icmp = h + net.IP6_LEN
        kind = np.int64(-1)
        if b[h + net.IP6_NEXT] == net.PROTO_ICMP6 and b[at] == 0xFF and n >= icmp + net.ND_TARGET + 16:
            kind = b[icmp + net.ICMP_TYPE]
            if kind == net.ICMP6_NEIGHBOR_SOLICIT or kind == net.ICMP6_NEIGHBOR_ADVERT:
                at = icmp + net.ND_TARGET      # neighbour discovery to a multicast address: its target
        owner = lookup6(v6_hi, v6_lo, v6_vals, _be64(b, at), _be64(b, at + 8))
        if owner == NO_WORKER and kind == net.ICMP6_NEIGHBOR_ADVERT:
            return np.int64(ANNOUNCEMENT)
        return owner
    return np.int64(NOT_IP)


@inline
def count_drop(counters, code):
    """Count a frame that goes to no worker, by cause (a peer's announcement is not a drop)."""
    if code == ANNOUNCEMENT:
        counters[ANNOUNCEMENTS] += 1
    elif code == NO_WORKER:
        counters[DROP_NO_WORKER] += 1
    elif code == NOT_IP:
        counters[DROP_NOT_IP] += 1
    else:
        counters[DROP_TRUNCATED] += 1


@kernel
def dispatch_frames(frames, lens, table, counters, out):
    """Array form of `sort_burst` for tests: out[i] = frame i's worker or drop code."""
    for i in range(lens.shape[0]):
        code = classify(frames[i], lens[i], table)
        counters[RX_PACKETS] += 1
        counters[RX_BYTES] += np.int64(lens[i])
        if code < 0:
            count_drop(counters, code)
        out[i] = code


@kernel
def sort_burst(mbufs, n, table, buckets, bucket_len, drops, counters):
    """Sort `mbufs[:n]` into per-worker `buckets`; dropped ones into `drops`.

    Returns how many went to `drops` (the caller frees them in bulk).
    """
    ndrop = 0
    for i in range(n):
        m = mbufs[i]
        counters[RX_PACKETS] += 1
        counters[RX_BYTES] += mbuf.pkt_len(m)
        code = classify(mbuf.data_view(m), mbuf.data_len(m), table)
        if code >= 0:
            buckets[code, bucket_len[code]] = m
            bucket_len[code] += 1
        else:
            count_drop(counters, code)
            drops[ndrop] = m
            ndrop += 1
    return ndrop
