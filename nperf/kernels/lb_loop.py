"""The lb's whole poll loop as one kernel: port → worker RX rings, worker TX rings → port.

Python calls `lb_poll` repeatedly; each call runs for `budget_cycles` TSC
cycles and returns, so the asyncio controller can print statistics and notice
signals between slices. Nothing is dropped on the TX side in steady state:
frames the port does not take stay in `pending` and the loop dequeues from the
worker rings only what fits, so back-pressure reaches the workers' TX rings
(their producers count what they could not enqueue).

With an impairment stage configured (`nperf.kernels.impair`), frames from
the port pass it before they are sorted to the workers, and frames from the
workers pass it before `pending`; a direction without impairment skips it,
one branch per turn.
"""
import numpy as np

from nperf.kernels import capture, impair, io, mbuf
from nperf.kernels.jit import inline, kernel
from nperf.kernels.dispatch import DROP_PORT_TX_FULL, DROP_RING_FULL, TX_BYTES, TX_PACKETS, sort_burst
from nperf.kernels.poll import N_POLL_STATE, POLL_WORDS, account, idle_backoff

BURST = 32
PENDING = 256

WORKER_COUNTER_NAMES = (        # per-worker counters (rows of the lb shared area)
    "to_worker",        # frames put on the worker's RX ring
    "from_worker",      # frames taken from its TX ring
    "ring_full",        # frames its RX ring had no room for (dropped, counted in worker_ring_full too)
)
WC_TO_WORKER, WC_FROM_WORKER, WC_RING_FULL = range(len(WORKER_COUNTER_NAMES))
N_WORKER_COUNTERS = 4           # a row's words: one spare

LB_STATE_WORDS = POLL_WORDS + (  # the loop's state words: the poll state's, then the lb's own
    "pending",          # frames taken from the workers that the port has not taken yet
    "next_ring",        # the worker TX ring to dequeue from first next time (round robin)
)
PS_PENDING, PS_NEXT_RING = range(N_POLL_STATE, len(LB_STATE_WORDS))
N_STATE = len(LB_STATE_WORDS)


class LbScratch:
    """Preallocated arrays the loop works in, kept between calls."""

    def __init__(self, nworkers: int, capture_limit: int = 0):
        self.capture = capture.new_capture(capture_limit)      # --pcap: frames in from and out to the port
        self.rx = np.zeros(BURST, np.int64)
        self.staged = np.zeros(2 * BURST, np.int64)      # frames out of the impairment stage
        self.buckets = np.zeros((nworkers, 2 * BURST), np.int64)
        self.bucket_len = np.zeros(nworkers, np.int64)
        self.drops = np.zeros(2 * BURST, np.int64)
        self.pending = np.zeros(PENDING, np.int64)
        self.pending_len = np.zeros(PENDING, np.int64)
        self.state = np.zeros(N_STATE, np.int64)

    def arrays(self):
        return (self.rx, self.staged, self.buckets, self.bucket_len, self.drops,
                self.pending, self.pending_len, self.state, self.capture)


@inline
def _to_workers(fns, rx_rings, buckets, bucket_len, counters, wcounters):
    for w in range(bucket_len.shape[0]):
        k = bucket_len[w]
        if k == 0:
            continue
        row = buckets[w]
        sent = io.ring_enqueue_burst(fns, rx_rings[w], row, k)
        wcounters[w, WC_TO_WORKER] += sent
        if sent < k:
            counters[DROP_RING_FULL] += k - sent
            wcounters[w, WC_RING_FULL] += k - sent
            io.pool_free_bulk(fns, row[sent:], k - sent)
        bucket_len[w] = 0


@inline
def _from_workers(fns, tx_rings, dst, nfill, cap, state, wcounters):
    """Top up dst[nfill:cap] from the worker TX rings, round robin; returns the fill."""
    nw = tx_rings.shape[0]
    first = state[PS_NEXT_RING]
    for i in range(nw):
        space = cap - nfill
        if space == 0:
            break
        w = (first + i) % nw
        got = io.ring_dequeue_burst(fns, tx_rings[w], dst[nfill:], min(space, BURST))
        wcounters[w, WC_FROM_WORKER] += got
        nfill += got
    state[PS_NEXT_RING] = (first + 1) % nw
    return nfill


