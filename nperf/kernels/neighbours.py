"""The neighbour cache: peers' MAC addresses, for IPv4 (ARP) and IPv6 (neighbour discovery) alike.

A client resolves each destination before its first connection (the
scheduler asks `due`, and sends an ARP request or a neighbour solicitation
when a try is due: `client_sched._resolve`); `arp` and `ndp` enter the
answers. One small open-addressing table, keyed by `key`: an IPv4 address
as it is, an IPv6 one folded to 46 bits with the flag that keeps it apart
(as the connection hash keys it: `tcp_table.tuple_keys`). A row that is not
answered after P_ARP_TRIES requests, P_ARP_RETRY_US apart, fails for good.
This module sends nothing, so that `arp` and `ndp` can both use it.
"""
import numpy as np

from nperf.kernels.jit import inline
from nperf.kernels.stack import P_ARP_RETRY_US, P_ARP_TRIES
from nperf.kernels.tcp_table import V6_KEY, fold6, wrapping_mul

SLOTS = 1024
SPREAD = np.uint64(40503)       # a key's multiplier: consecutive IPv4 addresses land on distinct rows
N_EMPTY, N_PENDING, N_RESOLVED, N_FAILED = 0, 1, 2, 3       # a row's states

ROW_WORDS = (                    # one row per peer
    "key",          # `key` of its address
    "mac",          # its MAC address, once resolved
    "state",        # N_* above
    "tries",        # requests sent so far
    "next_try",     # when the next request is due (us)
)
NR_KEY, NR_MAC, NR_STATE, NR_TRIES, NR_NEXT_TRY = range(len(ROW_WORDS))

# what `due` says of an address, when not its MAC
PENDING = -1            # asked, no answer yet
FAILED = -2             # given up
JUST_FAILED = -3        # given up in this very call: the one answer a caller counts


def new_cache() -> np.ndarray:
    return np.zeros((SLOTS, len(ROW_WORDS)), np.int64)


@inline
def key(hi, lo):
    """The cache key of address (hi, lo); hi 0: the IPv4 address lo."""
    if hi == 0:
        return lo
    return V6_KEY | fold6(hi, lo)


@inline
def _slot(cache, k):
    """The row holding key k, or the empty row where it would go (-1 if the cache is full)."""
    i = wrapping_mul(k, SPREAD) & (SLOTS - 1)       # an IPv6 key's product overflows: see wrapping_mul
    for _ in range(SLOTS):
        if cache[i, NR_STATE] == N_EMPTY or cache[i, NR_KEY] == k:
            return i
        i = (i + 1) & (SLOTS - 1)
    return np.int64(-1)


@inline
def learn(cache, k, mac):
    """k is at mac (an answer, or a peer's own request)."""
    i = _slot(cache, k)
    if i >= 0:
        cache[i, NR_KEY] = k
        cache[i, NR_MAC] = mac
        cache[i, NR_STATE] = N_RESOLVED


@inline
def update(cache, k, mac):
    """k is at mac, if k has a row already (an unsolicited IPv6 advertisement creates none:
    RFC 4861 7.2.5)."""
    i = _slot(cache, k)
    if i >= 0 and cache[i, NR_STATE] != N_EMPTY:
        learn(cache, k, mac)


@inline
def due(s, k, now):
    """Where key k stands: (its MAC, or PENDING, FAILED, JUST_FAILED; the row whose request is due
    now, or -1). A caller that sends that request says so with `asked`."""
    cache = s.neighbours
    i = _slot(cache, k)
    if i < 0:
        return np.int64(FAILED), np.int64(-1)
    state = cache[i, NR_STATE]
    if state == N_RESOLVED:
        return cache[i, NR_MAC], np.int64(-1)
    if state == N_FAILED:
        return np.int64(FAILED), np.int64(-1)
    if state == N_EMPTY:
        cache[i, NR_KEY] = k
        cache[i, NR_STATE] = N_PENDING
        cache[i, NR_TRIES] = 0
        cache[i, NR_NEXT_TRY] = now
    if now < cache[i, NR_NEXT_TRY]:
        return np.int64(PENDING), np.int64(-1)
    if cache[i, NR_TRIES] >= s.params[P_ARP_TRIES]:
        cache[i, NR_STATE] = N_FAILED
        return np.int64(JUST_FAILED), np.int64(-1)
    return np.int64(PENDING), i


@inline
def asked(s, i, now):
    """Row i's request went out."""
    s.neighbours[i, NR_TRIES] += 1
    s.neighbours[i, NR_NEXT_TRY] = now + s.params[P_ARP_RETRY_US]
