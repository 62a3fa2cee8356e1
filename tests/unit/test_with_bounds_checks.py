"""Every unit test again, its kernels compiled with bounds checks (NUMBA_BOUNDSCHECK=1).

Malformed frames, requests and tables must never read or write past an
array: with bounds checks an out-of-range index raises IndexError instead of
reading a neighbour's memory, so the same tests that pass without checks
must pass with them. The run uses a private kernel cache (bounds-checked
code never mixes with the production cache) and fewer fuzz examples. It
compiles for checking, not for speed: LLVM's optimisations are off
(NUMBA_OPT=0), which changes nothing an index reaches.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from nperf.kernels.jit import kernel
from tests.procs import REPO

UNIT = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = "tests/unit/test_with_bounds_checks.py::test_unit_tests_pass_with_bounds_checks"


@kernel
def _read(a, i):
    return a[i]


def test_bounds_checks_reach_nperf_kernels():
    """nperf's own decorator honours the flag: under it, an out-of-range index raises."""
    a = np.zeros(2, np.uint8)
    if os.environ.get("NUMBA_BOUNDSCHECK") == "1":
        with pytest.raises(IndexError):
            _read(a, 2)
    else:
        assert _read(a, 1) == 0


@pytest.mark.timeout(6300)
def test_unit_tests_pass_with_bounds_checks(tmp_path):
    """A bound against a hang, not a speed limit: the rerun compiles every kernel anew with checks."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_OPT="0",
               NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               NPERF_FUZZ_EXAMPLES="300")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", UNIT,
                          "--deselect", LAUNCHER], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=6000)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert " passed" in run.stdout and " failed" not in run.stdout and "skipped" not in run.stdout, \
        run.stdout[-2000:]
    assert "1 deselected" in run.stdout, run.stdout[-2000:]
