"""Hand-built frames for tests (struct, not the code under test)."""
import ipaddress
import struct

import numpy as np

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
BCAST = b"\xff" * 6


def eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int = 17, payload: bytes = b"x" * 20) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return eth(MAC_B, MAC_A, 0x0800, hdr + payload)


def ipv6(src: str, dst: str, nxt: int = 17, payload: bytes = b"y" * 20) -> bytes:
    hdr = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, 64,
                      ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed)
    return eth(MAC_B, MAC_A, 0x86DD, hdr + payload)


def neighbour_solicitation(src: str, target: str) -> bytes:
    t = ipaddress.IPv6Address(target).packed
    group = ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + t[13:]
    icmp = struct.pack("!BBHI16s", 135, 0, 0, 0, t)
    return ipv6(src, str(ipaddress.IPv6Address(group)), nxt=58, payload=icmp)


def neighbour_advert(src: str, dst: str, target: str) -> bytes:
    icmp = struct.pack("!BBHI16s", 136, 0, 0, 0x20 << 24, ipaddress.IPv6Address(target).packed)
    return ipv6(src, dst, nxt=58, payload=icmp)


def arp(op: int, sender_ip: str, target_ip: str) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, MAC_A, ipaddress.IPv4Address(sender_ip).packed,
                       b"\0" * 6 if op == 1 else MAC_B, ipaddress.IPv4Address(target_ip).packed)
    return eth(BCAST if op == 1 else MAC_B, MAC_A, 0x0806, body)


def vlan(inner: bytes) -> bytes:
    return inner[:12] + struct.pack("!HH", 0x8100, 7) + inner[12:]


def as_arrays(frames: list[bytes], width: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((len(frames), width), np.uint8)
    lens = np.zeros(len(frames), np.int64)
    for i, f in enumerate(frames):
        out[i, :len(f)] = np.frombuffer(f, np.uint8)
        lens[i] = len(f)
    return out, lens
