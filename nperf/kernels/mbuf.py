"""Reading and writing `struct rte_mbuf` fields from kernels, by address.

The offsets are DPDK 22.11's x86_64 layout; `nperf.bindings.dpdk` checks them
against `offsetof` from the compiled extension at import and refuses to run
if they differ, so a kernel can never read a wrong field silently.
"""
import numba

from nperf.bindings.intrinsics import load_u16, load_u32, load_u64, store_u16, store_u32, view_u8
from nperf.kernels.jit import inline

OFF_BUF_ADDR = 0
OFF_DATA_OFF = 16
OFF_PKT_LEN = 36
OFF_DATA_LEN = 40
OFF_NB_SEGS = 20
OFF_BUF_LEN = 54
HEADROOM = 128
OFF_NEXT = 64

LAYOUT = (OFF_BUF_ADDR, OFF_DATA_OFF, OFF_PKT_LEN, OFF_DATA_LEN, OFF_NB_SEGS,
          OFF_BUF_LEN, HEADROOM, OFF_NEXT)


@inline
def data_addr(m):
    return load_u64(m + OFF_BUF_ADDR) + load_u16(m + OFF_DATA_OFF)


@inline
def data_len(m):
    return numba.int64(load_u16(m + OFF_DATA_LEN))


@inline
def pkt_len(m):
    return numba.int64(load_u32(m + OFF_PKT_LEN))


@inline
def room(m):
    """Bytes available from the data start to the end of the buffer."""
    return numba.int64(load_u16(m + OFF_BUF_LEN)) - numba.int64(load_u16(m + OFF_DATA_OFF))


@inline
def data_view(m):
    """The first segment's bytes as a uint8 array (no copy)."""
    return view_u8(data_addr(m), data_len(m))


@inline
def buffer_view(m):
    """The writable buffer from the data start, `room(m)` bytes long (no copy)."""
    return view_u8(data_addr(m), room(m))


@inline
def set_len(m, n):
    """Make a single-segment mbuf `n` bytes long."""
    store_u16(m + OFF_DATA_LEN, n)
    store_u32(m + OFF_PKT_LEN, n)

