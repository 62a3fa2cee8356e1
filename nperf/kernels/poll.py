"""Shared pieces of every poll loop: idle back-off and the time budget.

On this 2-core machine four busy-polling processes starve each other, so a
loop that finds no work sleeps, doubling the sleep up to a ceiling, and the
first packet resets it. The loop state lives in a small int64 array so that it
survives the loop returning to Python between slices.
"""
from numba import njit

from nperf.bindings.intrinsics import call_c
from nperf.kernels import cfn

IDLE_SPINS = 64          # empty polls before the first sleep
FIRST_SLEEP_NS = 10_000

# poll state words
S_IDLE = 0               # consecutive empty polls
S_SLEEP = 1              # current sleep length (ns)
N_POLL_STATE = 2


@njit(cache=True, inline="always")
def idle_backoff(fns, pstate, did_work, max_sleep_ns):
    """Call once per loop turn; sleeps when the loop has been idle a while."""
    if did_work:
        pstate[S_IDLE] = 0
        pstate[S_SLEEP] = FIRST_SLEEP_NS
        return
    pstate[S_IDLE] += 1
    if pstate[S_IDLE] >= IDLE_SPINS:
        ns = pstate[S_SLEEP] if pstate[S_SLEEP] > 0 else FIRST_SLEEP_NS
        call_c(fns[cfn.SLEEP_NS], ns, 0, 0, 0)
        pstate[S_SLEEP] = min(ns * 2, max_sleep_ns)
