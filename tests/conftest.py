import pytest

from tests.procs import Session


@pytest.fixture
def session():
    s = Session()
    try:
        yield s
    finally:
        s.close()
