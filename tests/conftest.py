import glob
import os
import pathlib
import tempfile

import pytest

from tests.procs import LEAKS, Session

RUNTIME_DIRS = ("/var/run/dpdk", "/dev/hugepages")


def _dpdk_files() -> set[str]:
    return {os.path.join(d, f) for d in RUNTIME_DIRS if os.path.isdir(d) for f in os.listdir(d)}


def _nperf_temp_dirs() -> set[str]:
    """nperf's temp directories: a run's (role logs, kept when it fails) and from_configs' files."""
    tmp = tempfile.gettempdir()
    return {p for kind in ("run", "topology") for p in glob.glob(os.path.join(tmp, f"nperf-{kind}-*"))}


LAYERS = ("unit", "dpdk")      # tests/unit: no root, no DPDK; tests/dpdk: real processes


def pytest_collection_modifyitems(items):
    """Each test is marked by its layer's directory (`-m unit`, `-m dpdk`); none lives outside them."""
    for item in items:
        layer = pathlib.Path(str(item.fspath)).parent.name
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit or tests/dpdk")
        item.add_marker(layer)


@pytest.fixture
def session():
    s = Session()
    try:
        yield s
    finally:
        s.close()
    assert not s.left_behind, f"this test's processes left DPDK files behind: {s.left_behind}"


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """Every DPDK runtime directory, hugepage file and nperf temp directory the tests made is gone at the end."""
    before, temp_before = _dpdk_files(), _nperf_temp_dirs()
    yield
    left = sorted(_dpdk_files() - before)
    assert not left, f"DPDK files left behind by the tests: {left}"
    temp_left = sorted(_nperf_temp_dirs() - temp_before)
    assert not temp_left, f"nperf temp directories left behind by the tests: {temp_left}"
    assert not LEAKS, f"processes left DPDK files behind (cleaned by their tests): {LEAKS}"
