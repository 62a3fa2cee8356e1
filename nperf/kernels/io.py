"""A worker's I/O by name: receive and transmit a burst, allocate and free mbufs.

Kernels reach DPDK through C functions whose addresses arrive in `fns`
(`nperf.bindings.dpdk.function_table()`, in the order of `cfn.CFN_NAMES`): a
cached kernel may not reference cffi functions (see `intrinsics.call_c`).
The helpers here are the only callers, so a poll loop reads like DPDK's
l2fwd: `rx_burst`, `tx_burst`, `mbuf_alloc_bulk`, `mbuf_free_bulk`.

A worker's `Io` says where its frames come from and go to, by kind:

* PORT: a DPDK port the worker owns (memif, tap, af_packet, a NIC);
* RING: the rx/tx ring pair an lb gave it (it is the lb's secondary);
* ARRAYS: plain in-memory queues, no DPDK at all: the frame-level test
  harnesses and the benchmarks run the very same turn kernel as production
  with this kind. A queue is an int64 array [head, tail, slots...]; a pool
  is a free stack [top, mbuf addresses...] (see `new_queue`, `new_pool`).

The kind is one predictable branch per burst, not per packet.
"""
from collections import namedtuple

import numpy as np

from nperf.bindings.intrinsics import array_addr, call_c, rdtsc
from nperf.kernels import cfn
from nperf.kernels.jit import inline

Io = namedtuple("Io", ("words", "rx", "tx", "pool"))

IO_WORDS = (
    "kind",          # PORT, RING or ARRAYS
    "rx_handle",     # PORT: port id; RING: the rte_ring to receive from
    "tx_handle",     # PORT: port id; RING: the rte_ring to transmit to
    "queue",         # PORT: the queue id
    "pool",          # PORT, RING: the rte_mempool new frames come from
)
IO_KIND, IO_RX_HANDLE, IO_TX_HANDLE, IO_QUEUE, IO_POOL = range(len(IO_WORDS))
N_IO = len(IO_WORDS)

PORT, RING, ARRAYS = range(3)

Q_HEAD, Q_TAIL, Q_FIRST = 0, 1, 2      # queue words, then its slots
POOL_TOP = 0                              # pool word, then the free mbufs


def new_queue(slots: int) -> np.ndarray:
    return np.zeros(Q_FIRST + slots, np.int64)


def new_pool(addrs) -> np.ndarray:
    pool = np.zeros(len(addrs) + 1, np.int64)
    pool[POOL_TOP] = len(addrs)
    pool[1:] = addrs
    return pool


def dpdk_io(kind: int, rx_handle: int, tx_handle: int, pool: int, queue: int = 0) -> Io:
    """The Io of a worker on a DPDK port or lb ring pair."""
    words = np.array([kind, rx_handle, tx_handle, queue, pool], np.int64)
    none = np.zeros(Q_FIRST, np.int64)
    return Io(words, none, none, none)


def array_io(rx: np.ndarray, tx: np.ndarray, pool: np.ndarray) -> Io:
    """The Io of a worker on in-memory queues (`tx` of one side may be `rx` of another)."""
    return Io(np.array([ARRAYS, 0, 0, 0, 0], np.int64), rx, tx, pool)


# --- DPDK by name ------------------------------------------------------

@inline
def port_rx_burst(fns, port, queue, bufs, n):
    return call_c(fns[cfn.RX_BURST], port, queue, array_addr(bufs), n)


@inline
def port_tx_burst(fns, port, queue, bufs, n):
    return call_c(fns[cfn.TX_BURST], port, queue, array_addr(bufs), n)


@inline
def ring_enqueue_burst(fns, ring, bufs, n):
    return call_c(fns[cfn.RING_ENQUEUE], ring, array_addr(bufs), n, 0)


@inline
def ring_dequeue_burst(fns, ring, bufs, n):
    return call_c(fns[cfn.RING_DEQUEUE], ring, array_addr(bufs), n, 0)


@inline
def pool_alloc_bulk(fns, pool, bufs, n):
    """All n or nothing: n on success, else 0."""
    return call_c(fns[cfn.MBUF_ALLOC], pool, array_addr(bufs), n, 0)


@inline
def pool_free_bulk(fns, bufs, n):
    if n > 0:
        call_c(fns[cfn.MBUF_FREE], array_addr(bufs), n, 0, 0)


@inline
def tsc():
    """The TSC, read in place (rte_rdtsc is the same instruction; a call into C for it cost a poll
    loop three calls a turn)."""
    return rdtsc()


@inline
def yield_cpu(fns):
    call_c(fns[cfn.YIELD], 0, 0, 0, 0)


@inline
def sleep_ns(fns, ns):
    call_c(fns[cfn.SLEEP_NS], ns, 0, 0, 0)


# --- in-memory queues and pools ------------------------------------------

@inline
def _queue_take(q, bufs, n):
    cap = q.shape[0] - Q_FIRST
    k = min(n, q[Q_TAIL] - q[Q_HEAD])
    for i in range(k):
        bufs[i] = q[Q_FIRST + (q[Q_HEAD] + i) % cap]
    q[Q_HEAD] += k
    return k


@inline
def _queue_put(q, bufs, n):
    cap = q.shape[0] - Q_FIRST
    k = min(n, cap - (q[Q_TAIL] - q[Q_HEAD]))
    for i in range(k):
        q[Q_FIRST + (q[Q_TAIL] + i) % cap] = bufs[i]
    q[Q_TAIL] += k
    return k


@inline
def _pool_take(pool, bufs, n):
    top = pool[POOL_TOP]
    if top < n:
        return 0
    for i in range(n):
        bufs[i] = pool[top - i]
    pool[POOL_TOP] = top - n
    return n


@inline
def _pool_put(pool, bufs, n):
    top = pool[POOL_TOP]
    for i in range(n):
        pool[top + 1 + i] = bufs[i]
    pool[POOL_TOP] = top + n


# --- a worker's I/O ------------------------------------------------------

@inline
def rx_burst(fns, io, bufs, n):
    """Up to n received frames into bufs; returns how many."""
    w = io.words
    if w[IO_KIND] == ARRAYS:
        return _queue_take(io.rx, bufs, n)
    if w[IO_KIND] == RING:
        return ring_dequeue_burst(fns, w[IO_RX_HANDLE], bufs, n)
    return port_rx_burst(fns, w[IO_RX_HANDLE], w[IO_QUEUE], bufs, n)


@inline
def tx_burst(fns, io, bufs, n):
    """Transmit bufs[:n]; returns how many were taken (the rest stay the caller's)."""
    w = io.words
    if w[IO_KIND] == ARRAYS:
        return _queue_put(io.tx, bufs, n)
    if w[IO_KIND] == RING:
        return ring_enqueue_burst(fns, w[IO_TX_HANDLE], bufs, n)
    return port_tx_burst(fns, w[IO_TX_HANDLE], w[IO_QUEUE], bufs, n)


@inline
def mbuf_alloc_bulk(fns, io, bufs, n):
    """n new mbufs into bufs, all or nothing; returns n or 0."""
    if io.words[IO_KIND] == ARRAYS:
        return _pool_take(io.pool, bufs, n)
    return pool_alloc_bulk(fns, io.words[IO_POOL], bufs, n)


@inline
def mbuf_free_bulk(fns, io, bufs, n):
    if io.words[IO_KIND] == ARRAYS:
        _pool_put(io.pool, bufs, n)
    else:
        pool_free_bulk(fns, bufs, n)
