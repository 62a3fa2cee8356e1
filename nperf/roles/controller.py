"""The asyncio controller every role runs under.

A role's data plane is one kernel call per *slice* (a few milliseconds); the
controller alternates slices with the event loop, so statistics, signals and
IPC are handled between slices without threads. SIGINT/SIGTERM end the loop
within one slice; the role then flushes, closes its port and writes its report.
"""
import asyncio
import signal
import sys
import time
from typing import Protocol

import uvloop


class Role(Protocol):
    name: str

    def poll_slice(self) -> bool:
        """Run the data plane for one slice; False once the role has finished its job."""

    def second(self, elapsed: int) -> str:
        """Take the per-second statistics; returns the line to print."""

    def finish(self) -> None:
        """Flush, close and write the report (called once, also after errors)."""


_stop_requested = False


def catch_stop_signals() -> None:
    """From process start: SIGINT/SIGTERM only ask to stop, even while a role starts up."""
    def ask(signum, frame):
        global _stop_requested
        _stop_requested = True
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, ask)


def stop_requested() -> bool:
    return _stop_requested


def run(role: Role, out=sys.stdout) -> int:
    """Run `role` until its job ends or a signal arrives; returns the exit status."""
    return uvloop.run(_run(role, out))


async def _run(role: Role, out) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if _stop_requested:
        stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(_tick(role, out))
    try:
        while not stop.is_set():
            if not role.poll_slice():
                break
            await asyncio.sleep(0)
    finally:
        ticker.cancel()
        role.finish()
    return 0


async def _tick(role: Role, out) -> None:
    start = time.monotonic()
    n = 0
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n - time.monotonic()))
        print(role.second(n), file=out, flush=True)
