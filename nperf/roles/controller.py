"""The asyncio controller every role runs under.

A role's data plane is one kernel call per *slice* (a few milliseconds); the
controller alternates slices with the event loop, so statistics, signals and
IPC are handled between slices without threads. SIGINT/SIGTERM end the loop
within one slice; the role then flushes, closes its port and writes its report.
With `--ipc PATH` the role also reports to `nperf run` (see `nperf.ipc`);
`--series` and `--metrics-port` get the same per-second figures here.
"""
import asyncio
import os
import signal
import sys
import time
from typing import Protocol

import uvloop

from nperf import ipc
from nperf.metrics import Endpoint
from nperf.reports import Report
from nperf.series import SeriesWriter


class Role(Protocol):
    name: str
    ready_detail: str
    final: Report | None
    # a client also has `second_latency`: the histogram of the second that second() just took

    def poll_slice(self) -> bool:
        """Run the data plane for one slice; False once the role has finished its job."""

    def second(self, elapsed: int) -> tuple[str, dict]:
        """Take the per-second statistics: the line to print and its figures."""

    def finish(self) -> None:
        """Flush, close and write the report (called once, also after errors); sets `final`."""

    def status(self) -> int:
        """Exit status once finished: 0 if the role's job went without failures."""


_stop_requested = False


def catch_stop_signals() -> None:
    """From process start: SIGINT/SIGTERM only ask to stop, even while a role starts up."""
    def ask(signum, frame):
        global _stop_requested
        _stop_requested = True
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, ask)


def run(role: Role, ipc_path: str | None = None, out=sys.stdout, series: SeriesWriter | None = None,
        metrics: Endpoint | None = None, metrics_hold: float = 0.0) -> int:
    """Run `role` until its job ends or a signal arrives; returns the exit status."""
    try:
        return uvloop.run(_run(role, ipc_path, out, series, metrics, metrics_hold))
    finally:
        if series:
            series.close()


async def _run(role: Role, ipc_path: str | None, out, series, metrics, metrics_hold) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if _stop_requested:
        stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    channel = ipc.Channel(ipc_path) if ipc_path else None
    if channel:
        await channel.open()
        await channel.send(ipc.Ready(role.name, role.ready_detail))
    if metrics:
        await metrics.start()
    ticker = asyncio.create_task(_tick(role, out, channel, series, metrics))
    try:
        while not stop.is_set():
            if not role.poll_slice():
                break
            await asyncio.sleep(0)
    finally:
        ticker.cancel()
        role.finish()
    status = role.status()
    if channel:
        await channel.send(ipc.Done(role.name, status, role.final))
        await channel.close()
    if metrics:
        metrics.board.final(role.name, role.final)
        await metrics.close(metrics_hold)
    return status


def resident_mib() -> float:
    """This process's resident memory (MiB): with the roles' held buffers and rows, what a soak watches grow."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


PAGE = os.sysconf("SC_PAGE_SIZE")


async def _tick(role: Role, out, channel, series, metrics) -> None:
    start = time.monotonic()
    n = 0
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n - time.monotonic()))
        line, fields = role.second(n)
        fields["rss_mib"] = resident_mib()
        latency = getattr(role, "second_latency", None)
        print(line, file=out, flush=True)
        if series:
            series.add(role.name, n, fields)
        if metrics:
            metrics.board.second(role.name, fields, latency)
        if channel:
            await channel.send(ipc.Second(role.name, n, line, fields, latency))
