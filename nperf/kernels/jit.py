"""The decorators every kernel uses.

`kernel` compiles without Numba's reference counting (`_nrt=False`). With it
on, every call that passes an array, and every tuple unpacked in a branchy
function, costs atomic increments and decrements that Numba's pruning pass
does not remove: the lb's dispatch ran at 13-20 Mpps with them and at over
100 Mpps without (measured with `nperf bench lb` on this machine). The price:
kernels allocate nothing (every array is preallocated and passed in) and
never return a new array; mbuf bytes are viewed with
`nperf.bindings.intrinsics.view_u8`, not `numba.carray`.

`inline` is for small helpers: Numba inlines them into the caller's IR, so
they also compile under the caller's flags.

`step` marks the larger protocol steps (TCP input, segment arrival, ACK
processing...). They are inlined like `inline` ones, except with
NPERF_PERF_SPLIT=1 in the environment: then each is a function of its own,
so that `perf` (with NPERF_PERF_MAP=1, see nperf.perf_map) attributes
cycles to it instead of to the kernel it is inlined into. Those split
kernels are cached in a directory of their own, never mixed with the
production ones. The split changes code generation a little; use it to see
where cycles go, not to measure speed.
"""
import os
import tempfile

import numba
from numba import njit

SPLIT = os.environ.get("NPERF_PERF_SPLIT", "") not in ("", "0")
if SPLIT:
    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), "nperf-perf-split-cache")

kernel = njit(cache=True, nogil=True, _nrt=False)
inline = njit(cache=True, nogil=True, _nrt=False, inline="always")
step = kernel if SPLIT else inline
