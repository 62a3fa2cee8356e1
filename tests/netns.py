"""Test network namespaces: every kernel-facing packet of a test stays inside one."""
import os
import subprocess


class Netns:
    """`ip netns` namespace named for this test process; deleted on close."""

    def __init__(self, tag: str):
        self.name = f"npt{os.getpid()}{tag}"
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=timeout, check=check)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
