"""Shared pieces of every poll loop: idle back-off.

On this 2-core machine four busy-polling processes share two CPUs, two to a
CPU, and a frame crosses several of them. An empty poll therefore yields the
CPU at once (sched_yield): the process that shares it, which may hold the
very frame this one waits for, runs now instead of at the end of a scheduler
time slice (a millisecond or more). A loop that has found no work for
`idle_cycles` (a time, not a count of empty polls) also sleeps, doubling the
sleep up to a ceiling; the first packet resets it. The state lives in a
small int64 array so that it survives the loop returning to Python.
"""

from nperf.bindings.intrinsics import call_c
from nperf.kernels import cfn
from nperf.kernels.jit import inline

FIRST_SLEEP_NS = 20_000

# poll state words
S_LAST_WORK = 0          # TSC of the last turn that did work
S_SLEEP = 1              # next sleep length (ns)
N_POLL_STATE = 2


@inline
def idle_backoff(fns, pstate, did_work, now, idle_cycles, max_sleep_ns):
    """Call once per loop turn with the current TSC."""
    if did_work:
        pstate[S_LAST_WORK] = now
        pstate[S_SLEEP] = FIRST_SLEEP_NS
        return
    call_c(fns[cfn.YIELD], 0, 0, 0, 0)
    if now - pstate[S_LAST_WORK] > idle_cycles:
        ns = pstate[S_SLEEP] if pstate[S_SLEEP] > 0 else FIRST_SLEEP_NS
        call_c(fns[cfn.SLEEP_NS], ns, 0, 0, 0)
        pstate[S_SLEEP] = min(ns * 2, max_sleep_ns)
