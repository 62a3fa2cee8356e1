"""Child processes whose output is read line by line: tests, benchmarks, `nperf run`.

`Proc.wait_for` turns "wait until ready" into "wait for this line", so no caller
needs fixed sleeps; `clean_prefix` removes what a killed DPDK primary leaves;
`run_on_pty` runs a command as if on a user's terminal (the live table).
"""
import fcntl
import glob
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time


class Proc:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, argv: list[str], name: str, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self.name = name
        self.lines: list[str] = []
        self.pos = 0              # wait_for searches lines from here on
        self._q: queue.Queue[str] = queue.Queue()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=stdin,
                                  text=True, cwd=cwd, env=env or dict(os.environ, PYTHONUNBUFFERED="1"))
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



def clean_prefix(prefix: str) -> None:
    for f in glob.glob(f"/dev/hugepages/{prefix}map_*"):
        os.unlink(f)
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def run_on_pty(argv: list[str], timeout: float, columns: int = 160, rows: int = 50) -> tuple[int, str]:
    """(exit status, everything written) of `argv` run with its output on a pseudo-terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:            # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
        status = p.wait(timeout)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return status, out.decode(errors="replace")
