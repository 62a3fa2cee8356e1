"""A SYN flood from Linux's side of a test namespace: raw Ethernet frames on an AF_PACKET socket.

`python tests/syn_flood.py IFACE DST_IP DST_MAC DPORT COUNT SECONDS` sends COUNT SYNs to DST_IP:DPORT,
each from its own spoofed source (10.77.0.100-249 by ports from 1024: no 4-tuple twice, and no address
the namespace owns, so the SYN-ACKs die there), paced evenly over SECONDS, then prints `sent N`.
Frames are built with struct (tests.tcp_wire), not by the code under test.
"""
import socket
import sys
import time

from tests.tcp_wire import SYN, opt_mss, tcp_frame

SOURCES = [f"10.77.0.{i}" for i in range(100, 250)]
BATCH = 64


def frames(dst_ip: str, dst_mac: bytes, src_mac: bytes, dport: int, count: int) -> list[bytes]:
    return [tcp_frame(SOURCES[i % len(SOURCES)], dst_ip, 1024 + i // len(SOURCES), dport, i * 7919, 0, SYN,
                      64240, options=opt_mss(1460), src_mac=src_mac, dst_mac=dst_mac)
            for i in range(count)]


def main(iface: str, dst_ip: str, dst_mac: str, dport: str, count: str, seconds: str) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    todo = frames(dst_ip, bytes.fromhex(dst_mac.replace(":", "")), src_mac, int(dport), int(count))
    gap = float(seconds) / len(todo) * BATCH
    t0 = time.monotonic()
    sent = 0
    for j in range(0, len(todo), BATCH):
        for f in todo[j:j + BATCH]:
            try:
                s.send(f)
                sent += 1
            except OSError:
                pass            # ENOBUFS: the device queue is full; not sent, not counted
        delay = t0 + (j // BATCH + 1) * gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"sent {sent} in {time.monotonic() - t0:.2f} s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
