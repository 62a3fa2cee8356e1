"""EAL arguments for a role, and the files a DPDK primary leaves behind.

The config's argument string is kept as the user wrote it; nperf adds the core
option (see `nperf.cores`), `--no-pci` when the port is a vdev and no PCI
device is named (so EAL never probes the machine's own NIC), and quieter
logging unless the user chose a log level.
"""
import fcntl
import glob
import os
import shutil

from nperf.cores import CoreError, place

CORE_OPTIONS = ("-l", "-c", "--lcores", "--main-lcore", "--master-lcore")
PCI_OPTIONS = ("-a", "--allow", "-b", "--block", "-w", "--pci-whitelist", "--pci-blacklist")
RUNTIME_DIR = "/var/run/dpdk"


def _option(arg: str) -> str:
    return arg.split("=", 1)[0]


def build(dpdk_args: str, core_id: int, override: int | None, who: str) -> tuple[list[str], int, int, str | None]:
    """(EAL argv without program name, lcore, cpu, warning or None)."""
    user = dpdk_args.split()
    for a in user:
        if _option(a) in CORE_OPTIONS:
            raise CoreError(f"{who}: remove {_option(a)} from the DPDK arguments; "
                            "nperf sets cores from core_id (or --core)")
    lcore, cpu, warning = place(core_id, override, who)
    args = list(user) + [f"--lcores={lcore}@{cpu}"]
    opts = {_option(a) for a in user}
    if any(a.startswith("--vdev") for a in user) and not opts & set(PCI_OPTIONS) and "--no-pci" not in opts:
        args.append("--no-pci")
    if "--log-level" not in opts:
        args.append("--log-level=lib.eal:warning")
    if "--no-telemetry" not in opts and "--telemetry" not in opts:
        args.append("--no-telemetry")
    return args, lcore, cpu, warning


def _value(args: list[str], name: str, default: str) -> str:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def file_prefix(args: list[str]) -> str:
    return _value(args, "--file-prefix", "rte")


def proc_type(args: list[str]) -> str:
    return _value(args, "--proc-type", "primary")


def primary_running(args: list[str]) -> bool:
    """Whether a DPDK primary with these arguments' file prefix has started (its config file exists)."""
    return os.path.exists(os.path.join(RUNTIME_DIR, file_prefix(args), "config"))


def remove_primary_files(args: list[str]) -> list[str]:
    """After a primary's EAL cleanup: delete its hugepage files and runtime
    directory unless another process (a secondary) still holds them.
    Returns the hugepage files left in place because they are in use.
    (An --in-memory primary has no hugepage files, but EAL still makes the
    runtime directory.)"""
    prefix = file_prefix(args)
    huge_dir = _value(args, "--huge-dir", "/dev/hugepages")
    busy = []
    files = [] if "--in-memory" in args else glob.glob(os.path.join(huge_dir, f"{prefix}map_*"))
    for path in files:
        try:
            with open(path, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
        except BlockingIOError:
            busy.append(path)
        except FileNotFoundError:
            pass
    if not busy:
        shutil.rmtree(os.path.join(RUNTIME_DIR, prefix), ignore_errors=True)
    return busy
