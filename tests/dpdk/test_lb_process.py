"""`nperf lb` as a process: errors without tracebacks, core mapping, stop and restart (its idle cost is a figure of `nperf bench lb`)."""
import os
import signal
import subprocess
import sys

from tests.topologies import SEEDS

NPERF = [sys.executable, "-m", "nperf"]


def run(*args, timeout=120):
    return subprocess.run(NPERF + list(args), capture_output=True, text=True, timeout=timeout)


def memif_lb(s, core=5, tag="p"):
    return s.write_json(f"lb_{tag}.json", {
        "dpdk_args": f"--vdev=net_memif,id=0,role=server,socket={s.path('m.sock')},socket-abstract=no "
                     f"--proc-type=primary --file-prefix={s.prefix(tag)}",
        "core_id": core, "num_clients": 1, "clients": [{"id": 0, "ips": ["10.1.0.1"]}]})


def test_invalid_file_is_one_line_and_status_2(session):
    bad = session.write_json("bad.json", {"dpdk_args": "--vdev=net_null0", "core_id": "five",
                                          "num_clients": 1, "clients": [{"id": 0, "ips": ["10.0.0.1"]}]})
    r = run("lb", bad)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {bad}: $.core_id: ") and r.stderr.count("\n") == 1, r.stderr


def test_check_seed_files_and_a_bad_one(session):
    seeds = SEEDS
    files = [os.path.join(d, f) for d, _, fs in os.walk(seeds) for f in fs]
    assert run("check", *files).returncode == 0
    r = run("check", *files, session.write_json("x.json", {"dpdk_args": 1}))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_secondary_arguments_are_refused_clearly(session):
    cfg = session.write_json("sec.json", {"dpdk_args": "--proc-type=secondary --file-prefix=nonexistent_np",
                                          "core_id": 0, "num_clients": 1, "clients": [{"id": 0, "ips": ["10.0.0.1"]}]})
    r = run("lb", cfg)
    assert r.returncode == 1, r.stderr
    assert r.stderr == "error: lb sec: an lb must be a DPDK primary (--proc-type=primary in dpdk_args)\n"


def test_unknown_core_is_mapped_with_a_warning_and_core_option_checked(session):
    cpus = sorted(os.sched_getaffinity(0))            # whatever this machine has
    core = cpus[-1] + 3                               # a core it does not have
    cpu = cpus[core % len(cpus)]
    span = f"{cpus[0]}-{cpus[-1]}" if cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))
    if len(cpus) == 1:
        span = str(cpus[0])
    cfg = memif_lb(session, core=core)
    r = run("lb", cfg, "--core", str(cpus[-1] + 90))
    assert r.returncode == 2 and f"--core {cpus[-1] + 90} is not a CPU of this machine" in r.stderr, r.stderr
    lb = session.nperf("lb", cfg, name="lb")
    lb.wait_for(rf"^warning: lb lb_p: core {core} does not exist here \(CPUs {span}\); running on CPU {cpu} "
                rf"\(choose with --core N\)$")
    lb.wait_for(rf"\] ready: .* lcore {core} on CPU {cpu}$", 300)


def test_an_idle_lb_stops_on_sigterm_with_its_report_and_restarts(session):
    """(Its idle CPU share and exit time are figures of `nperf bench lb`.)"""
    cfg = memif_lb(session, core=1)
    lb = session.nperf("lb", cfg, "--report", session.path("r.json"), name="lb")
    lb.wait_for(r"\] ready", 300)
    lb.wait_for(r"\[  2s\]", 10)
    lb.p.send_signal(signal.SIGTERM)
    assert lb.p.wait(10) == 0
    assert os.path.exists(session.path("r.json"))
    again = session.nperf("lb", cfg, name="lb again")
    again.wait_for(r"\] ready", 120)
    assert again.stop() == 0
    prefix = session.prefixes[-1]
    assert not [f for f in os.listdir("/dev/hugepages") if f.startswith(prefix)]


def test_a_start_that_fails_after_eal_leaves_nothing_behind(session):
    """EAL comes up, then there is no port: a clear error, and finish() still cleans EAL up."""
    prefix = session.prefix("noport")
    cfg = session.write_json("noport.json", {"dpdk_args": f"--no-pci --proc-type=primary --file-prefix={prefix}",
                                             "core_id": 0, "num_clients": 1, "clients": [{"id": 0, "ips": ["10.0.0.1"]}]})
    r = run("lb", cfg)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.endswith("error: no DPDK port: give a --vdev (memif, af_packet, tap...) or bind a NIC\n"), r.stderr
    assert not os.path.exists(f"/var/run/dpdk/{prefix}")
    assert not [f for f in os.listdir("/dev/hugepages") if f.startswith(prefix)]
