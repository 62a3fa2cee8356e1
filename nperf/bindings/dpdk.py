"""Python face of the DPDK extension: EAL, ports, pools, rings, memzones.

Everything here runs once per process or once per second; per-burst work goes
through `function_table()` into kernels. Failures raise `DpdkError` with
DPDK's own reason (rte_strerror) so that roles can print one clear line.
"""
import numpy as np

from nperf.kernels import cfn
from nperf.kernels.mbuf import LAYOUT

try:
    from nperf.bindings._dpdk import ffi, lib
except ImportError as exc:  # the extension is built by `pip install`
    raise ImportError("nperf's DPDK extension is not built: run `pip install .` "
                      "in the nperf checkout (it needs libdpdk-dev)") from exc


MAX_FRAME = 2048       # bytes of frame one packet buffer holds (after its 128-byte headroom)


class DpdkError(RuntimeError):
    """A DPDK call failed; the message says which and why."""


def _why(rc: int | None = None) -> str:
    err = -rc if rc is not None and rc < 0 else lib.np_errno()
    return ffi.string(lib.np_strerror(err)).decode(errors="replace")


def check_mbuf_layout() -> None:
    out = ffi.new(f"uint64_t[{len(LAYOUT)}]")
    lib.np_mbuf_layout(out)
    compiled = tuple(out[i] for i in range(len(LAYOUT)))
    if compiled != LAYOUT:
        raise DpdkError(f"rte_mbuf layout {compiled} differs from the kernels' {LAYOUT}: "
                        "nperf.kernels.mbuf must be updated for this DPDK version")


def eal_init(args: list[str]) -> None:
    """Start the EAL with `args` (without the program name)."""
    argv_keep = [ffi.new("char[]", a.encode()) for a in ["nperf", *args]]
    argv = ffi.new("char *[]", argv_keep)
    rc = lib.np_eal_init(len(argv_keep), argv)
    if rc < 0:
        why = f" ({_why()})" if lib.np_errno() else ""
        raise DpdkError(f"DPDK EAL start failed{why}; EAL arguments: {' '.join(args)}")
    check_mbuf_layout()


def eal_cleanup() -> None:
    lib.np_eal_cleanup()


def is_primary() -> bool:
    return bool(lib.np_is_primary())


def function_table() -> np.ndarray:
    """Addresses of the per-burst C functions, in `nperf.kernels.cfn` order."""
    return np.array([int(ffi.cast("uintptr_t", ffi.addressof(lib, name))) for name in cfn.CFN_NAMES],
                    dtype=np.int64)


def free_mbufs(addrs: np.ndarray) -> None:
    """Return mbufs (an int64 array of addresses) to their pools."""
    if len(addrs):
        lib.np_mbuf_free(addrs.ctypes.data, len(addrs), 0, 0)


def tsc_hz() -> int:
    return lib.np_tsc_hz(0, 0, 0, 0)


def _addr(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


class Port:
    """One ethdev port with one RX and one TX queue."""

    def __init__(self, port_id: int):
        self.id = port_id
        name = ffi.new("char[64]")
        self.name = ffi.string(name).decode() if lib.np_port_name(port_id, name, 64) == 0 else f"port{port_id}"

    @staticmethod
    def count() -> int:
        return lib.np_port_count()

    def setup(self, pool: "Pool", nb_rxd: int = 1024, nb_txd: int = 1024) -> bool:
        """Configure and start the port; True if it verifies received checksums (its mbufs' RX
        offload flags are then worth reading: nperf.kernels.mbuf.rx_checksums)."""
        checksums = ffi.new("int *")
        rc = lib.np_port_setup(self.id, nb_rxd, nb_txd, ffi.cast("void *", pool.addr), checksums)
        if rc < 0:
            raise DpdkError(f"port {self.name}: setup failed ({_why(rc)})")
        return bool(checksums[0])

    def mac(self) -> bytes:
        out = ffi.new("uint8_t[6]")
        if lib.np_port_mac(self.id, out) != 0:
            raise DpdkError(f"port {self.name}: no MAC address")
        return bytes(ffi.buffer(out, 6))

    def link_up(self) -> bool:
        up = ffi.new("int *")
        speed = ffi.new("uint32_t *")
        lib.np_port_link(self.id, up, speed)
        return bool(up[0])

    def stats(self) -> dict[str, int]:
        out = ffi.new("uint64_t[8]")
        if lib.np_port_stats(self.id, out) < 0:
            return {}
        keys = ("ipackets", "opackets", "ibytes", "obytes", "imissed", "ierrors", "oerrors", "rx_nombuf")
        return {k: out[i] for i, k in enumerate(keys)}

    def close(self) -> None:
        lib.np_port_close(self.id)


class _Named:
    """A DPDK object that a primary creates and a secondary finds by name."""

    def __init__(self, addr: int, name: str):
        self.addr = addr
        self.name = name

    @classmethod
    def _found(cls, ptr, name: str, failure: str):
        if ptr == ffi.NULL:
            raise DpdkError(failure)
        return cls(_addr(ptr), name)


class Pool(_Named):
    """A packet-buffer mempool."""

    @classmethod
    def create(cls, name: str, n: int, cache: int = 256, data_room: int = MAX_FRAME + 128) -> "Pool":
        p = lib.np_pool_create(name.encode(), n, cache, data_room)
        return cls._found(p, name, f"cannot create packet pool {name} of {n} buffers ({_why()})")

    @classmethod
    def lookup(cls, name: str) -> "Pool":
        return cls._found(lib.np_pool_lookup(name.encode()), name, f"no packet pool named {name}")

    def in_use(self) -> int:
        """Buffers out of the pool now (the leak figure: a quiet port returns to its start value)."""
        return lib.np_pool_in_use(ffi.cast("void *", self.addr))


class Ring(_Named):
    """A single-producer single-consumer ring of mbuf addresses."""

    @classmethod
    def create(cls, name: str, count: int) -> "Ring":
        return cls._found(lib.np_ring_create(name.encode(), count), name, f"cannot create ring {name} ({_why()})")

    @classmethod
    def lookup(cls, name: str) -> "Ring":
        return cls._found(lib.np_ring_lookup(name.encode()), name, f"no ring named {name}")

    def free_all(self) -> int:
        """Free the mbufs left in the ring; how many there were."""
        return lib.np_ring_free_all(ffi.cast("void *", self.addr))


def memzone_reserve(name: str, nwords: int) -> np.ndarray:
    """A zeroed shared area of `nwords` int64 words, visible to secondaries."""
    p = lib.np_memzone_reserve(name.encode(), nwords * 8)
    if p == ffi.NULL:
        raise DpdkError(f"cannot reserve shared area {name} ({_why()})")
    return np.frombuffer(ffi.buffer(p, nwords * 8), dtype=np.int64)


def memzone_lookup(name: str, nwords: int) -> np.ndarray:
    p = lib.np_memzone_lookup(name.encode())
    if p == ffi.NULL:
        raise DpdkError(f"no shared area named {name}")
    return np.frombuffer(ffi.buffer(p, nwords * 8), dtype=np.int64)
