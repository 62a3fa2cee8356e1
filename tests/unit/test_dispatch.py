"""lb dispatch kernels on arrays: exact worker per frame and exact drop counters."""
import ipaddress

import numpy as np
import pytest

from nperf.bench.mbufs import MemoryMbufs
from nperf.kernels import dispatch as d
from tests import packets as P

V4 = [(int(ipaddress.IPv4Address("10.0.0.100")), 0), (int(ipaddress.IPv4Address("10.0.0.101")), 1)]
V6 = [(int(ipaddress.IPv6Address("fd00::101")), 1), (int(ipaddress.IPv6Address("fd00::5")), 0)]

CASES = [
    ("ipv4 to worker 0", P.ipv4("10.0.0.1", "10.0.0.100"), 0),
    ("ipv4 to worker 1", P.ipv4("10.0.0.1", "10.0.0.101"), 1),
    ("ipv6 to worker 1", P.ipv6("fd00::1", "fd00::101"), 1),
    ("ipv6 to worker 0", P.ipv6("fd00::1", "fd00::5"), 0),
    ("arp request by target", P.arp(1, "10.0.0.101", "10.0.0.100"), 0),
    ("arp reply by target", P.arp(2, "10.0.0.100", "10.0.0.101"), 1),
    ("neighbour solicitation by target", P.neighbour_solicitation("fd00::1", "fd00::5"), 0),
    ("ipv4 unknown destination", P.ipv4("10.0.0.1", "10.0.0.99"), d.NO_WORKER),
    ("ipv6 unknown destination", P.ipv6("fd00::1", "fd00::99"), d.NO_WORKER),
    ("arp unknown target", P.arp(1, "10.0.0.1", "10.0.0.7"), d.NO_WORKER),
    ("gratuitous arp of a peer", P.arp(1, "10.0.0.7", "10.0.0.7"), d.ANNOUNCEMENT),
    ("gratuitous arp reply of a peer", P.arp(2, "10.0.0.8", "10.0.0.8"), d.ANNOUNCEMENT),
    ("gratuitous arp of an owned address", P.arp(1, "10.0.0.101", "10.0.0.101"), 1),
    ("advertisement to all nodes of a peer", P.neighbour_advert("fd00::7", "ff02::1", "fd00::7"), d.ANNOUNCEMENT),
    ("advertisement to all nodes of an owned address", P.neighbour_advert("fd00::7", "ff02::1", "fd00::5"), 0),
    ("advertisement to a worker", P.neighbour_advert("fd00::7", "fd00::101", "fd00::7"), 1),
    ("vlan tagged ipv4", P.vlan(P.ipv4("10.0.0.1", "10.0.0.100")), d.NOT_IP),
    ("lldp", P.eth(P.BCAST, P.MAC_A, 0x88CC, b"\0" * 40), d.NOT_IP),
    ("ipv4 ethertype, version 6", P.ipv6("fd00::1", "fd00::101")[:12] + b"\x08\x00" + P.ipv6("fd00::1", "fd00::101")[14:], d.NOT_IP),
    ("arp for ipv6 protocol", P.arp(1, "10.0.0.1", "10.0.0.100")[:16] + b"\x86\xdd" + P.arp(1, "10.0.0.1", "10.0.0.100")[18:], d.NOT_IP),
    ("13 bytes", P.ipv4("10.0.0.1", "10.0.0.100")[:13], d.TRUNCATED),
    ("empty frame", b"", d.TRUNCATED),
    ("ipv4 cut at 33", P.ipv4("10.0.0.1", "10.0.0.100")[:33], d.TRUNCATED),
    ("arp cut at 41", P.arp(1, "10.0.0.1", "10.0.0.100")[:41], d.TRUNCATED),
    ("ipv6 cut at 53", P.ipv6("fd00::1", "fd00::101")[:53], d.TRUNCATED),
    ("ipv4 exactly 34 bytes", P.ipv4("10.0.0.1", "10.0.0.101")[:34], 1),
]


def table():
    return d.OwnerTable(V4, V6).arrays()


