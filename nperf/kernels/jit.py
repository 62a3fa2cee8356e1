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
"""
from numba import njit

kernel = njit(cache=True, nogil=True, _nrt=False)
inline = njit(cache=True, nogil=True, _nrt=False, inline="always")
