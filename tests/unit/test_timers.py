"""The timer wheel (nperf.kernels.timers) on arrays: deadlines fire at their tick, never a turn late."""
import numpy as np

from nperf.kernels import tcp_table, timers
from nperf.kernels.timers import TICK_US, WHEEL_LAST, WHEEL, timer_at, timer_cancel, timers_due


def wheel_at(tick: int, conns: int = 4):
    t = tcp_table.new_tcb(conns)
    t[:, tcp_table.T_W_DUE] = -1
    heads = timers.new_wheel()
    heads[WHEEL_LAST] = tick
    return t, heads, np.zeros(16, np.int64)


def test_a_deadline_in_a_tick_already_walked_fires_at_the_next_walk():
    t, heads, out = wheel_at(1000)                       # ticks up to 1000 (1.000 s) are done
    timer_at(t, heads, 0, 1000 * TICK_US)                # due now: e.g. delayed_ack_ms = 0
    timer_at(t, heads, 1, 990 * TICK_US)                 # already passed
    assert timers_due(t, heads, 1001 * TICK_US, out) == 2
    assert sorted(out[:2].tolist()) == [0, 1]
    assert heads[WHEEL_LAST] == 1001 and t[0, tcp_table.T_W_DUE] == -1


def test_deadlines_fire_in_their_own_tick_and_not_before():
    t, heads, out = wheel_at(1000)
    timer_at(t, heads, 2, 1005 * TICK_US - 1)            # rounds up to tick 1005
    timer_at(t, heads, 3, (1000 + WHEEL - 1) * TICK_US)  # almost a whole turn ahead
    assert timers_due(t, heads, 1004 * TICK_US, out) == 0
    assert timers_due(t, heads, 1005 * TICK_US, out) == 1 and out[0] == 2
    assert timers_due(t, heads, (1000 + WHEEL - 2) * TICK_US, out) == 0
    assert timers_due(t, heads, (1000 + WHEEL - 1) * TICK_US, out) == 1 and out[0] == 3


def test_an_earlier_deadline_moves_the_timer_and_cancel_unlinks_it():
    t, heads, out = wheel_at(0)
    timer_at(t, heads, 0, 50 * TICK_US)
    timer_at(t, heads, 0, 20 * TICK_US)                  # earlier: moved
    timer_at(t, heads, 0, 40 * TICK_US)                  # later than the one set: kept at 20
    assert t[0, tcp_table.T_W_DUE] == 20
    timer_at(t, heads, 1, 20 * TICK_US)
    timer_cancel(t, heads, 0)
    assert timers_due(t, heads, 60 * TICK_US, out) == 1 and out[0] == 1
