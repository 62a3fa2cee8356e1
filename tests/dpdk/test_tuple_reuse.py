"""Source pairs against a Linux peer's TIME_WAIT: the client warns, and counts what happens.

nginx closes first (the client asks `Connection: close`), so Linux holds
each 4-tuple in TIME_WAIT for 60 s. A client with 40 source pairs reuses
them within seconds: it must say so in a warning line, count every early
reuse, and count the SYNs Linux answers with the old connection's ACK
(the client resets that and its SYN is retransmitted); no request fails.

With TCP timestamps (the default) Linux accepts a SYN for a 4-tuple it holds
in TIME_WAIT when the SYN's timestamp is newer than the old connection's
(RFC 6191; nperf's clock is the host's monotonic milliseconds), so no SYN
is challenged; with `--no-timestamps` it decides by sequence number alone,
and with random initial sequence numbers some SYNs are challenged. The same
run measures both.
"""
import json
import re

import pytest

from tests.netns import Netns
from tests.http_servers import EXAMPLE, client_against
from tests.topologies import failures

EXAMPLE_CFG = json.load(open(EXAMPLE))


@pytest.mark.parametrize("timestamps", [False, True], ids=["no-timestamps", "timestamps"])
def test_narrow_source_space_warns_and_counts_early_reuse(session, timestamps):
    ns = Netns("reuse")
    try:
        l3 = {**EXAMPLE_CFG["network"]["l3"], "src_ip_end": EXAMPLE_CFG["network"]["l3"]["src_ip_start"]}
        l4 = {**EXAMPLE_CFG["network"]["l4"], "src_port_start": 20000, "src_port_end": 20039}
        _, client, rep = client_against(
            session, ns, "reuse", network={**EXAMPLE_CFG["network"], "l3": l3, "l4": l4},
            objective={"type": "HTTP_REQUESTS", "value": 4, "requests_per_connection": 1},
            scheduler={"prepare_duration_sec": 3, "ramp_up_duration_sec": 1, "sustain_duration_sec": 6,
                       "ramp_down_duration_sec": 0, "close_duration_sec": 3},
            args=() if timestamps else ("--no-timestamps",))
        assert rep["responses_failed"] == 0 and failures(rep) == 0, rep["errors"]
        assert rep["connections_opened"] > 40                       # every pair was used more than once
        reused = rep["notes"]["pair_reused_early"]
        assert reused == rep["connections_opened"] - 40, rep["notes"]   # each open after the first 40
        assert rep["notes"]["syn_challenged"] == rep["counters"]["tcp_syn_challenged"]
        if timestamps:
            assert rep["counters"]["tcp_syn_challenged"] == 0, rep["notes"]    # RFC 6191
        else:
            assert rep["counters"]["tcp_syn_challenged"] > 0, rep["notes"]
        assert sum(sec["pair_reused_early"] for sec in rep["per_second"]) <= reused
        m = re.search(r"warning: 40 source pairs at ([\d,]+) CPS are reused after ([\d.]+) s; "
                      r"Linux peers hold TIME_WAIT 60 s: widen src_ip or src_port ranges", client.text())
        assert m, client.text()[-2000:]
    finally:
        session.close()
        ns.close()