@inline
def _to_pending(fns, io_, imp, tx_rings, pending, pending_len, state, wcounters, staged, tsc):
    """Frames the workers give (through the impairment stage if it works this way) onto `pending`."""
    npend = state[PS_PENDING]
    if imp.params[impair.TO_PORT, impair.P_ON]:
        got = _from_workers(fns, tx_rings, staged, 0, min(BURST, impair.room(imp, impair.TO_PORT) // 2),
                            state, wcounters)
        impair.offer(fns, io_, imp, impair.TO_PORT, staged, got, tsc)
        fill = npend + impair.take(fns, io_, imp, impair.TO_PORT, pending[npend:], PENDING - npend, tsc)
    else:
        fill = _from_workers(fns, tx_rings, pending, npend, PENDING, state, wcounters)
    for j in range(npend, fill):
        pending_len[j] = mbuf.pkt_len(pending[j])
    return fill


@inline
def _to_port(fns, port, pending, pending_len, npend, counters):
    """Transmit what the port takes; the rest moves to the front of `pending`."""
    sent = io.port_tx_burst(fns, port, 0, pending, min(npend, BURST * 2))
    nbytes = 0
    for j in range(sent):
        nbytes += pending_len[j]
    counters[TX_PACKETS] += sent
    counters[TX_BYTES] += nbytes
    left = npend - sent
    for j in range(left):
        pending[j] = pending[sent + j]
        pending_len[j] = pending_len[sent + j]
    return sent, left


@kernel
def lb_poll(fns, port, rx_rings, tx_rings, table, scratch, counters, wcounters, io_, imp,
            budget_cycles, idle_cycles, max_sleep_ns):
    """Forward for about `budget_cycles` TSC cycles, then return to Python."""
    rx, staged, buckets, bucket_len, drops, pending, pending_len, state, cap = scratch
    start = io.tsc()
    tsc = start
    while True:
        n = io.port_rx_burst(fns, port, 0, rx, BURST)
        if n > 0 and capture.wanted(cap):
            capture.take(cap, rx, n, capture.IN, tsc)
        frames = rx
        if imp.params[impair.TO_WORKERS, impair.P_ON]:
            impair.offer(fns, io_, imp, impair.TO_WORKERS, rx, n, tsc)
            n = impair.take(fns, io_, imp, impair.TO_WORKERS, staged, staged.shape[0], tsc)
            frames = staged
        before = state[PS_PENDING]
        if n > 0:
            ndrop = sort_burst(frames, n, table, buckets, bucket_len, drops, counters)
            io.pool_free_bulk(fns, drops, ndrop)
            _to_workers(fns, rx_rings, buckets, bucket_len, counters, wcounters)
        npend = _to_pending(fns, io_, imp, tx_rings, pending, pending_len, state, wcounters, staged, tsc)
        if npend > before and capture.wanted(cap):          # the frames the workers just gave
            capture.take(cap, pending[before:], npend - before, capture.OUT, tsc)
        sent = 0
        if npend:
            sent, npend = _to_port(fns, port, pending, pending_len, npend, counters)
        state[PS_PENDING] = npend
        did = n > 0 or sent > 0
        idle_backoff(fns, state, did, io.tsc(), idle_cycles, max_sleep_ns)
        now = io.tsc()
        account(state, did, now - tsc)
        tsc = now
        if now - start > budget_cycles:
            return


@kernel
def lb_flush(fns, port, scratch, counters, io_, imp, tries):
    """At stop: transmit what is pending, free and count what the port refuses and what the
    impairment stage still holds."""
    rx, staged, buckets, bucket_len, drops, pending, pending_len, state, cap = scratch
    npend = state[PS_PENDING]
    for _ in range(tries):
        if npend == 0:
            break
        sent, npend = _to_port(fns, port, pending, pending_len, npend, counters)
    if npend:
        counters[DROP_PORT_TX_FULL] += npend
        io.pool_free_bulk(fns, pending, npend)
    state[PS_PENDING] = 0
    impair.discard_all(fns, io_, imp)
