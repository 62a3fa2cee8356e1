"""`nperf doctor` passes on this machine and names the fix when something is missing."""
import os
import subprocess
import sys

NR = "/proc/sys/vm/nr_hugepages"


def doctor(**env):
    return subprocess.run([sys.executable, "-m", "nperf", "doctor"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))


def test_passes_here():
    r = doctor()
    assert r.returncode == 0, r.stdout + r.stderr
    names = [line.split(":")[0][6:] for line in r.stdout.splitlines()[:-1]]
    assert names == ["hugepages", "hugetlbfs mount", "DPDK libraries", "DPDK PMDs", "privileges", "CPUs",
                     "kernel cache"]
    assert all(line.startswith("ok    ") for line in r.stdout.splitlines()[:-1]), r.stdout
    assert "memif, af_packet, tap in /usr/lib/x86_64-linux-gnu/dpdk/pmds-" in r.stdout
    assert r.stdout.splitlines()[-1] == "nperf doctor: all checks pass"


def test_no_hugepages_fails_with_the_fix():
    before = open(NR).read().strip()
    try:
        with open(NR, "w") as f:
            f.write("0")
        r = doctor()
    finally:
        with open(NR, "w") as f:
            f.write(before)
    assert open(NR).read().strip() == before
    assert r.returncode == 1, r.stdout
    lines = r.stdout.splitlines()
    i = lines.index("FAIL  hugepages: 0 reserved (nperf needs at least 512 of 2 MB)")
    assert lines[i + 1].startswith("      fix: echo 1024 > /proc/sys/vm/nr_hugepages")
    assert sum(line.startswith("FAIL") for line in lines) == 1


def test_a_cold_kernel_cache_fails_with_the_fix(tmp_path):
    r = doctor(NUMBA_CACHE_DIR=str(tmp_path))
    assert r.returncode == 1
    assert "FAIL  kernel cache: not compiled yet: lb_poll, lb_flush, worker_poll (server), worker_poll (client)" \
        in r.stdout
    assert f"      fix: {sys.executable} -m nperf.warmup" in r.stdout
