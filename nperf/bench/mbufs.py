"""rte_mbuf headers in NumPy memory: the benchmarks' (and the frame-level tests') packet buffers.

They carry only the fields the kernels read (buffer address, data offset,
lengths, offload flags), laid out as in `nperf.kernels.mbuf`, so the production kernels run
unchanged on them without DPDK, through in-memory I/O (`kernels.io.ARRAYS`).
Never hand them to DPDK itself.
"""
import numpy as np

from nperf.kernels import mbuf

HEADER = 128
DATA_ROOM = 2048


class MemoryMbufs:
    """`n` mbufs; `addrs` is the int64 array of their header addresses."""

    def __init__(self, n: int, data_room: int = DATA_ROOM):
        self.stride = HEADER + mbuf.HEADROOM + data_room
        self.mem = np.zeros(n * self.stride, np.uint8)
        base = self.mem.ctypes.data
        self.addrs = np.array([base + i * self.stride for i in range(n)], np.int64)
        words = self.mem.view(np.uint64)
        for i in range(n):
            words[(i * self.stride + mbuf.OFF_BUF_ADDR) // 8] = base + i * self.stride + HEADER
        self._u16 = self.mem.view(np.uint16)
        self._u32 = self.mem.view(np.uint32)
        for i in range(n):
            self._u16[(i * self.stride + mbuf.OFF_DATA_OFF) // 2] = mbuf.HEADROOM
            self._u16[(i * self.stride + mbuf.OFF_BUF_LEN) // 2] = mbuf.HEADROOM + data_room

    def fill(self, i: int, frame: bytes, ol_flags: int = 0) -> None:
        """Mbuf i holds `frame`, with the offload flags a port would have set (mbuf.RX_*)."""
        start = i * self.stride + HEADER + mbuf.HEADROOM
        self.mem[start:start + len(frame)] = np.frombuffer(frame, np.uint8)
        self.mem.view(np.uint64)[(i * self.stride + mbuf.OFF_OL_FLAGS) // 8] = ol_flags
        self._u16[(i * self.stride + mbuf.OFF_DATA_LEN) // 2] = len(frame)
        self._u32[(i * self.stride + mbuf.OFF_PKT_LEN) // 4] = len(frame)

    def ol_flags(self, i: int) -> int:
        return int(self.mem.view(np.uint64)[(i * self.stride + mbuf.OFF_OL_FLAGS) // 8])

    def data(self, i: int) -> bytes:
        start = i * self.stride + HEADER + mbuf.HEADROOM
        n = int(self._u16[(i * self.stride + mbuf.OFF_DATA_LEN) // 2])
        return self.mem[start:start + n].tobytes()
