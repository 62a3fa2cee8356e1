"""A hashed timing wheel over the connection table (1 ms ticks).

Each connection sits in at most one slot list, linked through `t.w_next` /
`t.w_prev`, keyed by `t.w_due` (the tick at which to look at it; -1 = not
queued). Timers only ever *move earlier* in the wheel: pushing a deadline
later (every ACK restarts the retransmission timer) just updates the
connection's own deadline fields, and when the slot comes round the caller
re-schedules the connection at its real next deadline. Deadlines beyond one
turn of the wheel stay in their slot and are skipped until their turn.
"""
import numpy as np

from nperf.kernels.jit import inline, kernel

TICK_US = 1000
WHEEL_BITS = 12
WHEEL = 1 << WHEEL_BITS           # 4.096 s per turn
W_LAST = 0                        # wheel state: last tick fully processed
N_WHEEL_STATE = 1


def new_wheel() -> tuple[np.ndarray, np.ndarray]:
    """(slot heads, state); call `wheel_start` before use."""
    return np.full(WHEEL, -1, np.int64), np.zeros(N_WHEEL_STATE, np.int64)


@inline
def wheel_start(wstate, now_us):
    wstate[W_LAST] = now_us // TICK_US


@inline
def _unlink(t, heads, c):
    nxt = t.w_next[c]
    prv = t.w_prev[c]
    if prv >= 0:
        t.w_next[prv] = nxt
    else:
        heads[t.w_due[c] & (WHEEL - 1)] = nxt
    if nxt >= 0:
        t.w_prev[nxt] = prv
    t.w_due[c] = -1


@inline
def timer_cancel(t, heads, c):
    if t.w_due[c] >= 0:
        _unlink(t, heads, c)


@inline
def timer_at(t, heads, c, due_us):
    """Make sure connection c is looked at no later than `due_us`."""
    tick = (due_us + TICK_US - 1) // TICK_US
    if t.w_due[c] >= 0:
        if t.w_due[c] <= tick:
            return
        _unlink(t, heads, c)
    slot = tick & (WHEEL - 1)
    head = heads[slot]
    t.w_next[c] = head
    t.w_prev[c] = -1
    if head >= 0:
        t.w_prev[head] = c
    heads[slot] = c
    t.w_due[c] = tick


@kernel
def timers_due(t, heads, wstate, now_us, out):
    """Unlink connections whose tick has come, into `out`; returns how many.

    Stops early when `out` is full (the rest are found by the next call);
    at most one wheel turn of ticks is walked per call, so after a stall
    longer than a turn the next calls catch up a turn at a time.
    """
    n = 0
    now_tick = now_us // TICK_US
    tick = wstate[W_LAST] + 1
    last = min(now_tick, wstate[W_LAST] + WHEEL)
    while tick <= last:
        c = heads[tick & (WHEEL - 1)]
        while c >= 0:
            nxt = t.w_next[c]
            if t.w_due[c] <= tick:
                if n == out.shape[0]:
                    return n
                _unlink(t, heads, c)
                out[n] = c
                n += 1
            c = nxt
        wstate[W_LAST] = tick
        tick += 1
    return n
