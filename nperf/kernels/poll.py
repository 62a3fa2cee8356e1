"""Shared pieces of every poll loop: idle back-off and the busy share.

On this 2-core machine four busy-polling processes share two CPUs, two to a
CPU, and a frame crosses several of them. An empty poll therefore yields the
CPU at once (sched_yield): the process that shares it, which may hold the
very frame this one waits for, runs now instead of at the end of a scheduler
time slice (a millisecond or more). A loop that has found no work for
`idle_cycles` (a time, not a count of empty polls) also sleeps, doubling the
sleep up to a ceiling; the first packet resets it.

The busy share is what a user needs to tell whether the generator or the
device under test was the limit (dperf prints it as `cpu`): the TSC cycles
of turns that found work over the cycles of all turns, back-off included.
An idle loop reads 0, a saturated one 1. Roles read the two sums once a
second. The state lives in a small int64 array so that it survives the loop
returning to Python.
"""
import numpy as np

from nperf.kernels import io
from nperf.kernels.jit import inline

FIRST_SLEEP_NS = 20_000

POLL_WORDS = (
    "last_work",      # TSC of the last turn that did work
    "sleep_ns",       # the next idle sleep's length
    "turns",          # turns run
    "busy_turns",     # turns that found work
    "cycles",         # TSC cycles of all turns, back-off included
    "busy_cycles",    # TSC cycles of the turns that found work
)
PS_LAST_WORK, PS_SLEEP_NS, PS_TURNS, PS_BUSY_TURNS, PS_CYCLES, PS_BUSY_CYCLES = range(len(POLL_WORDS))
N_POLL_STATE = len(POLL_WORDS)


def new_poll_state() -> np.ndarray:
    return np.zeros(N_POLL_STATE, np.int64)


@inline
def account(pstate, did_work, cycles):
    """Count one turn of `cycles` TSC cycles (the busy share's two sums)."""
    pstate[PS_TURNS] += 1
    pstate[PS_CYCLES] += cycles
    if did_work:
        pstate[PS_BUSY_TURNS] += 1
        pstate[PS_BUSY_CYCLES] += cycles


@inline
def idle_backoff(fns, pstate, did_work, now, idle_cycles, max_sleep_ns):
    """Call once per loop turn with the current TSC."""
    if did_work:
        pstate[PS_LAST_WORK] = now
        pstate[PS_SLEEP_NS] = FIRST_SLEEP_NS
        return
    io.yield_cpu(fns)
    if now - pstate[PS_LAST_WORK] > idle_cycles:
        ns = pstate[PS_SLEEP_NS] if pstate[PS_SLEEP_NS] > 0 else FIRST_SLEEP_NS
        io.sleep_ns(fns, ns)
        pstate[PS_SLEEP_NS] = min(ns * 2, max_sleep_ns)


def busy_share(before: np.ndarray, after: np.ndarray) -> float:
    """The busy share between two copies of a poll state (0 when no turn ran)."""
    cycles = int(after[PS_CYCLES] - before[PS_CYCLES])
    return float(after[PS_BUSY_CYCLES] - before[PS_BUSY_CYCLES]) / cycles if cycles > 0 else 0.0
