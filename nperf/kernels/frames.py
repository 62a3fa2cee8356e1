"""Whole frames in and out of rings: for test workers and benchmark generators.

Frames are rows of a 2-D uint8 array with their lengths beside; each call moves
a burst between those rows and mbufs on a ring, allocating or freeing the
mbufs in bulk. `bufs` is a caller-owned int64 scratch array of BURST entries.
"""
from nperf.bindings.intrinsics import array_addr, call_c
from nperf.kernels import cfn, mbuf
from nperf.kernels.bytes_util import copy_bytes
from nperf.kernels.jit import kernel

BURST = 32


@kernel
def inject(fns, pool, ring, frames, lens, first, count, bufs):
    """Put frames[first:first+count] on `ring` in new mbufs; returns how many went."""
    done = 0
    while done < count:
        k = min(BURST, count - done)
        if call_c(fns[cfn.MBUF_ALLOC], pool, array_addr(bufs), k, 0) != k:
            break
        for i in range(k):
            n = lens[first + done + i]
            copy_bytes(mbuf.buffer_view(bufs[i]), 0, frames[first + done + i], 0, n)
            mbuf.set_len(bufs[i], n)
        sent = call_c(fns[cfn.RING_ENQUEUE], ring, array_addr(bufs), k, 0)
        if sent < k:
            call_c(fns[cfn.MBUF_FREE], array_addr(bufs[sent:]), k - sent, 0, 0)
        done += sent
        if sent < k:
            break
    return done


@kernel
def collect(fns, ring, frames, lens, at, bufs):
    """Move one burst from `ring` into frames[at:], freeing the mbufs.

    Frames longer than a row are cut to the row (their true length is kept in
    `lens`); returns how many frames were taken (0 when the ring is empty or
    the rows are full).
    """
    room = frames.shape[0] - at
    if room <= 0:
        return 0
    n = call_c(fns[cfn.RING_DEQUEUE], ring, array_addr(bufs), min(BURST, room), 0)
    for i in range(n):
        length = mbuf.data_len(bufs[i])
        keep = min(length, frames.shape[1])
        copy_bytes(frames[at + i], 0, mbuf.data_view(bufs[i]), 0, keep)
        lens[at + i] = length
    if n:
        call_c(fns[cfn.MBUF_FREE], array_addr(bufs), n, 0, 0)
    return n
