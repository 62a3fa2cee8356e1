"""`nperf doctor`: is this machine ready to run nperf? One line per check, one fix per problem.

What a first run trips on, in the order it trips: no hugepages reserved or
none mounted (EAL cannot start), DPDK's libraries or the PMDs nperf uses
missing (memif, af_packet, tap: "no DPDK port"), not root nor holding
CAP_NET_ADMIN and CAP_IPC_LOCK, fewer CPUs than a client/server pair needs,
and a cold kernel cache (every role compiles for a minute: see
nperf.warmup). Exit status 0 when every check passes, 1 otherwise.
"""
import glob
import importlib
import os
import subprocess
import sys
from typing import NamedTuple

MIN_HUGEPAGES = 512              # 2 MB pages: an lb's pool and a worker's, with room for test3's four processes
PMDS = ("memif", "af_packet", "tap")
CAP_NET_ADMIN, CAP_IPC_LOCK = 12, 14
MIN_CPUS = 2


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str
    fix: str = ""


def hugepages(nr_path: str = "/proc/sys/vm/nr_hugepages") -> Check:
    n = int(open(nr_path).read())
    free = _meminfo().get("HugePages_Free", 0)
    if n < MIN_HUGEPAGES:
        return Check("hugepages", False, f"{n} reserved (nperf needs at least {MIN_HUGEPAGES} of 2 MB)",
                     f"echo 1024 > {nr_path}   (as root; add vm.nr_hugepages=1024 to /etc/sysctl.conf to keep it)")
    return Check("hugepages", True, f"{n} reserved, {free} free")


def hugetlbfs_mount(mounts: str = "/proc/mounts") -> Check:
    points = [line.split()[1] for line in open(mounts) if line.split()[2:3] == ["hugetlbfs"]]
    if not points:
        return Check("hugetlbfs mount", False, "no hugetlbfs mounted",
                     "mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages")
    return Check("hugetlbfs mount", True, ", ".join(points))


def dpdk_libraries() -> Check:
    version = _pkg_config("--modversion")
    try:
        importlib.import_module("nperf.bindings.dpdk")      # loads librte_* through the extension
    except ImportError as e:
        return Check("DPDK libraries", False, str(e).splitlines()[0],
                     "apt-get install libdpdk-dev dpdk-dev libssl-dev pkg-config, then pip install . again")
    return Check("DPDK libraries", True, f"DPDK {version or '(pkg-config does not know libdpdk)'}, extension loads")


def pmds() -> Check:
    libdir = _pkg_config("--variable=libdir") or "/usr/lib/x86_64-linux-gnu"
    dirs = sorted(glob.glob(os.path.join(libdir, "dpdk", "pmds-*")))
    have = {p for p in PMDS for d in dirs if glob.glob(os.path.join(d, f"librte_net_{p}.so*"))}
    missing = [p for p in PMDS if p not in have]
    if missing:
        return Check("DPDK PMDs", False, f"missing {', '.join(missing)} in {', '.join(dirs) or libdir + '/dpdk'}",
                     "apt-get install dpdk   (the PMDs are in librte-net-* packages, pulled by dpdk)")
    return Check("DPDK PMDs", True, f"{', '.join(PMDS)} in {dirs[-1]}")


def privileges(status: str = "/proc/self/status") -> Check:
    if os.geteuid() == 0:
        return Check("privileges", True, "root")
    eff = next(int(line.split()[1], 16) for line in open(status) if line.startswith("CapEff:"))
    lacking = [n for n, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_IPC_LOCK", CAP_IPC_LOCK))
               if not eff >> bit & 1]
    if lacking:
        return Check("privileges", False, f"not root and without {', '.join(lacking)}",
                     f"run as root, or: setcap cap_net_admin,cap_ipc_lock+ep {os.path.realpath(sys.executable)}")
    return Check("privileges", True, "CAP_NET_ADMIN and CAP_IPC_LOCK")


def cpus() -> Check:
    n = len(os.sched_getaffinity(0))
    if n < MIN_CPUS:
        return Check("CPUs", False, f"{n} usable", f"give nperf at least {MIN_CPUS} CPUs (a client and a server "
                     "poll on one each); check taskset / cgroup limits")
    return Check("CPUs", True, f"{n} usable (each role polls one; --core N places it)")


def kernel_cache() -> Check:
    from nperf import warmup
    missing = [name for role in warmup.ROLES for name in warmup.missing(role)]
    if missing:
        return Check("kernel cache", False, f"not compiled yet: {', '.join(missing)} (each role would compile "
                     "its kernels for about a minute at start)", f"{sys.executable} -m nperf.warmup")
    return Check("kernel cache", True, "every kernel cached")


def _pkg_config(arg: str) -> str:
    try:
        r = subprocess.run(["pkg-config", arg, "libdpdk"], capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def _meminfo() -> dict[str, int]:
    out = {}
    for line in open("/proc/meminfo"):
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0])
    return out


CHECKS = (hugepages, hugetlbfs_mount, dpdk_libraries, pmds, privileges, cpus, kernel_cache)


def main() -> int:
    ok = True
    for check in CHECKS:
        c = check()
        ok &= c.ok
        print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
        if not c.ok:
            print(f"      fix: {c.fix}")
    print("nperf doctor: " + ("all checks pass" if ok else "problems found (see the fixes above)"))
    return 0 if ok else 1
