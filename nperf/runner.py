"""`nperf run DIR`: the asyncio API with a view (live table, plain lines or quiet), outputs and a summary.

The per-second figures arriving over IPC go to the view (nperf.live), to
`--series` (nperf.series) and to `--metrics-port` (nperf.metrics); at the end
come the summary, `--report` and the `--slo` verdicts, then the metrics
endpoint waits (`--metrics-hold`) for one last scrape of the final figures.
"""
import asyncio
import signal

import msgspec
import uvloop

from nperf import api, headline, live, slo
from nperf.metrics import Endpoint
from nperf.reports import ClientReport, LbReport, ServerReport
from nperf.series import SeriesWriter
from nperf.stats_format import count


def main(directory: str, duration: float | None = None, report: str | None = None, series: str | None = None,
         slos: list[slo.Slo] = (), metrics_port: int | None = None, metrics_hold: float = 0.0,
         quiet: bool = False, keep_going: bool = False) -> int:
    topology = api.Topology.from_dir(directory)
    client = next(r for r in topology.roles if r.kind == "client")
    view = live.choose(topology.roles, client.path, duration, quiet)
    writer = SeriesWriter(series) if series else None
    endpoint = Endpoint(metrics_port) if metrics_port is not None else None
    try:
        return uvloop.run(_main(topology, duration, view, writer, endpoint, metrics_hold, report, slos,
                                keep_going))
    finally:
        if writer:
            writer.close()


async def _main(topology, duration, view, writer, endpoint, metrics_hold, report, checks, keep_going) -> int:
    if endpoint:
        await endpoint.start()
    result = await _follow(topology, duration, view, writer, endpoint, keep_going)
    for fault in result.faults:
        print(f"error: {fault}")
    print(summary(result))
    if report:
        with open(report, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(result)))
    lines, slo_ok = slo.evaluate(checks, headline.figures(result))
    for line in lines:
        print(line)
    if endpoint:
        for r in result.roles:
            endpoint.board.final(r.name, r.report)
        await endpoint.close(metrics_hold)
    return 0 if result.ok and slo_ok else 1


async def _follow(topology: api.Topology, duration: float | None, view, writer, endpoint,
                  keep_going: bool) -> api.RunResult:
    async with api.Run(topology, duration, say=view.note, keep_going=keep_going) as run:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):     # stop every role, and still report
            loop.add_signal_handler(sig, run.interrupt, f"nperf run was interrupted ({sig.name})")
        view.start()
        def one(sec):
            view.second(sec)
            if writer:
                writer.add(sec.name, sec.elapsed, sec.fields)
            if endpoint:
                endpoint.board.second(sec.name, sec.fields, sec.latency)
        try:
            async for sec in run.seconds():
                one(sec)
            result = await run.wait()
            for sec in run.late_seconds():
                one(sec)
        finally:
            view.stop()
        if not result.ok:
            for r in result.roles:
                if r.status != 0 or r.report is None:
                    print(f"--- {r.name} (status {r.status}), last lines of its log:\n{run.log_tail(r.name)}")
            print(f"role logs kept in {run.dir}")
        return result


def summary(result: api.RunResult) -> str:
    rows = [("role", "status", "figures")]
    for r in result.roles:
        rows.append((r.name, str(r.status), _figures(r.report)))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    lines.append("result: " + ("ok" if result.ok else "FAILED"))
    return "\n".join(lines)


def _tls(rep) -> str:
    return f", {rep.tls.text()}" if rep.tls else ""


def _figures(rep) -> str:
    if isinstance(rep, ClientReport):
        return (f"{count(rep.connections_opened)} conns, {count(rep.requests_sent)} requests, "
                f"{count(rep.responses_ok)} ok, {count(rep.responses_failed)} failed, "
                f"sustain {rep.sustain.cps:,.0f} cps {rep.sustain.rps:,.0f} rps "
                f"{rep.sustain.tx_mbps:,.1f}/{rep.sustain.rx_mbps:,.1f} Mbps tx/rx, "
                f"latency p50 {rep.latency_ms.p50:.2f} p99 {rep.latency_ms.p99:.2f} max {rep.latency_ms.max:.2f} ms"
                + (f", {count(rep.udp_sent)} udp sent" if rep.udp_sent else "") + _tls(rep))
    if isinstance(rep, ServerReport):
        c = rep.counters
        return (f"{count(c['conn_opened'])} conns, {count(rep.http['requests'])} requests, "
                f"{count(c['tcp_retransmits'])} retransmissions, {count(c['udp_in'])} udp in, "
                f"{count(rep.active_connections)} open at exit" + _tls(rep))
    if isinstance(rep, LbReport):
        impaired = "".join(f", {d}: lost {count(c['lost'])} corrupted {count(c['corrupted'])} "
                           f"duplicated {count(c['duplicated'])} reordered {count(c['reordered'])} "
                           f"delayed {count(c['delayed'])}" for d, c in (rep.impair or {}).items())
        return (f"rx {count(rep.port.rx_packets)} tx {count(rep.port.tx_packets)} packets, "
                f"drops {count(sum(rep.drops.values()))}" + impaired)
    return "no report"
