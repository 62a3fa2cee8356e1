"""A worker's poll loop: one turn, repeated (DPDK's l2fwd_main_loop, in Numba).

`worker_turn` is the whole data path of one turn: top up the free-mbuf
stash, receive a burst and hand each frame to ARP/ICMP/TCP, free what was
not reused, run due timers, let the application start new work (the
client's scheduler), send what connections may send, and transmit the
queue. Production (`worker_poll`), the frame-level test harnesses and the
benchmarks all run this one function; only their `Io` differs (see
`nperf.kernels.io`). `worker_poll` adds the clock, the idle back-off and the
busy share, and returns to Python after a time budget.
"""
import numpy as np

from nperf.bindings.intrinsics import prefetch
from nperf.kernels import arp, capture, client_sched, io, ipv6, lookup, mbuf, ndp, net, server_app, tcp, time_wait
from nperf.kernels.jit import inline, kernel
from nperf.kernels.poll import account, idle_backoff, new_poll_state
from nperf.kernels.stack import (C_DROP_BAD_IP, C_DROP_FRAGMENT, C_DROP_IP_CHECKSUM, C_DROP_NOT_OURS, C_DROP_RUNT,
                                 C_DROP_PROTOCOL, C_DROP_TEST_LOSS, C_RX_BYTES, C_RX_CSUM_BY_PORT, C_RX_FRAMES,
                                 C_TX_BYTES, C_TX_FRAMES, P_LOSS_PPM, P_MAC, P_PORT_CHECKSUMS, V_NOW_US, V_STASH_N,
                                 V_TXQ_HELD, V_TXQ_N, random64)
from nperf.kernels.tcp_table import tuple_keys
from nperf.kernels.timers import TICK_US, WHEEL_LAST, timers_due

BURST = 32
BROADCAST = 0xFFFFFFFFFFFF
TX_TRIES = 4

# what a turn did (bits of worker_turn's result)
DID_RX, DID_TX, DID_TIMERS, DID_APP = 1, 2, 4, 8


class LoopScratch:
    """Burst arrays, the poll state and the frame capture (`--pcap`), kept between slices."""

    def __init__(self, capture_limit: int = 0):
        self.rx = np.zeros(BURST, np.int64)
        self.done = np.zeros(BURST, np.int64)
        self.lens = np.zeros(1024, np.int64)
        self.pstate = new_poll_state()
        self.capture = capture.new_capture(capture_limit)

    def arrays(self):
        return self.rx, self.done, self.lens, self.pstate, self.capture


@kernel
def test_loss(s):
    """The test knob: drop a frame with probability P_LOSS_PPM / 1e6."""
    return (random64(s) & 0x7FFFFFFF) % 1_000_000 < s.params[P_LOSS_PPM]


@inline
def frame_input(s, m, now):
    """One received frame; True if its mbuf was reused to answer (not to be freed)."""
    n = mbuf.data_len(m)
    s.counters[C_RX_FRAMES] += 1
    s.counters[C_RX_BYTES] += n
    if s.params[P_LOSS_PPM] > 0 and test_loss(s):
        s.counters[C_DROP_TEST_LOSS] += 1
        return False
    b = mbuf.data_view(m)
    if n < net.ETH_LEN:
        s.counters[C_DROP_RUNT] += 1
        return False
    dst_mac = net.get_mac(b, net.ETH_DST)
    if dst_mac != s.params[P_MAC] and dst_mac != BROADCAST and not ndp.solicited_mac(dst_mac):
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    ethertype = net.get16(b, net.ETH_TYPE)
    if ethertype == net.ETH_ARP:
        return arp.arp_input(s, b, n, m)
    if ethertype == net.ETH_IPV6:
        proto, o, l4_len, src_hi, src, dst_hi, dst = ipv6.ipv6_input(s, b, n)
        if proto == net.PROTO_ICMP6:
            return ndp.icmp6_input(s, b, m, o, l4_len, src_hi, src, dst_hi, dst)
        l4_csum = ipv6.l4_csum(s, m) if proto == net.PROTO_TCP or proto == net.PROTO_UDP \
            else np.int64(mbuf.CSUM_SOFTWARE)
    elif ethertype == net.ETH_IPV4:
        proto, o, l4_len, src, dst, l4_csum = _ipv4_input(s, b, n, m)
        src_hi, dst_hi = np.int64(0), np.int64(0)
        if proto == net.PROTO_ICMP:
            return arp.icmp_echo(s, b, n, o - net.ETH_LEN, o - net.ETH_LEN + l4_len, m)
    else:
        s.counters[C_DROP_PROTOCOL] += 1
        return False
    # TCP and UDP over either family: one path, the addresses as (high, low) words (high 0: IPv4)
    if proto == net.PROTO_TCP:
        tcp.tcp_input(s, b, o, l4_len, src_hi, src, dst_hi, dst, l4_csum, now)
    elif proto == net.PROTO_UDP:
        server_app.udp_input(s, b, o, l4_len, src_hi, src, dst_hi, dst, l4_csum, now)
    elif proto >= 0:
        s.counters[C_DROP_PROTOCOL] += 1
    return False


