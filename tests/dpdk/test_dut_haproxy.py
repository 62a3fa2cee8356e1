"""haproxy as a device under test between an nperf client and server: `examples/dut-haproxy/run.py`.

The example itself runs (its namespace, TAP ports and haproxy from apt);
the test reads what it wrote: nperf's run report, haproxy's `show stat`
rows and the pairs of counts that must agree.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.procs import REPO
from tests.topologies import failures

RUN = os.path.join(REPO, "examples", "dut-haproxy", "run.py")


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_haproxy_counts_equal_nperf_counts_without_failures(session, mode):
    out = session.path(f"dut_{mode}.json")
    r = subprocess.run([sys.executable, RUN, "--mode", mode, "--duration", "4", "--json", out],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    d = json.load(open(out))
    assert d["agree"] and d["checks"], d["checks"]
    for check in d["checks"]:
        assert check["value"] == check["haproxy_value"], check
    client = next(x["report"] for x in d["nperf"]["roles"] if x["kind"] == "client")
    assert client["responses_failed"] == 0 and failures(client) == 0, client["errors"]
    assert client["responses_ok"] > 500
    assert client["responses_ok"] == client["requests_sent"]
    # one request per connection; a connection established as the close phase began carries none
    assert client["connections_opened"] == client["requests_sent"] + client["notes"]["closed_unused"]
    assert client["notes"]["closed_unused"] <= 32, client["notes"]       # at most the concurrency
    assert client["http"]["body_bytes"] == client["responses_ok"] * 100
    fe = d["haproxy"]["FRONTEND"]
    assert int(fe["stot"]) == client["connections_opened"]
    assert f"haproxy mode {mode}" in r.stdout
    assert " was the limit (" in r.stdout or "no side was saturated" in r.stdout
