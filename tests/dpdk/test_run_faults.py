"""`nperf run` when a role dies: noticed at once, named, the run stopped and reported, nothing left.

Each case kills one process of the seed's test3 topology with SIGKILL in the
sustain phase, then checks the detection line, a non-zero exit status, a
partial --report whose client accounting still balances, that no DPDK
runtime directory, hugepage file or memif socket of the run is left, and
that the same directory runs again at once.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.topologies import balanced, copy_topology, leftovers, remove_kept_logs, role_pid, runs_again

NPERF = [sys.executable, "-m", "nperf"]
PHASES = {"prepare_duration_sec": 2, "ramp_up_duration_sec": 1, "sustain_duration_sec": 30,
          "ramp_down_duration_sec": 0, "close_duration_sec": 1}


@pytest.mark.parametrize("victim", ["s", "c", "lb_s", "lb_c"])
def test_a_role_killed_during_the_run_stops_it_cleanly(session, victim):
    d = copy_topology(session, "memif/test3", phases=PHASES, tag=victim)
    report = session.path(f"faults_{victim}.json")
    run = subprocess.Popen(NPERF + ["run", d, "--report", report], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in run.stdout:
            out.append(line)
            if re.match(r"\[client c\] \[ *\d+s\] sustain", line):
                break
        pid = role_pid(run.pid, os.path.join(d, f"{victim}.json"))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        noticed = None                        # when the first line naming it arrived (the summary repeats it)
        for line in run.stdout:
            out.append(line)
            if "was killed by SIGKILL" in line and noticed is None:
                noticed = time.monotonic() - killed
        status = run.wait(60)
    finally:
        if run.poll() is None:
            run.kill()
        kept = remove_kept_logs("".join(out))
    text = "".join(out)
    name = {"s": "server s", "c": "client c"}.get(victim, f"lb {victim}")
    assert status != 0, text[-3000:]
    assert f"error: {name} was killed by SIGKILL during the run; stopping the others" in text, text[-3000:]
    assert noticed is not None and noticed < 1.0, noticed
    assert "result: FAILED" in text
    rep = json.load(open(report))
    assert rep["ok"] is False and rep["faults"] == [f"{name} was killed by SIGKILL during the run; stopping the others"]
    roles = {r["name"]: r for r in rep["roles"]}
    assert roles[name]["status"] == -9 and roles[name]["report"] is None
    if victim != "c":
        balanced(roles["client c"]["report"])          # the client settled everything it had open
    assert leftovers(d) == [] and len(kept) == 1, kept
    runs_again(session, victim)
