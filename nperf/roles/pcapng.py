"""Writing captured frames (nperf.kernels.capture) as a pcapng file that tshark and tcpdump read.

One section, one Ethernet interface with microsecond timestamps, and an
Enhanced Packet Block per frame whose epb_flags option gives its direction
(inbound or outbound). Block layouts are those of the pcapng specification
(IETF draft-ietf-opsawg-pcapng).
"""
import struct

LINKTYPE_ETHERNET = 1
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT, IF_NAME, IF_TSRESOL, EPB_FLAGS = 0, 1, 2, 9, 2


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(kind: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def write(path: str, frames: list[tuple[int, int, int, bytes]], epoch_us: int, name: str,
          ticks_per_us: float, snaplen: int = 2048) -> int:
    """Write `frames` ((time in clock ticks since the capture clock's zero, direction 1 in / 2 out,
    length, bytes)) with timestamps epoch_us + ticks / ticks_per_us; returns how many were written."""
    out = [_block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
                  + _option(OPT_COMMENT, b"nperf capture") + _option(OPT_END, b"")),
           _block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen)
                  + _option(IF_NAME, name.encode()) + _option(IF_TSRESOL, b"\x06") + _option(OPT_END, b""))]
    for ticks, direction, length, data in frames:
        ts = epoch_us + int(ticks / ticks_per_us)
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), length) + _pad(data)
        out.append(_block(EPB, body + _option(EPB_FLAGS, struct.pack("<I", direction)) + _option(OPT_END, b"")))
    with open(path, "wb") as f:
        f.write(b"".join(out))
    return len(frames)
