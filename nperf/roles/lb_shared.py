"""The lb's shared area: what a worker (a DPDK secondary) finds in the lb.

One memzone of int64 words holds the port MAC, the lb's state, its counters
(updated in place by the poll kernel, so anyone attached reads them live) and
one row per worker ring pair. Rings and the packet pool are found by name.
Workers register in their row, so that two workers cannot take one ring pair
and two processes cannot share an lcore id (the pool's per-lcore caches).
"""
import os

import numpy as np

from nperf.bindings import dpdk
from nperf.kernels import dispatch, lb_loop

MZ_NAME = "nperf_lb"
POOL_NAME = "nperf_pool"
MAGIC = 0x6E70_6572_665F_6C62      # "nperf_lb"
VERSION = 2
MAX_WORKERS = 128

# The memzone's words: the header (HDR_*), then the lb's counters, then one counters row per
# worker, then one registry row per worker.
HEADER_WORDS = (
    "magic",        # MAGIC once the area is filled in
    "version",      # VERSION: a worker of another nperf version refuses to attach
    "state",        # STATE_* below
    "nworkers",     # worker ring pairs (rows in use below)
    "mac",          # the port's MAC address
    "pid",          # the lb's process
    "link",         # 1 while the port's link is up
    "lcore",        # the lb's lcore id (a worker must not take it)
    "checksums",    # 1: the port verifies received checksums (its mbufs' flags say what it found)
)
HDR_MAGIC, HDR_VERSION, HDR_STATE, HDR_NWORKERS, HDR_MAC, HDR_PID, HDR_LINK, HDR_LCORE, HDR_CHECKSUMS = \
    range(len(HEADER_WORDS))
STATE_STARTING, STATE_READY, STATE_STOPPING = 0, 1, 2
REGISTRY_WORDS = (              # one row per worker ring pair
    "id",           # the worker id that the ring pair belongs to
    "pid",          # the attached worker's process; 0: none
    "lcore",        #   and its lcore id
    "spare",
)
R_ID, R_PID, R_LCORE, _R_SPARE = range(len(REGISTRY_WORDS))
# Each region's *first word*:
COUNTERS = 16            # the lb's counters: dispatch.N_COUNTERS words (room for 48)
WORKER_COUNTERS = 64     # per worker: MAX_WORKERS rows of lb_loop.N_WORKER_COUNTERS words
REGISTRY = WORKER_COUNTERS + MAX_WORKERS * lb_loop.N_WORKER_COUNTERS     # per worker: a row of R_* words
N_WORDS = REGISTRY + MAX_WORKERS * len(REGISTRY_WORDS)

assert len(HEADER_WORDS) <= COUNTERS and dispatch.N_COUNTERS <= WORKER_COUNTERS - COUNTERS


def rx_ring_name(worker_id: int) -> str:
    return f"nperf_rx_{worker_id}"


def tx_ring_name(worker_id: int) -> str:
    return f"nperf_tx_{worker_id}"


def mac_word(mac: bytes) -> int:
    return int.from_bytes(mac, "big")


def mac_bytes(word: int) -> bytes:
    return int(word).to_bytes(6, "big")


class SharedArea:
    """Typed views onto the memzone words."""

    def __init__(self, words: np.ndarray):
        self.words = words
        self.counters = words[COUNTERS:COUNTERS + dispatch.N_COUNTERS]
        self.worker_counters = words[WORKER_COUNTERS:REGISTRY].reshape(MAX_WORKERS, lb_loop.N_WORKER_COUNTERS)
        self.registry = words[REGISTRY:N_WORDS].reshape(MAX_WORKERS, len(REGISTRY_WORDS))

    @classmethod
    def create(cls, worker_ids: list[int], mac: bytes, lcore: int, checksums: bool) -> "SharedArea":
        area = cls(dpdk.memzone_reserve(MZ_NAME, N_WORDS))
        w = area.words
        w[HDR_VERSION], w[HDR_NWORKERS], w[HDR_MAC] = VERSION, len(worker_ids), mac_word(mac)
        w[HDR_CHECKSUMS] = checksums
        w[HDR_PID], w[HDR_LCORE], w[HDR_STATE] = os.getpid(), lcore, STATE_STARTING
        for pos, wid in enumerate(worker_ids):
            area.registry[pos, R_ID] = wid
        w[HDR_MAGIC] = MAGIC
        return area

    @classmethod
    def lookup(cls) -> "SharedArea":
        area = cls(dpdk.memzone_lookup(MZ_NAME, N_WORDS))
        if area.words[HDR_MAGIC] != MAGIC or area.words[HDR_VERSION] != VERSION:
            raise dpdk.DpdkError("the DPDK primary with this file prefix is not an nperf lb of this version")
        return area

    @property
    def mac(self) -> bytes:
        return mac_bytes(self.words[HDR_MAC])

    def position_of(self, worker_id: int) -> int:
        for pos in range(int(self.words[HDR_NWORKERS])):
            if self.registry[pos, R_ID] == worker_id:
                return pos
        ids = [int(self.registry[p, R_ID]) for p in range(int(self.words[HDR_NWORKERS]))]
        raise dpdk.DpdkError(f"the lb has no worker ring pair {worker_id} (its clients[].id: {ids})")


class Attachment:
    """A worker's hold on its lb ring pair, the packet pool and the port MAC."""

    def __init__(self, worker_id: int, lcore: int):
        self.area = SharedArea.lookup()
        if self.area.words[HDR_STATE] != STATE_READY:
            raise dpdk.DpdkError("the lb is not ready (starting or stopping)")
        self.position = self.area.position_of(worker_id)
        self._claim(lcore)
        self.rx = dpdk.Ring.lookup(rx_ring_name(worker_id))
        self.tx = dpdk.Ring.lookup(tx_ring_name(worker_id))
        self.pool = dpdk.Pool.lookup(POOL_NAME)
        self.mac = self.area.mac
        self.port_checksums = bool(self.area.words[HDR_CHECKSUMS])

    def _claim(self, lcore: int) -> None:
        reg, words = self.area.registry, self.area.words
        owner = int(reg[self.position, R_PID])
        if owner and owner != os.getpid() and _alive(owner):
            raise dpdk.DpdkError(f"worker ring pair {reg[self.position, R_ID]} is in use by process {owner}")
        if lcore == words[HDR_LCORE]:
            raise dpdk.DpdkError(f"core_id {lcore} is the lb's own; give this worker another core_id")
        for pos in range(int(words[HDR_NWORKERS])):
            if pos != self.position and reg[pos, R_LCORE] == lcore and _alive(int(reg[pos, R_PID])):
                raise dpdk.DpdkError(f"core_id {lcore} is used by worker {reg[pos, R_ID]}; "
                                     "workers of one lb need distinct core_id values")
        reg[self.position, R_PID] = os.getpid()
        reg[self.position, R_LCORE] = lcore

    def lb_alive(self) -> bool:
        """Whether the lb process (the DPDK primary) still runs."""
        return _alive(int(self.area.words[HDR_PID]))

    def release(self) -> None:
        if self.area.registry[self.position, R_PID] == os.getpid():
            self.area.registry[self.position, R_PID] = 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
