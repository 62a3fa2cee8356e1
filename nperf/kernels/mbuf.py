"""Reading and writing `struct rte_mbuf` fields from kernels, by address.

The offsets are DPDK 22.11's x86_64 layout; `nperf.bindings.dpdk` checks them
against `offsetof` from the compiled extension at import and refuses to run
if they differ, so a kernel can never read a wrong field silently.
"""
import numba

from nperf.bindings.intrinsics import load_u16, load_u32, load_u64, store_u16, store_u32, store_u64, view_u8
from nperf.kernels.jit import inline, inline_view

OFF_BUF_ADDR = 0
OFF_DATA_OFF = 16
OFF_PKT_LEN = 36
OFF_DATA_LEN = 40
OFF_NB_SEGS = 20
OFF_BUF_LEN = 54
HEADROOM = 128
OFF_NEXT = 64
OFF_OL_FLAGS = 24
# ol_flags bits a port sets when it verifies checksums on receive (both bits of a pair: NONE, the
# data's checksum is not valid but the port checked the data's integrity, which counts as good)
RX_IP_GOOD = 1 << 7
RX_IP_BAD = 1 << 4
RX_L4_GOOD = 1 << 8
RX_L4_BAD = 1 << 3

LAYOUT = (OFF_BUF_ADDR, OFF_DATA_OFF, OFF_PKT_LEN, OFF_DATA_LEN, OFF_NB_SEGS,
          OFF_BUF_LEN, HEADROOM, OFF_NEXT, OFF_OL_FLAGS, RX_IP_GOOD, RX_IP_BAD, RX_L4_GOOD, RX_L4_BAD)


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


@inline_view
def data_view(m):
    """The first segment's bytes as a uint8 array (no copy)."""
    return view_u8(data_addr(m), data_len(m))


@inline_view
def buffer_view(m):
    """The writable buffer from the data start, `room(m)` bytes long (no copy)."""
    return view_u8(data_addr(m), room(m))


@inline
def set_len(m, n):
    """Make a single-segment mbuf `n` bytes long."""
    store_u16(m + OFF_DATA_LEN, n)
    store_u32(m + OFF_PKT_LEN, n)


# rx_checksums results, for the IPv4 header and for the TCP/UDP segment alike
CSUM_SOFTWARE = 0       # the port did not check: sum in software
CSUM_GOOD = 1           # the port found it good
CSUM_BAD = 2            #   or bad


@inline
def _csum_state(flags, good, bad):
    if flags & good:
        return numba.int64(CSUM_GOOD)
    return numba.int64(CSUM_BAD) if flags & bad else numba.int64(CSUM_SOFTWARE)


@inline
def rx_checksums(m):
    """What the port found of a received frame's IPv4 header and TCP/UDP checksums (CSUM_* each),
    from its RX offload flags. Only for a port set up to verify them (`Port.setup` says so): other
    ports leave the flags as a buffer's last user did."""
    flags = load_u64(m + OFF_OL_FLAGS)
    return _csum_state(flags, RX_IP_GOOD, RX_IP_BAD), _csum_state(flags, RX_L4_GOOD, RX_L4_BAD)


@inline
def forget_rx_checksums(m):
    """Clear what the port found of m's checksums: its bytes changed since (the lb's corruption)."""
    rx = numba.uint64(RX_IP_GOOD | RX_IP_BAD | RX_L4_GOOD | RX_L4_BAD)
    store_u64(m + OFF_OL_FLAGS, load_u64(m + OFF_OL_FLAGS) & ~rx)
