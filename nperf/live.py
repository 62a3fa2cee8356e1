"""How `nperf run` shows the per-second figures: a live table on a terminal, plain lines elsewhere.

On a terminal four roles printing a line each per second interleave into an
unreadable scroll; `LiveTable` (rich) keeps one table with a row per role,
refreshed each second, and a progress bar along the clients' phases. Off a
terminal (CI, a pipe, a file) `PlainLines` prints each role's line exactly
as the role wrote it, and `--quiet` prints nothing until the summary.
Every view takes `note(line)` (progress before the roles run, such as kernel
compilation) and `second(ipc.Second)`.
"""
import sys

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from nperf import config, ipc
from nperf.stats_format import count

PHASES = ("prepare", "ramp-up", "sustain", "ramp-down", "close")


class Quiet:
    def start(self) -> None:
        pass

    def note(self, line: str) -> None:
        pass

    def second(self, sec: ipc.Second) -> None:
        pass

    def stop(self) -> None:
        pass


class PlainLines(Quiet):
    """Today's output: each role's own line, as it arrives."""

    def note(self, line: str) -> None:
        print(line, flush=True)

    def second(self, sec: ipc.Second) -> None:
        print(sec.line, flush=True)


class LiveTable(Quiet):
    """A row per role and a progress bar along the phases, refreshed once a second."""

    def __init__(self, role_names: list[str], phases: list[tuple[str, float]], console: Console | None = None):
        self.console = console or Console()
        self.rows: dict[str, tuple[int, dict] | None] = {name: None for name in role_names}
        self.phases = phases
        self.live = Live(self.render(), console=self.console, refresh_per_second=1, transient=False)

    def start(self) -> None:
        self.live.start()

    def note(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def second(self, sec: ipc.Second) -> None:
        self.rows[sec.name] = (sec.elapsed, sec.fields)
        self.live.update(self.render())

    def stop(self) -> None:
        self.live.update(self.render(), refresh=True)
        self.live.stop()

    def render(self):
        busy = any(r and "busy" in r[1] for r in self.rows.values())
        t = Table(title="nperf run", title_justify="left")
        for col in ("role", "phase", "target", "conc", "CPS", "RPS", "tx/rx Mbps", "p50/p99 ms", "fail", "drops"):
            t.add_column(col, justify="left" if col in ("role", "phase") else "right")
        if busy:
            t.add_column("busy", justify="right")
        for name, row in self.rows.items():
            t.add_row(*_cells(name, row, busy))
        return Group(t, self._progress())

    def _progress(self):
        total = sum(secs for _, secs in self.phases)
        clients = [r for name, r in self.rows.items() if name.startswith("client") and r]
        elapsed = max((r[0] for r in clients), default=0)
        current = clients[0][1].get("phase", "") if clients else "starting"
        line = Text(f"{elapsed} / {total:g} s ")
        for name, secs in self.phases:
            line.append(f" {name} {secs:g}s ", style="bold reverse" if name == current else "dim")
        return Group(line, ProgressBar(total=max(total, 1), completed=min(elapsed, total), width=60))


def _cells(name: str, row: tuple[int, dict] | None, busy: bool) -> list:
    if row is None:
        return [name, "starting"] + [""] * (9 if busy else 8)
    _, f = row

    def num(key):
        return count(f[key]) if key in f else "-"

    def alert(value):
        return Text(count(value), style="bold red") if value else Text("0")

    phase = f.get("phase") or ("link up" if f.get("link") else "link down" if "link" in f else "")
    lat = f"{f['p50_ms']:.2f}/{f['p99_ms']:.2f}" if "p50_ms" in f else "-"
    cells = [name, phase, num("target"), num("conc") if "conc" in f else num("conns"), num("cps"), num("rps"),
             f"{f.get('tx_mbps', 0):,.1f}/{f.get('rx_mbps', 0):,.1f}", lat,
             alert(f["fail"]) if "fail" in f else "-", alert(f["drops"]) if "drops" in f else "-"]
    if busy:
        cells.append(f"{f['busy'] * 100:.0f}%" if "busy" in f else "-")
    return cells


def choose(roles, client_config: str, duration: float | None, quiet: bool):
    """The view for this output: Quiet, LiveTable on a terminal, PlainLines otherwise."""
    if quiet:
        return Quiet()
    if not sys.stdout.isatty():
        return PlainLines()
    from nperf.roles.worker_stack import phase_lengths
    cfg, _ = config.load_worker(client_config)
    return LiveTable([r.name for r in roles], list(zip(PHASES, phase_lengths(cfg, duration or 0.0))))
