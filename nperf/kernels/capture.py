"""`--pcap FILE [--pcap-count N]`: the first N frames in and out, copied as they pass.

A `Capture` is preallocated: N slots of SNAP bytes and, per slot, the time,
the direction and the frame's length. The poll loops copy received frames
before anything reads or rewrites them (a reply reuses the received mbuf)
and transmitted frames just before the burst goes out, while fewer than N
are taken. When capture is off (N = 0, the default) the only cost is one
comparison per burst. Python writes the pcapng file at the end
(`nperf.roles.pcapng`).
"""
from collections import namedtuple

import numpy as np

from nperf.kernels import mbuf
from nperf.kernels.jit import inline

SNAP = 2048                  # bytes kept of each frame (a packet buffer's worth)
IN, OUT = 1, 2               # directions, as pcapng's epb_flags inbound / outbound

Capture = namedtuple("Capture", ("words", "data", "meta"))
CAPTURE_WORDS = (
    "limit",     # frames to take (N)
    "taken",     # frames taken so far
)
CP_LIMIT, CP_TAKEN = range(len(CAPTURE_WORDS))
META_WORDS = (
    "time",      # when, on the poll loop's clock (a worker's microseconds, the lb's TSC)
    "dir",       # IN or OUT
    "length",    # the frame's length on the wire (the copy holds at most SNAP bytes of it)
)
M_TIME, M_DIR, M_LEN = range(len(META_WORDS))


def new_capture(limit: int) -> Capture:
    n = max(limit, 1)
    words = np.zeros(len(CAPTURE_WORDS), np.int64)
    words[CP_LIMIT] = limit
    return Capture(words, np.zeros((n, SNAP), np.uint8), np.zeros((n, len(META_WORDS)), np.int64))


@inline
def wanted(cap):
    """Whether frames are still to be taken (the one test a burst pays when capture is off)."""
    return cap.words[CP_TAKEN] < cap.words[CP_LIMIT]


@inline
def take(cap, bufs, n, direction, now):
    """Copy frames bufs[:n] (mbuf addresses) while slots are left."""
    w = cap.words
    for i in range(n):
        k = w[CP_TAKEN]
        if k >= w[CP_LIMIT]:
            return
        b = mbuf.data_view(bufs[i])
        length = mbuf.pkt_len(bufs[i])
        kept = min(b.shape[0], SNAP)
        row = cap.data[k]
        for j in range(kept):               # a loop: a slice assignment would need a temporary copy
            row[j] = b[j]
        cap.meta[k, M_TIME] = now
        cap.meta[k, M_DIR] = direction
        cap.meta[k, M_LEN] = length
        w[CP_TAKEN] = k + 1


def frames(cap: Capture) -> list[tuple[int, int, int, bytes]]:
    """(time, direction, length, bytes kept) of every frame taken, in order."""
    out = []
    for k in range(int(cap.words[CP_TAKEN])):
        length = int(cap.meta[k, M_LEN])
        out.append((int(cap.meta[k, M_TIME]), int(cap.meta[k, M_DIR]), length,
                    cap.data[k, :min(length, SNAP)].tobytes()))
    return out
