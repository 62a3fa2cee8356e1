"""A worker's whole poll loop as one kernel: receive, protocols, timers, transmit.

The loop reads from and writes to either a port or the lb's ring pair: `io`
holds the two C functions and their handles, both with the port bursts'
argument order (see `_build.py`). Per turn: top up the free-mbuf stash,
receive a burst and hand each frame to ARP/ICMP/TCP, run due timers, let the
application start new work (the client's scheduler), send what connections
may send, transmit the queue. `frame_input` is also what the array tests
drive directly.
"""
import numpy as np

from nperf.bindings.intrinsics import array_addr, call_c
from nperf.kernels import app, arp, cfn, client_sched, mbuf, net, tcp
from nperf.kernels.jit import kernel
from nperf.kernels.poll import N_POLL_STATE, idle_backoff
from nperf.kernels.stack import (C_DROP_BAD_IP, C_DROP_FRAGMENT, C_DROP_IP_CHECKSUM, C_DROP_NOT_OURS,
                                 C_DROP_PROTOCOL, C_DROP_TEST_LOSS, C_RX_BYTES, C_RX_FRAMES, C_TX_BYTES,
                                 C_TX_FRAMES, P_LOSS_PPM, P_MAC, V_NOW_US, V_STASH_N, V_TXQ_HELD, V_TXQ_N, random64)
from nperf.kernels.timers import timers_due

BURST = 32
BROADCAST = 0xFFFFFFFFFFFF
TX_TRIES = 4

# io words
IO_RX_FN, IO_TX_FN, IO_RX_HANDLE, IO_TX_HANDLE, IO_QUEUE, IO_POOL, N_IO = range(7)


class LoopScratch:
    """Burst arrays and the poll state, kept between slices."""

    def __init__(self):
        self.rx = np.zeros(BURST, np.int64)
        self.done = np.zeros(BURST, np.int64)
        self.lens = np.zeros(1024, np.int64)
        self.pstate = np.zeros(N_POLL_STATE, np.int64)

    def arrays(self):
        return self.rx, self.done, self.lens, self.pstate


@kernel
def test_loss(s):
    """The test knob: drop a frame with probability P_LOSS_PPM / 1e6."""
    return (random64(s) & 0x7FFFFFFF) % 1_000_000 < s.params[P_LOSS_PPM]


@kernel
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
        s.counters[C_DROP_BAD_IP] += 1
        return False
    dst_mac = net.get_mac(b, 0)
    if dst_mac != s.params[P_MAC] and dst_mac != BROADCAST:
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    ethertype = net.get16(b, 12)
    if ethertype == net.ETH_ARP:
        return arp.arp_input(s, b, n, m)
    if ethertype != net.ETH_IPV4:
        s.counters[C_DROP_PROTOCOL] += 1
        return False
    if n < net.ETH_LEN + net.IP_LEN or b[14] >> 4 != 4:
        s.counters[C_DROP_BAD_IP] += 1
        return False
    ihl = (np.int64(b[14]) & 0xF) * 4
    ip_len = net.get16(b, 16)
    if ihl < net.IP_LEN or ip_len < ihl or net.ETH_LEN + ip_len > n:
        s.counters[C_DROP_BAD_IP] += 1
        return False
    if not net.ipv4_header_ok(b, net.ETH_LEN):
        s.counters[C_DROP_IP_CHECKSUM] += 1
        return False
    if net.get16(b, 20) & 0x3FFF:
        s.counters[C_DROP_FRAGMENT] += 1
        return False
    if not arp.owns(s, net.get32(b, 30)):
        s.counters[C_DROP_NOT_OURS] += 1
        return False
    proto = b[23]
    if proto == net.PROTO_TCP:
        tcp.tcp_input(s, b, n, ihl, ip_len, now)
        return False
    if proto == net.PROTO_ICMP:
        return arp.icmp_echo(s, b, n, ihl, ip_len, m)
    if proto == net.PROTO_UDP:
        app.udp_input(s, b, n, ihl, ip_len, now)
        return False
    s.counters[C_DROP_PROTOCOL] += 1
    return False


@kernel
def _lose(fns, s, first, n):
    """Drop frames txq[first:n] at the test loss rate; returns how many frames remain queued."""
    kept = first
    for i in range(first, n):
        m = s.txq[i]
        if test_loss(s):
            s.counters[C_DROP_TEST_LOSS] += 1
            call_c(fns[cfn.MBUF_FREE], array_addr(s.txq[i:]), 1, 0, 0)
        else:
            s.txq[kept] = m
            kept += 1
    s.var[V_TXQ_N] = kept
    return kept


@kernel
def run_timers(s, now):
    """Handle every connection whose timer tick has come; returns how many."""
    total = 0
    while True:
        k = timers_due(s.tcb, s.wheel, now, s.fired)
        for j in range(k):
            tcp.tcp_timer(s, s.fired[j], now)
        total += k
        if k < s.fired.shape[0]:
            return total


@kernel
def flush(fns, io, s, lens):
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
        n = _lose(fns, s, s.var[V_TXQ_HELD], n)
    for i in range(n):
        lens[i] = mbuf.pkt_len(s.txq[i])
    sent = 0
    for _ in range(TX_TRIES):
        sent += call_c(fns[io[IO_TX_FN]], io[IO_TX_HANDLE], io[IO_QUEUE], array_addr(s.txq[sent:]), n - sent)
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


@kernel
def refill(fns, io, s):
    """Top the free-mbuf stash up (all-or-nothing bulk allocation)."""
    have = s.var[V_STASH_N]
    need = s.stash.shape[0] - have
    if need >= BURST:
        if call_c(fns[cfn.MBUF_ALLOC], io[IO_POOL], array_addr(s.stash[have:]), need, 0) == need:
            s.var[V_STASH_N] = have + need


@kernel
def worker_poll(fns, io, s, scratch, budget_cycles, idle_cycles, max_sleep_ns, tsc0, cycles_per_us):
    """Run the worker for about `budget_cycles`; returns False once the application is done."""
    rx, done, lens, pstate = scratch
    start = call_c(fns[cfn.TSC], 0, 0, 0, 0)
    tsc = start
    while True:
        now = np.int64((tsc - tsc0) / cycles_per_us)
        s.var[V_NOW_US] = now
        refill(fns, io, s)
        n = call_c(fns[io[IO_RX_FN]], io[IO_RX_HANDLE], io[IO_QUEUE], array_addr(rx), BURST)
        nfree = 0
        for i in range(n):
            if not frame_input(s, rx[i], now):
                done[nfree] = rx[i]
                nfree += 1
        if nfree:
            call_c(fns[cfn.MBUF_FREE], array_addr(done), nfree, 0, 0)
        fired = run_timers(s, now)
        busy = client_sched.tick(s, now)
        tcp.work_run(s, now)
        sent = flush(fns, io, s, lens)
        tsc = call_c(fns[cfn.TSC], 0, 0, 0, 0)
        idle_backoff(fns, pstate, n > 0 or sent > 0 or fired > 0 or busy, tsc, idle_cycles, max_sleep_ns)
        if client_sched.finished(s):
            return False
        if tsc - start > budget_cycles:
            return True
