"""Internet checksums (kernels.net): every length and alignment against RFC 1071 computed plainly.

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nperf.kernels import net
from tests.http_messages import FUZZ


def reference(data: bytes, acc: int = 0) -> int:
    """Ones'-complement sum of big-endian 16-bit words, odd tail padded with a zero byte, unfolded."""
    if len(data) % 2:
        data += b"\0"
    return acc + sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))


def folded(v: int) -> int:
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return v


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 7), st.integers(0, 1 << 20), st.integers(-3, 310))
def test_sum16_equals_rfc1071(data, at, acc, n):
    buf = np.frombuffer(bytes(at) + data, np.uint8).copy()
    got = net.sum16(buf, at, n, acc)
    want = reference(data[:max(n, 0)], acc)
    assert folded(got) == folded(want)
    assert net.fold(got) == (~folded(want)) & 0xFFFF


def test_every_length_and_offset_near_the_short_path():
    rng = np.random.default_rng(1)
    buf = rng.integers(0, 256, 128, dtype=np.uint8)
    for at in range(8):
        for n in range(0, 80):
            assert folded(net.sum16(buf, at, n, 0)) == folded(reference(buf[at:at + n].tobytes()))


def test_ipv4_header_checksum_verified():
    b = np.frombuffer(bytes.fromhex("45000073000040004011b861c0a80001c0a800c7"), np.uint8).copy()
    assert net.ipv4_header_ok(b, 0)                 # the well-known example header, checksum b861
    b[3] ^= 1
    assert not net.ipv4_header_ok(b, 0)


def test_tcp_header_sum_equals_the_bytes_sum():
    hdr = bytes.fromhex("1f40c35012345678 9abcdef0 5018 ffff 0000 0000".replace(" ", ""))
    words = net.tcp_header_sum(0x1F40, 0xC350, 0x12345678, 0x9ABCDEF0, 20, 0x18, 0xFFFF)
    assert folded(words) == folded(reference(hdr))