@pytest.mark.parametrize("name,frame,expected", CASES, ids=[c[0] for c in CASES])
def test_classify_each(name, frame, expected):
    frames, lens = P.as_arrays([frame], 128)
    assert d.classify(frames[0], lens[0], table()) == expected


def expected_counters(frames):
    c = np.zeros(d.N_COUNTERS, np.int64)
    c[d.RX_PACKETS] = len(frames)
    c[d.RX_BYTES] = sum(len(f) for f in frames)
    cause = {d.NO_WORKER: d.DROP_NO_WORKER, d.NOT_IP: d.DROP_NOT_IP, d.TRUNCATED: d.DROP_TRUNCATED,
             d.ANNOUNCEMENT: d.ANNOUNCEMENTS}
    for _, _, code in CASES:
        if code < 0:
            c[cause[code]] += 1
    return c


def test_dispatch_frames_exact_assignment_and_counters():
    frames = [c[1] for c in CASES]
    arr, lens = P.as_arrays(frames, 128)
    counters = np.zeros(d.N_COUNTERS, np.int64)
    out = np.zeros(len(lens), np.int64)
    d.dispatch_frames(arr, lens, table(), counters, out)
    assert out.tolist() == [c[2] for c in CASES]
    assert counters.tolist() == expected_counters(frames).tolist()
    assert counters[d.DROP_NO_WORKER] == 3 and counters[d.DROP_NOT_IP] == 4 and counters[d.DROP_TRUNCATED] == 5
    assert counters[d.ANNOUNCEMENTS] == 3


def test_sort_burst_on_mbufs_buckets_and_drops():
    frames = [c[1] for c in CASES]
    mb = MemoryMbufs(len(frames))
    for i, f in enumerate(frames):
        mb.fill(i, f)
    buckets = np.zeros((2, 32), np.int64)
    blen = np.zeros(2, np.int64)
    drops = np.zeros(32, np.int64)
    counters = np.zeros(d.N_COUNTERS, np.int64)
    ndrop = d.sort_burst(mb.addrs, len(frames), table(), buckets, blen, drops, counters)
    want = {w: [mb.addrs[i] for i, c in enumerate(CASES) if c[2] == w] for w in (0, 1)}
    assert buckets[0, :blen[0]].tolist() == want[0]
    assert buckets[1, :blen[1]].tolist() == want[1]
    assert drops[:ndrop].tolist() == [mb.addrs[i] for i, c in enumerate(CASES) if c[2] < 0]
    assert counters.tolist() == expected_counters(frames).tolist()


def test_garbage_frames_are_counted_never_crash():
    rng = np.random.default_rng(7)
    n = 2000
    lens = rng.integers(0, 200, n)
    arr = rng.integers(0, 256, (n, 200), dtype=np.uint8)
    arr[::3, 12:14] = [0x08, 0x00]          # many look like IPv4, some like IPv6 and ARP
    arr[1::3, 12:14] = [0x86, 0xDD]
    arr[2::6, 12:14] = [0x08, 0x06]
    counters = np.zeros(d.N_COUNTERS, np.int64)
    out = np.zeros(len(lens), np.int64)
    d.dispatch_frames(arr, lens, table(), counters, out)
    drops = (counters[d.DROP_NO_WORKER] + counters[d.DROP_NOT_IP] + counters[d.DROP_TRUNCATED]
             + counters[d.ANNOUNCEMENTS])
    assert counters[d.RX_PACKETS] == n
    assert drops + np.count_nonzero(out >= 0) == n
    assert counters[d.DROP_TRUNCATED] == np.count_nonzero(out == d.TRUNCATED) > 0


def test_big_owner_table_finds_every_address():
    v4 = [(0x0A000000 + i, i % 128) for i in range(5000)]
    t = d.OwnerTable(v4, []).arrays()
    for ip, w in v4[::97]:
        assert d.lookup4(t[0], t[1], np.uint32(ip)) == w
    assert d.lookup4(t[0], t[1], np.uint32(0x0B000000)) == d.NO_WORKER