@inline
def _ipv4_input(s, b, n, m):
    """Check the IPv4 header of frame b[:n] (mbuf m): (protocol, upper-layer offset and length,
    source, destination, what the port found of the upper layer's checksum); protocol -1 when the
    frame was dropped (counted)."""
    zero = np.int64(0)
    ip = net.ETH_LEN
    if n < ip + net.IP_LEN or b[ip + net.IP_VER_IHL] >> 4 != 4:
        s.counters[C_DROP_BAD_IP] += 1
        return np.int64(-1), zero, zero, zero, zero, zero
    ihl = (np.int64(b[ip + net.IP_VER_IHL]) & 0xF) * 4
    ip_len = net.get16(b, ip + net.IP_TOTAL_LEN)
    if ihl < net.IP_LEN or ip_len < ihl or net.ETH_LEN + ip_len > n:
        s.counters[C_DROP_BAD_IP] += 1
        return np.int64(-1), zero, zero, zero, zero, zero
    ip_csum, l4_csum = np.int64(mbuf.CSUM_SOFTWARE), np.int64(mbuf.CSUM_SOFTWARE)
    if s.params[P_PORT_CHECKSUMS]:
        ip_csum, l4_csum = mbuf.rx_checksums(m)
    if ip_csum == mbuf.CSUM_GOOD:
        s.counters[C_RX_CSUM_BY_PORT] += 1
    elif ip_csum == mbuf.CSUM_BAD or not net.ipv4_header_ok(b, ip):
        s.counters[C_DROP_IP_CHECKSUM] += 1
        return np.int64(-1), zero, zero, zero, zero, zero
    if net.get16(b, ip + net.IP_FRAG) & net.IP_MF_OFFSET:
        s.counters[C_DROP_FRAGMENT] += 1
        return np.int64(-1), zero, zero, zero, zero, zero
    dst = net.get32(b, ip + net.IP_DST)
    if not arp.owns(s, dst):
        s.counters[C_DROP_NOT_OURS] += 1
        return np.int64(-1), zero, zero, zero, zero, zero
    return np.int64(b[ip + net.IP_PROTO]), ip + ihl, ip_len - ihl, net.get32(b, ip + net.IP_SRC), dst, l4_csum


@inline
def _prefetch_lookup(s, m):
    """Ask for the cache line where frame m's connection will be looked up (a TCP frame's).

    A burst's lookups are then in flight together: on a server the hash is
    large and each new 4-tuple's line is a cache miss (perf: about half of
    tcp_input's time was that one load before this pass; over IPv6 without
    it, 40 % of tcp_input's samples sat after the hash loads and IPv6
    connections/s was 0.83 of IPv4's). An IPv6 frame's TCP header is taken
    right after the fixed header: behind extension headers the guess is
    only a wasted prefetch.
    """
    b = mbuf.data_view(m)
    ip = net.ETH_LEN
    if b.shape[0] >= ip + net.IP6_LEN + 4 and net.get16(b, net.ETH_TYPE) == net.ETH_IPV6 \
            and b[ip + net.IP6_NEXT] == net.PROTO_TCP:
        o = ip + net.IP6_LEN
        k1, k2 = tuple_keys(net.get64(b, ip + net.IP6_SRC + 8), net.get16(b, o + net.TCP_SPORT),
                            net.get64(b, ip + net.IP6_DST + 8), net.get16(b, o + net.TCP_DPORT),
                            net.get64(b, ip + net.IP6_SRC), net.get64(b, ip + net.IP6_DST))
        prefetch(lookup.prefetch_addr(s, k1, k2))
        return
    if b.shape[0] < ip + net.IP_LEN + net.TCP_LEN or net.get16(b, net.ETH_TYPE) != net.ETH_IPV4 \
            or b[ip + net.IP_PROTO] != net.PROTO_TCP:
        return
    o = ip + (np.int64(b[ip + net.IP_VER_IHL]) & 0xF) * 4
    if o + 4 > b.shape[0]:
        return
    k1, k2 = tuple_keys(net.get32(b, ip + net.IP_SRC), net.get16(b, o + net.TCP_SPORT),
                        net.get32(b, ip + net.IP_DST), net.get16(b, o + net.TCP_DPORT))
    prefetch(lookup.prefetch_addr(s, k1, k2))


