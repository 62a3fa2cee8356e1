"""A misbehaving HTTP server on Linux's TCP, for the client's failure-cause tests.

`python tests/misbehaving_server.py MODE [ADDRESS [PORT]]` listens on ADDRESS:PORT
(10.77.0.1:80; the test's namespace allows binding it before the address
exists) and answers every request the way MODE says. Each mode causes one
failure cause of nperf's client:

- ``closed-early``: Content-Length 100, 10 body bytes, then FIN (closed_early).
- ``reset``: reads the request, then closes with RST (reset).
- ``silent``: reads requests and never answers (response_timeout).
- ``full-backlog``: never accepts, and fills its one-slot accept queue with a
  connection of its own, so that Linux drops every further SYN (connect_timeout).
- ``bad-status``, ``bad-chunk``, ``huge-header``: a malformed status line, a
  chunk size that is not hex, a header section of 1 MiB (malformed).
- ``trickle``: a valid response, one byte per second (never complete within a test).
"""
import asyncio
import socket
import sys
import time

HEAD_END = b"\r\n\r\n"
RESPONSES = {
    "closed-early": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
    "bad-status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "huge-header": b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"f" * (1 << 20) + b"\r\nContent-Length: 0\r\n\r\n",
    "trickle": b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"t" * 20,
}
MODES = ("reset", "silent", "full-backlog", *RESPONSES)


async def serve(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(HEAD_END)
            if mode == "silent":
                continue
            if mode == "reset":
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.transport.abort()
                return
            data = RESPONSES[mode]
            if mode == "trickle":
                for i in range(len(data)):
                    writer.write(data[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(1.0)
                continue
            writer.write(data)
            await writer.drain()
            if mode == "closed-early":
                writer.close()
                return
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()


def full_backlog(address: str, port: int) -> None:
    """Listen with no accept queue to spare, then take its one slot (once the address exists)."""
    listener = socket.create_server((address, port), backlog=0)
    while True:
        try:
            own = socket.create_connection((address, port), timeout=0.2)
            break
        except OSError:
            time.sleep(0.05)
    while listener and own:          # both stay open until the test stops this process
        time.sleep(3600)


async def main(mode: str, address: str, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: serve(mode, r, w), address, port, limit=1 << 16)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode not in MODES:
        sys.exit(f"error: mode {mode!r} is not one of {', '.join(MODES)}")
    addr = sys.argv[2] if len(sys.argv) > 2 else "10.77.0.1"
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 80
    if mode == "full-backlog":
        full_backlog(addr, port)
    else:
        asyncio.run(main(mode, addr, port))
