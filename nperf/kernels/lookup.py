"""Where a 4-tuple's connection lives: a direct index on the client, the hash on the server.

A value is a connection row (0 <= v < time_wait.TAG), a TIME-WAIT record
(TAG + index) or -1. Keys are `tcp_table.tuple_keys`: k1 = remote ip << 16
| port, k2 = local ip << 16 | port.

The client chooses its local (ip, port) itself, from its configured source
ranges, one pair after the other (`client_sched`). So a pair's position in
those ranges is an index into a plain array (`s.pairs`, one [k1, value] row
per source pair, with the time it was last freed), as in dperf's socket table: no hashing, and the rows a run
touches are the ones its cursor walked last, next to each other in memory,
instead of one random hash line per lookup. One connection per local pair:
a pair still held (open or in TIME-WAIT) is skipped by the scheduler, never
shared between two destinations. A server meets peers from anywhere, so it
keeps the open-addressing hash (`tcp_table.hash_*`). A client of both
families indexes its IPv4 source addresses first, then its IPv6 ones (keyed
by their last 32 bits: tcp_table.tuple_keys).
"""
import numpy as np

from nperf.bindings.intrinsics import array_addr
from nperf.kernels import tables
from nperf.kernels.jit import inline
from nperf.kernels.stack import (P_DIRECT, P_IP6_COUNT, P_IP6_FIRST, P_IP_COUNT, P_IP_FIRST, P_PORT_FIRST,
                                 P_PORT_LAST, V_NOW_US)
from nperf.kernels.tcp_table import V6_KEY, hash_find, hash_home_addr, hash_insert, hash_remove, hash_set

M32 = 0xFFFFFFFF

PK1, PVAL, PFREED = 0, 1, 2      # words of a pairs row: remote key, value, when last freed (us)


def new_pairs(ip_count: int, port_count: int) -> np.ndarray:
    """One row per local (ip, port) pair, all free."""
    p = tables.zeros((ip_count * port_count, 3))
    p[:, PVAL] = -1
    return p


@inline
def pair_index(s, k2):
    """The row of local pair k2 in s.pairs, or -1 if it is outside the source ranges."""
    p = s.params
    if k2 & V6_KEY:
        i = ((k2 >> 16) & M32) - (p[P_IP6_FIRST] & M32)
        n = p[P_IP6_COUNT]
        base = p[P_IP_COUNT]
    else:
        i = (k2 >> 16) - p[P_IP_FIRST]
        n = p[P_IP_COUNT]
        base = np.int64(0)
    port = k2 & 0xFFFF
    if i < 0 or i >= n or port < p[P_PORT_FIRST] or port > p[P_PORT_LAST]:
        return np.int64(-1)
    return base + i + (port - p[P_PORT_FIRST]) * (p[P_IP_COUNT] + p[P_IP6_COUNT])


@inline
def find(s, k1, k2):
    if s.params[P_DIRECT]:
        i = pair_index(s, k2)
        if i < 0 or s.pairs[i, PK1] != k1:
            return np.int64(-1)
        return s.pairs[i, PVAL]
    return hash_find(s.hash, k1, k2)


@inline
def prefetch_addr(s, k1, k2):
    """The address where find(s, k1, k2) will look first."""
    if s.params[P_DIRECT]:
        return array_addr(s.pairs) + max(pair_index(s, k2), 0) * (3 * 8)
    return hash_home_addr(s.hash, k1, k2)


@inline
def pair_free(s, k2):
    """Whether a client may open a connection from local pair k2 (nothing holds it)."""
    i = pair_index(s, k2)
    return i >= 0 and s.pairs[i, PVAL] < 0


@inline
def insert(s, k1, k2, v):
    """Enter a new key (on the client its local pair must be free: see pair_free)."""
    if s.params[P_DIRECT]:
        i = pair_index(s, k2)
        s.pairs[i, PK1] = k1
        s.pairs[i, PVAL] = v
    else:
        hash_insert(s.hash, k1, k2, v)


@inline
def set_value(s, k1, k2, v):
    """Give an existing key the value v (a connection handing its 4-tuple to a TIME-WAIT record)."""
    if s.params[P_DIRECT]:
        i = pair_index(s, k2)
        if i >= 0 and s.pairs[i, PK1] == k1:
            s.pairs[i, PVAL] = v
    else:
        hash_set(s.hash, k1, k2, v)


@inline
def remove(s, k1, k2):
    if s.params[P_DIRECT]:
        i = pair_index(s, k2)
        if i >= 0 and s.pairs[i, PK1] == k1:
            s.pairs[i, PVAL] = -1
            s.pairs[i, PFREED] = s.var[V_NOW_US]
    else:
        hash_remove(s.hash, k1, k2)
