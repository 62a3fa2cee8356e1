"""Run a command with its output on a pseudo-terminal (as a user's terminal) and collect what it wrote."""
import fcntl
import os
import struct
import subprocess
import termios


def run_on_pty(argv: list[str], timeout: float, columns: int = 160, rows: int = 50) -> tuple[int, str]:
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
