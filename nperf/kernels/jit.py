"""The decorators every kernel uses.

`kernel` compiles without Numba's reference counting (`_nrt=False`). With it
on, every call that passes an array, and every tuple unpacked in a branchy
function, costs atomic increments and decrements that Numba's pruning pass
does not remove: the lb's dispatch ran at 13-20 Mpps with them and at over
100 Mpps without (measured with `nperf bench lb` on this machine). The price:
kernels allocate nothing (every array is preallocated and passed in) and
never return a new array; mbuf bytes are viewed with
`nperf.bindings.intrinsics.view_u8`, not `numba.carray`.

`inline` is for small helpers: LLVM inlines them into every caller
(`forceinline`, LLVM's alwaysinline), so the poll loop runs as one function
with no calls in its hot path. Numba types and lowers each helper once per
signature. Inlining them at the level of Numba's IR instead
(`inline="always"`) retyped every helper at every call site inside one giant
function: the warm-up took 35 to 52 minutes and up to 12 GiB that way, and
4 minutes and 1.2 GiB inlined by LLVM, with the same
connections/s and requests/s (`nperf bench dperf`'s nperf runs, alternated:
median ratios 1.03 and 0.99).

`inline_view` is for the few helpers that return a view they make (the
bytes of an mbuf, a slice of the counters): without reference counting a
compiled function may only return an array it was passed, so these must be
inlined into their caller before Numba types it.

`step` marks the larger protocol steps (TCP input, segment arrival, ACK
processing...). They are inlined like `inline` ones, except with
NPERF_PERF_SPLIT=1 in the environment: then each is a function of its own,
so that `perf` (with NPERF_PERF_MAP=1, see nperf.perf_map) attributes
cycles to it instead of to the kernel it is inlined into. Those split
kernels are cached in a directory of their own, never mixed with the
production ones. The split changes code generation a little; use it to see
where cycles go, not to measure speed.

The cache directory is named after a digest of every kernel source
(`sources_digest`). Numba checks only a kernel's own file for changes, but a
cached kernel carries compiled copies of the kernels it calls in other files:
after an edit it would run their old code, silently. With the digest in the
path, any edit means a fresh directory and a recompile (roles say
"compiling kernels" first), never stale code. The directory is under
NUMBA_CACHE_DIR if that is set, else in the package's __pycache__. Inside it,
kernels are filed by module path (`PackageCacheLocator`), so one cache serves
every copy of the same sources.
"""
import glob
import hashlib
import os

import numba
from numba import njit
from numba.core import caching

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL_SOURCES = ("kernels/*.py", "bindings/intrinsics.py", "bench/pair.py")   # under PACKAGE
SPLIT = os.environ.get("NPERF_PERF_SPLIT", "") not in ("", "0")


def sources_digest(package: str = PACKAGE) -> str:
    """sha256 (16 hex digits) over Numba's version and every file that kernels compile from."""
    h = hashlib.sha256(numba.__version__.encode())
    for pattern in KERNEL_SOURCES:
        for path in sorted(glob.glob(os.path.join(package, pattern))):
            h.update(os.path.relpath(path, package).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


class PackageCacheLocator(caching.UserProvidedCacheLocator):
    """Caches a kernel of nperf under its module's path inside the package.

    Numba names a cache subdirectory after a hash of the source file's absolute
    directory, so every install or checkout of the same sources compiled its
    kernels again. Numba already checks a file by a hash of its content, and
    the cache directory is named after the digest of every kernel source: with
    package-relative names, any copy of the same sources can load one cache
    (NUMBA_CACHE_DIR pointing at it). Functions outside the package (tests'
    own kernels) keep Numba's naming.
    """

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        inside = os.path.relpath(os.path.dirname(os.path.abspath(py_file)), os.path.dirname(PACKAGE))
        self._cache_path = os.path.join(numba.config.CACHE_DIR, inside.replace(os.sep, "."))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(PACKAGE + os.sep):
            return None
        return super().from_function(py_func, py_file)


if PackageCacheLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, PackageCacheLocator)

CACHE_ROOT = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(PACKAGE, "__pycache__", "numba")
DIGEST = sources_digest()
numba.config.CACHE_DIR = os.path.join(CACHE_ROOT, ("split-" if SPLIT else "") + DIGEST)

kernel = njit(cache=True, nogil=True, _nrt=False, forceinline=False)   # explicit: not inherited from a caller
inline = njit(cache=True, nogil=True, _nrt=False, forceinline=True)
inline_view = njit(cache=True, nogil=True, _nrt=False, inline="always")
step = kernel if SPLIT else inline
