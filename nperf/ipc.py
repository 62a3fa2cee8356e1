"""Messages between `nperf run` (or the asyncio API) and the role processes it starts.

A role connects to the Unix socket given by `--ipc PATH` and sends: `Ready`
once its port, rings and kernels are up, one `Second` per second (the line it
prints, the same figures as numbers and, from a client, that second's
latency histogram), and `Done` with its final report.
Frames are a 4-byte big-endian length and a msgpack body. The socket lives in
a directory only the user can enter.
"""
import asyncio
import struct

import msgspec

from nperf.histogram import Histogram
from nperf.reports import Report


class Ready(msgspec.Struct, tag=True):
    name: str
    detail: str


class Second(msgspec.Struct, tag=True):
    name: str
    elapsed: int
    line: str
    fields: dict[str, float | str]
    latency: Histogram | None = None      # a client's latency histogram of this second


class Done(msgspec.Struct, tag=True):
    name: str
    status: int
    report: Report | None


Message = Ready | Second | Done

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)
_LEN = struct.Struct("!I")
MAX_FRAME = 16 << 20


def frame(msg: Message) -> bytes:
    body = _encoder.encode(msg)
    return _LEN.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None at the end of the stream."""
    try:
        head = await reader.readexactly(_LEN.size)
    except asyncio.IncompleteReadError:
        return None
    (n,) = _LEN.unpack(head)
    if n > MAX_FRAME:
        raise ValueError(f"IPC frame of {n} bytes")
    return _decoder.decode(await reader.readexactly(n))


class Channel:
    """A role's side: connect once, then send messages (never blocks the data plane for long)."""

    def __init__(self, path: str):
        self.path = path
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        _, self.writer = await asyncio.open_unix_connection(self.path)

    async def send(self, msg: Message) -> None:
        if self.writer is None:
            return
        self.writer.write(frame(msg))
        await self.writer.drain()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
            self.writer = None
