"""A hashed timing wheel over the connection table (1 ms ticks).

Each connection sits in at most one slot list, linked through its T_W_NEXT /
T_W_PREV words, keyed by T_W_DUE (the tick at which to look at it; -1 = not
queued). Timers only ever *move earlier* in the wheel: pushing a deadline
later (every ACK restarts the retransmission timer) just updates the
connection's own deadline fields, and when the slot comes round the caller
re-schedules the connection at its real next deadline. Deadlines beyond one
turn of the wheel stay in their slot and are skipped until their turn.
"""
import numpy as np

from nperf.kernels.jit import inline, kernel, step
from nperf.kernels.tcp_table import T_W_DUE, T_W_NEXT, T_W_PREV

TICK_US = 1000
WHEEL_BITS = 12
WHEEL = 1 << WHEEL_BITS           # 4.096 s per turn
WHEEL_LAST = WHEEL                # the word after the slot heads: the last tick fully processed


def new_wheel() -> np.ndarray:
    """Slot heads (-1 = empty), then WHEEL_LAST."""
    wheel = np.full(WHEEL + 1, -1, np.int64)
    wheel[WHEEL_LAST] = 0
    return wheel


@inline
def _unlink(t, heads, c):
    nxt = t[c, T_W_NEXT]
    prv = t[c, T_W_PREV]
    if prv >= 0:
        t[prv, T_W_NEXT] = nxt
    else:
        heads[t[c, T_W_DUE] & (WHEEL - 1)] = nxt
    if nxt >= 0:
        t[nxt, T_W_PREV] = prv
    t[c, T_W_DUE] = -1


@inline
def timer_cancel(t, heads, c):
    if t[c, T_W_DUE] >= 0:
        _unlink(t, heads, c)


@step
def timer_at(t, heads, c, due_us):
    """Make sure connection c is looked at no later than `due_us`.

    A deadline in a tick the wheel has already walked (due now, or passed)
    goes in the next tick to walk: in its own slot it would wait a whole turn.
    """
    tick = max((due_us + TICK_US - 1) // TICK_US, heads[WHEEL_LAST] + 1)
    if t[c, T_W_DUE] >= 0:
        if t[c, T_W_DUE] <= tick:
            return
        _unlink(t, heads, c)
    slot = tick & (WHEEL - 1)
    head = heads[slot]
    t[c, T_W_NEXT] = head
    t[c, T_W_PREV] = -1
    if head >= 0:
        t[head, T_W_PREV] = c
    heads[slot] = c
    t[c, T_W_DUE] = tick


@kernel
def timers_due(t, heads, now_us, out):
    """Unlink connections whose tick has come, into `out`; returns how many.

    Stops early when `out` is full (the rest are found by the next call);
    at most one wheel turn of ticks is walked per call, so after a stall
    longer than a turn the next calls catch up a turn at a time.
    """
    n = 0
    now_tick = now_us // TICK_US
    tick = heads[WHEEL_LAST] + 1
    last = min(now_tick, heads[WHEEL_LAST] + WHEEL)
    while tick <= last:
        c = heads[tick & (WHEEL - 1)]
        while c >= 0:
            nxt = t[c, T_W_NEXT]
            if t[c, T_W_DUE] <= tick:
                if n == out.shape[0]:
                    return n
                _unlink(t, heads, c)
                out[n] = c
                n += 1
            c = nxt
        heads[WHEEL_LAST] = tick
        tick += 1
    return n