@kernel
def _lose(fns, port, s, first, n):
    """Drop frames txq[first:n] at the test loss rate; returns how many frames remain queued."""
    kept = first
    for i in range(first, n):
        m = s.txq[i]
        if test_loss(s):
            s.counters[C_DROP_TEST_LOSS] += 1
            io.mbuf_free_bulk(fns, port, s.txq[i:], 1)
        else:
            s.txq[kept] = m
            kept += 1
    s.var[V_TXQ_N] = kept
    return kept


@inline
def run_timers(s, now):
    """Handle every connection whose timer tick has come, and forget passed TIME-WAITs; returns how many.

    One timers_due call walks at most one wheel turn (4.096 s) of ticks, so
    after a longer gap (a stalled process, a test that jumps in time) the
    walk repeats until the wheel has caught up with `now`.
    """
    total = time_wait.expire(s, now)
    while True:
        k = timers_due(s.tcb, s.wheel, now, s.fired)
        for j in range(k):
            tcp.tcp_timer(s, s.fired[j], now)
        total += k
        if k < s.fired.shape[0] and s.wheel[WHEEL_LAST] >= now // TICK_US:
            return total


@inline
def flush(fns, port, s, lens, cap, now):
    """Transmit the queue; returns how many frames left.

    What the port or ring does not take stays at the head of the queue for
    the next turn (V_TXQ_HELD of them): a full memif ring or lb ring means
    the peer is busy, not that the frame should be lost. Held frames leave
    less room, so TCP defers new output instead. The loss test knob drops
    frames here too (each frame once), so both directions lose them.
    """
    n = s.var[V_TXQ_N]
    if n == 0:
        return np.int64(0)
    if s.params[P_LOSS_PPM] > 0 and s.var[V_TXQ_HELD] < n:
        n = _lose(fns, port, s, s.var[V_TXQ_HELD], n)
    if capture.wanted(cap):              # the frames not tried before (held ones were taken then)
        capture.take(cap, s.txq[s.var[V_TXQ_HELD]:], n - s.var[V_TXQ_HELD], capture.OUT, now)
    for i in range(n):
        lens[i] = mbuf.pkt_len(s.txq[i])
    sent = 0
    for _ in range(TX_TRIES):
        sent += io.tx_burst(fns, port, s.txq[sent:], n - sent)
        if sent == n:
            break
    nbytes = 0
    for i in range(sent):
        nbytes += lens[i]
    s.counters[C_TX_FRAMES] += sent
    s.counters[C_TX_BYTES] += nbytes
    left = n - sent
    for j in range(left):
        s.txq[j] = s.txq[sent + j]
    s.var[V_TXQ_N] = left
    s.var[V_TXQ_HELD] = left
    return sent


@inline
def refill(fns, port, s):
    """Top the free-mbuf stash up (all-or-nothing bulk allocation)."""
    have = s.var[V_STASH_N]
    need = s.stash.shape[0] - have
    if need >= BURST:
        if io.mbuf_alloc_bulk(fns, port, s.stash[have:], need) == need:
            s.var[V_STASH_N] = have + need


@kernel
def worker_turn(fns, port, s, scratch, now):
    """One turn at time `now` (us); returns what it did (DID_* bits, 0 = an empty poll)."""
    rx, done, lens, pstate, cap = scratch
    s.var[V_NOW_US] = now
    refill(fns, port, s)
    n = io.rx_burst(fns, port, rx, BURST)
    if n > 0 and capture.wanted(cap):    # before a reply rewrites a received frame in place
        capture.take(cap, rx, n, capture.IN, now)
    for i in range(n):
        _prefetch_lookup(s, rx[i])
    nfree = 0
    for i in range(n):
        if not frame_input(s, rx[i], now):
            done[nfree] = rx[i]
            nfree += 1
    io.mbuf_free_bulk(fns, port, done, nfree)
    fired = run_timers(s, now)
    started = client_sched.tick(s, now)
    tcp.work_run(s, now)
    sent = flush(fns, port, s, lens, cap, now)
    return (DID_RX if n > 0 else 0) | (DID_TX if sent > 0 else 0) | (DID_TIMERS if fired > 0 else 0) \
        | (DID_APP if started else 0)


@kernel
def worker_poll(fns, port, s, scratch, budget_cycles, idle_cycles, max_sleep_ns, tsc0, cycles_per_us):
    """Run turns for about `budget_cycles`; returns False once the application is done."""
    pstate = scratch[3]
    start = io.tsc()
    tsc = start
    while True:
        did = worker_turn(fns, port, s, scratch, np.int64((tsc - tsc0) / cycles_per_us))
        after = io.tsc()
        idle_backoff(fns, pstate, did != 0, after, idle_cycles, max_sleep_ns)
        now = after if did != 0 else io.tsc()         # only an idle turn backs off
        account(pstate, did != 0, now - tsc)
        tsc = now
        if client_sched.finished(s):
            return False
        if tsc - start > budget_cycles:
            return True
