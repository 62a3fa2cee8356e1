"""The asyncio API example (examples/api_sweep.py) runs end to end."""
import os
import re
import subprocess
import sys

from tests.procs import REPO
from tests.topologies import SHORT, copy_topology

EXAMPLE = os.path.join(REPO, "examples", "api_sweep.py")


def test_api_sweep_prints_a_row_per_target(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    r = subprocess.run([sys.executable, EXAMPLE, "--dir", d, "--targets", "4,16", "--seconds", "5"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = r.stdout.strip().splitlines()
    assert rows[0].split()[:3] == ["target", "conns", "cps"]
    assert [row.split()[0] for row in rows[1:]] == ["4", "16"]
    assert all(re.search(r"\s0\s+yes$", row) for row in rows[1:]), r.stdout
