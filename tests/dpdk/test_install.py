"""A non-editable `pip install .` runs from any directory, on the checkout's compiled kernels; a role says
when it compiles its kernels."""
import hashlib
import os
import shutil
import subprocess
import sys

import msgspec

from nperf.data import SEED_TEST3
from nperf.kernels import jit
from tests.procs import REPO
from tests.topologies import SEEDS, SHORT, copy_topology

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.so", "*.egg-info", ".pytest_cache")


def sha256(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_shipped_seed_files_are_the_seed_byte_for_byte():
    names = sorted(os.listdir(os.path.join(SEEDS, "memif", "test3")))
    assert sorted(f for f in os.listdir(SEED_TEST3) if f.endswith(".json")) == names == \
        ["c.json", "lb_c.json", "lb_s.json", "s.json"]
    for name in names:
        assert sha256(os.path.join(SEED_TEST3, name)) == sha256(os.path.join(SEEDS, "memif", "test3", name))


def test_installed_nperf_runs_from_the_checkout_and_from_elsewhere(session):
    checkout = session.path("checkout")               # a fresh checkout: sources only, nothing built in it
    shutil.copytree(REPO, checkout, ignore=COPY_IGNORE)
    venv = session.path("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True, timeout=120)
    py = os.path.join(venv, "bin", "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", checkout],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    where = {cwd: subprocess.run([py, *flags, "-c", "import nperf; print(nperf.__file__)"], cwd=cwd,
                                 capture_output=True, text=True, check=True).stdout.strip()
             for cwd, flags in ((session.dir, []), (checkout, ["-P"]))}
    assert set(where.values()) == {os.path.join(site, "nperf", "__init__.py")}
    # without -P, the checkout shadows the install (and has no DPDK extension built): why children get -P
    shadowed = subprocess.run([py, "-c", "import nperf; print(nperf.__file__)"], cwd=checkout,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert shadowed == os.path.join(checkout, "nperf", "__init__.py")

    # The install's own first run would compile its kernels for 12-15 minutes here. Pointed at the
    # checkout's cache it loads them: kernels are cached by module path and the same sources' digest.
    d = copy_topology(session, "memif/test4", phases=SHORT)
    nperf = os.path.join(venv, "bin", "nperf")
    env = dict(os.environ, NUMBA_CACHE_DIR=jit.CACHE_ROOT)
    for n, cwd in enumerate((checkout, session.dir)):
        report = session.path(f"report{n}.json")
        r = subprocess.run([nperf, "run", d, "--report", report], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, f"from {cwd}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        rep = msgspec.json.decode(open(report, "rb").read())
        assert rep["ok"] and rep["schema_version"] == 1
        client = next(x["report"] for x in rep["roles"] if x["kind"] == "client")
        assert client["responses_ok"] > 0 and client["responses_failed"] == 0
        # the install shipped every kernel source (else another digest, and a compile)
        assert "compiling" not in r.stdout, r.stdout[:2000]


def test_a_role_says_it_compiles_its_kernels_before_its_port(session, tmp_path):
    d = copy_topology(session, "memif/test3", phases=SHORT)
    env = dict(os.environ, PYTHONUNBUFFERED="1", NUMBA_CACHE_DIR=str(tmp_path / "cold"))
    lb = session.nperf("lb", os.path.join(d, "lb_s.json"), name="lb_s", env=env)
    lb.wait_for(r"^\[lb lb_s\] compiling kernels \(1/2\): lb_poll", timeout=120)
    lb.wait_for(r"^\[lb lb_s\] compiling kernels \(2/2\): lb_flush", timeout=300)
    lb.wait_for(r"^\[lb lb_s\] ready: port net_memif", timeout=300)
    assert lb.stop() == 0, lb.text()
    again = session.nperf("lb", os.path.join(d, "lb_s.json"), name="lb_s again", env=env)
    again.wait_for(r"ready", timeout=120)
    assert again.stop() == 0
    assert not any("compiling" in line for line in again.lines)
