"""What one integration test starts: processes, DPDK prefixes, a scratch directory.

Every process is stopped and every DPDK file prefix cleaned (hugepage files,
runtime directory) even when the test fails. What the processes left under
their prefixes is looked at *before* that clean-up (a role must remove its
own files, or nperf run those of a killed role): it is in `left_behind`, and
in LEAKS, which fails the test run (conftest).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from nperf.subproc import Proc, clean_prefix

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAKS: list[str] = []        # DPDK files that sessions' processes left behind


def run_nperf(*args: str, timeout: float = 300, cwd: str | None = None) -> subprocess.CompletedProcess:
    """One short `nperf` command run to its end, its output captured (for commands that start no role)."""
    return subprocess.run([sys.executable, "-m", "nperf", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def prefix_files(prefix: str) -> list[str]:
    """The hugepage files and runtime directory of DPDK file prefix `prefix` that exist now."""
    return sorted(glob.glob(f"/dev/hugepages/{prefix}map_*") + glob.glob(f"/var/run/dpdk/{prefix}"))


class Session:
    """What one test started: processes, DPDK prefixes, a scratch directory."""

    def __init__(self):
        self.procs: list[Proc] = []
        self.prefixes: list[str] = []
        self.peer_prefixes: list[str] = []
        self.dir = tempfile.mkdtemp(prefix="nperf-test-")
        self.left_behind: list[str] = []

    def prefix(self, tag: str, peer: bool = False) -> str:
        """A DPDK file prefix for this test. A `peer` tool's (dpdk-testpmd leaves its runtime
        directory) is cleaned but not reported: the check is for nperf's own processes."""
        p = f"npt{os.getpid()}{tag}"
        (self.peer_prefixes if peer else self.prefixes).append(p)
        return p

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write_json(self, name: str, obj) -> str:
        with open(self.path(name), "w") as f:
            json.dump(obj, f)
        return self.path(name)

    def start(self, argv: list[str], name: str, **kw) -> Proc:
        p = Proc(argv, name, cwd=REPO, **kw)
        self.procs.append(p)
        return p

    def nperf(self, *args: str, name: str, **kw) -> Proc:
        return self.start([sys.executable, "-m", "nperf", *args], name, **kw)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.left_behind = [f for prefix in self.prefixes for f in prefix_files(prefix)]
        LEAKS.extend(self.left_behind)
        for prefix in self.prefixes + self.peer_prefixes:
            clean_prefix(prefix)
        shutil.rmtree(self.dir, ignore_errors=True)
