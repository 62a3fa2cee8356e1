"""Real processes for integration tests: start, read lines, stop, clean up.

Every process a test starts is stopped and every DPDK file prefix it used is
cleaned (hugepage files, runtime directory) even when the test fails.
"""
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Proc:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, argv: list[str], name: str, stdin=subprocess.DEVNULL, env=None):
        self.name = name
        self.lines: list[str] = []
        self.pos = 0              # wait_for searches lines from here on
        self._q: queue.Queue[str] = queue.Queue()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=stdin,
                                  text=True, cwd=REPO, env=env or dict(os.environ, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """Wait for a line matching `pattern` after the previous match; fails with the output so far."""
        rx = re.compile(pattern)
        while self.pos < len(self.lines):
            self.pos += 1
            if m := rx.search(self.lines[self.pos - 1]):
                return m
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"{self.name} exited ({self.p.wait()}) before /{pattern}/:\n" + self.text())
            self.lines.append(line)
            self.pos = len(self.lines)
            if m := rx.search(line):
                return m
        raise AssertionError(f"{self.name}: no /{pattern}/ within {timeout}s:\n" + self.text())

    def send(self, text: str) -> None:
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def stop(self, sig=signal.SIGINT, timeout: float = 10.0) -> int:
        """Signal, wait, kill if needed; returns the exit status."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.drain()
        return self.p.returncode

    def drain(self) -> None:
        while True:
            try:
                line = self._q.get(timeout=0.5 if self.p.poll() is not None else 0)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def text(self) -> str:
        self.drain()
        return "\n".join(self.lines[-80:])


class Session:
    """What one test started: processes, DPDK prefixes, a scratch directory."""

    def __init__(self):
        self.procs: list[Proc] = []
        self.prefixes: list[str] = []
        self.dir = tempfile.mkdtemp(prefix="nperf-test-")

    def prefix(self, tag: str) -> str:
        p = f"npt{os.getpid()}{tag}"
        self.prefixes.append(p)
        return p

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write_json(self, name: str, obj) -> str:
        with open(self.path(name), "w") as f:
            json.dump(obj, f)
        return self.path(name)

    def start(self, argv: list[str], name: str, **kw) -> Proc:
        p = Proc(argv, name, **kw)
        self.procs.append(p)
        return p

    def nperf(self, *args: str, name: str, **kw) -> Proc:
        return self.start([sys.executable, "-m", "nperf", *args], name, **kw)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        for prefix in self.prefixes:
            clean_prefix(prefix)
        shutil.rmtree(self.dir, ignore_errors=True)


def clean_prefix(prefix: str) -> None:
    for f in glob.glob(f"/dev/hugepages/{prefix}map_*"):
        os.unlink(f)
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
