"""`nperf run` on a terminal shows one live table; piped, it prints plain lines; --quiet only the summary."""
import re
import subprocess
import sys

from rich.console import Console

from nperf import live
from nperf.subproc import run_on_pty
from tests.topologies import SHORT, copy_topology

PLAIN_LINE = re.compile(r"^\[(client|server) \w+\] \[ *\d+s\]", re.M)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_terminal_gets_the_table_with_its_phases(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    status, out = run_on_pty([sys.executable, "-m", "nperf", "run", d], timeout=300)
    text = ANSI.sub("", out)
    assert status == 0, text[-3000:]
    assert not PLAIN_LINE.search(text), text[-3000:]                   # no per-role lines: the table instead
    header = next(line for line in text.splitlines() if "role" in line and "CPS" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == \
        ["role", "phase", "target", "conc", "CPS", "RPS", "tx/rx Mbps", "p50/p99 ms", "fail", "drops", "busy"]
    rows = [line for line in text.splitlines() if line.startswith("│ client c") or line.startswith("│ server s")]
    assert any(re.match(r"│ client c │ sustain │ +1,000 │ +1,000 │ +[\d,]+ │", r) for r in rows), rows[-6:]
    assert any(r.startswith("│ server s") for r in rows)
    assert "prepare 2s" in text and "sustain 4s" in text and "close 2s" in text      # the progress along phases
    assert "━" in text
    assert "result: ok" in text


def test_quiet_prints_only_the_summary(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    r = subprocess.run([sys.executable, "-m", "nperf", "run", d, "--quiet"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["role", "status", "figures"]
    assert [line.split()[0:2] for line in lines[1:3]] == [["server", "s"], ["client", "c"]]
    assert lines[3:] == ["result: ok"]


def test_failures_and_drops_are_highlighted_and_busy_shown_when_known():
    console = Console(width=160, force_terminal=True, color_system="standard", record=True)
    view = live.LiveTable(["lb lb_s", "client c"], [("prepare", 1), ("sustain", 3)], console=console)
    view.rows["lb lb_s"] = (2, {"link": 1, "rx_pps": 10, "tx_pps": 10, "tx_mbps": 1.0, "rx_mbps": 2.0, "drops": 7,
                                "busy": 0.25})
    view.rows["client c"] = (2, {"phase": "sustain", "target": 10, "conc": 9, "cps": 1234, "rps": 1200, "fail": 0,
                                 "tx_mbps": 3.0, "rx_mbps": 4.0, "p50_ms": 0.5, "p99_ms": 1.25})
    console.print(view.render())
    text = console.export_text(styles=True)
    plain = ANSI.sub("", text)
    assert re.search(r"│ lb lb_s +│ link up +│ +- │ +- │ +- │ +- │ +1.0/2.0 │ +- │ +- │ \x1b\[1;31m +7\x1b\[0m │ +25% │", text)
    assert re.search(r"│ client c │ sustain │ +10 │ +9 │ +1,234 │ +1,200 │ +3.0/4.0 │ +0.50/1.25 │ +0 │ +- │ +- │", plain)
    assert "2 / 4 s" in plain and "busy" in plain
    assert "busy" not in ANSI.sub("", _render(live.LiveTable(["client c"], [("sustain", 3)], console=console)))


def _render(view) -> str:
    console = Console(width=160, force_terminal=True, record=True)
    console.print(view.render())
    return console.export_text(styles=True)
