import os

import pytest

from tests.procs import Session

RUNTIME_DIRS = ("/var/run/dpdk", "/dev/hugepages")


def _dpdk_files() -> set[str]:
    return {os.path.join(d, f) for d in RUNTIME_DIRS if os.path.isdir(d) for f in os.listdir(d)}


@pytest.fixture
def session():
    s = Session()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """Every DPDK runtime directory and hugepage file the tests made is gone at the end."""
    before = _dpdk_files()
    yield
    left = sorted(_dpdk_files() - before)
    assert not left, f"DPDK files left behind by the tests: {left}"
