"""`nperf run` stopped from outside, or going on past a fault: Ctrl-C, --keep-going, a dead lb.

Each case runs the seed's test3 topology, acts in the sustain phase, and
checks what the user sees (the lines, the exit status, the --report), that
every connection the client opened is settled with a cause, and that no
DPDK runtime directory, hugepage file or memif socket of the run is left.
test_run_faults covers the default case (a role killed, the run stopped).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

from tests.topologies import balanced, copy_topology, leftovers, remove_kept_logs, role_pid, runs_again

NPERF = [sys.executable, "-m", "nperf"]
PHASES = {"prepare_duration_sec": 2, "ramp_up_duration_sec": 1, "sustain_duration_sec": 8,
          "ramp_down_duration_sec": 0, "close_duration_sec": 1}
SUSTAIN = re.compile(r"\[client c\] \[ *\d+s\] sustain")


class _Run:
    """`nperf run` of a directory in its own process group (as a terminal runs it), its output kept."""

    def __init__(self, session, tag: str, *args: str, phases: dict = PHASES):
        self.dir = copy_topology(session, "memif/test3", phases=phases, tag=tag)
        self.report = session.path(f"stops_{tag}.json")
        self.proc = subprocess.Popen(NPERF + ["run", self.dir, "--report", self.report, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.kept: list[str] = []           # the run directory the failed run kept, removed by close()

    def until(self, pattern: re.Pattern) -> float:
        """Read lines until one matches; returns when it arrived (time.monotonic)."""
        for line in self.proc.stdout:
            self.lines.append(line)
            if pattern.search(line):
                return time.monotonic()
        raise AssertionError(f"no line matched {pattern.pattern}:\n{self.text[-3000:]}")

    def finish(self) -> int:
        self.lines += self.proc.stdout.readlines()
        return self.proc.wait(60)

    def kill(self, role: str) -> float:
        os.kill(role_pid(self.proc.pid, os.path.join(self.dir, f"{role}.json")), signal.SIGKILL)
        return time.monotonic()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.kept = remove_kept_logs(self.text)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def roles(self) -> dict:
        rep = json.load(open(self.report))
        return rep, {r["name"]: r for r in rep["roles"]}


def test_ctrl_c_stops_every_role_and_still_reports(session):
    run = _Run(session, "int")
    try:
        run.until(SUSTAIN)
        os.killpg(run.proc.pid, signal.SIGINT)      # what Ctrl-C in a terminal does: the run and every role
        status = run.finish()
    finally:
        run.close()
    assert status != 0, run.text[-3000:]
    assert "result: FAILED" in run.text
    rep, roles = run.roles()
    assert rep["ok"] is False and rep["faults"] == ["nperf run was interrupted (SIGINT)"], rep["faults"]
    assert sorted(roles) == ["client c", "lb lb_c", "lb lb_s", "server s"]
    assert all(r["report"] is not None for r in roles.values()), {n: r["status"] for n, r in roles.items()}
    balanced(roles["client c"]["report"])
    assert leftovers(run.dir) == [] and len(run.kept) == 1, run.kept
    runs_again(session, "int")


def test_keep_going_runs_the_schedule_past_a_killed_server(session):
    """The requests the dead server held fail as response_timeout after the client's 10 s, in the
    sustain phase: the line of that second shows them."""
    run = _Run(session, "kg", "--keep-going", phases={**PHASES, "sustain_duration_sec": 14})
    try:
        run.until(SUSTAIN)
        run.kill("s")
        run.until(re.compile(r"error: server s was killed by SIGKILL during the run; last lines"))
        seen = len(run.lines)
        status = run.finish()
    finally:
        run.close()
    after = run.lines[seen:]
    assert status != 0, run.text[-3000:]
    assert "stopping the others" not in run.text
    fails = [int(m.group(1)) for line in after if line.startswith("[client c] [")
             and (m := re.search(r"\bfail (\d+)", line))]
    assert len(fails) >= 3 and sum(fails) > 0, after        # the client went on, and said what failed
    rep, roles = run.roles()
    assert rep["faults"] == ["server s was killed by SIGKILL during the run"], rep["faults"]
    assert roles["server s"]["status"] == -9 and roles["server s"]["report"] is None
    client = roles["client c"]["report"]
    assert roles["client c"]["status"] == 1 and client["errors"]["response_timeout"] > 0
    balanced(client)
    assert leftovers(run.dir) == [] and len(run.kept) == 1, run.kept
    runs_again(session, "kg")


def test_a_worker_whose_lb_dies_says_so_and_exits(session):
    run = _Run(session, "lbd", "--keep-going")
    try:
        run.until(SUSTAIN)
        killed = run.kill("lb_s")
        exited = run.until(re.compile(r"error: server s exited with status 1 during the run"))
        status = run.finish()
    finally:
        run.close()
    assert exited - killed < 2.0, exited - killed
    assert "error: server s: its lb (the DPDK primary) has gone: stopping" in run.text, run.text[-3000:]
    assert status != 0
    rep, roles = run.roles()
    assert rep["faults"][:2] == ["lb lb_s was killed by SIGKILL during the run",
                                 "server s exited with status 1 during the run"], rep["faults"]
    assert roles["server s"]["report"] is not None      # it stopped by itself, and reported
    balanced(roles["client c"]["report"])
    assert leftovers(run.dir) == [] and len(run.kept) == 1, run.kept
    runs_again(session, "lbd")
