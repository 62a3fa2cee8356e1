"""The leftover check sees what a test's processes leave behind before the test's own clean-up."""
import os
import sys

from tests.procs import LEAKS, Session


def test_a_process_that_leaves_a_hugepage_file_is_caught_then_cleaned():
    s = Session()
    fake = f"/dev/hugepages/{s.prefix('leak')}map_0"
    leaky = s.start([sys.executable, "-c", f"open({fake!r}, 'w').close()"], "leaky")
    assert leaky.p.wait(60) == 0
    try:
        s.close()
        assert s.left_behind == [fake]
        assert LEAKS[-1] == fake
        assert not os.path.exists(fake)
    finally:
        if fake in LEAKS:
            LEAKS.remove(fake)


def test_a_process_that_cleans_up_leaves_nothing_to_report():
    s = Session()
    fake = f"/dev/hugepages/{s.prefix('tidy')}map_0"
    tidy = s.start([sys.executable, "-c", f"import os; open({fake!r}, 'w').close(); os.unlink({fake!r})"], "tidy")
    assert tidy.p.wait(60) == 0
    s.close()
    assert s.left_behind == []
