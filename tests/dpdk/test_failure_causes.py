"""Every failure cause of the client, each caused by a real Linux peer through a TAP port.

Each case runs the TAP example client for a few seconds against one peer
arrangement in a namespace of its own: nothing listening (Linux answers
RST), a listener whose accept queue is full (Linux drops the SYNs), an
address no one answers ARP for, or tests/misbehaving_server.py. The
client must name the cause in `errors`, exit 1, and its accounting must
add up exactly with nothing left open at exit.
"""
import json
import re

import pytest

from tests.http_servers import EXAMPLE, client_against
from tests.netns import Netns
from tests.procs import Session

PHASES = {"prepare_duration_sec": 1, "ramp_up_duration_sec": 1, "sustain_duration_sec": 4,
          "ramp_down_duration_sec": 1, "close_duration_sec": 2}
NOBODY = "10.77.0.2"      # on the TAP's subnet; the namespace's kernel has only 10.77.0.1

# id: (server, client arguments, destination address, the cause, causes that may also appear)
CASES = {
    "refused": (None, (), None, "connect_refused", set()),
    "syn-dropped": ("peer-full-backlog", ("--syn-retries", "1"), None, "connect_timeout",
                    {"connection_aborted", "response_timeout", "aborted_at_exit", "connection_timeout"}),
    "no-arp-answer": (None, (), NOBODY, "arp_failed", set()),
    "closed-early": ("peer-closed-early", (), None, "closed_early", set()),
    "reset": ("peer-reset", (), None, "reset", {"connection_reset"}),
    "silent": ("peer-silent", ("--idle-timeout", "1"), None, "response_timeout",
               {"connection_timeout", "aborted_at_exit", "connection_aborted"}),
    "bad-status": ("peer-bad-status", (), None, "malformed", set()),
    "bad-chunk": ("peer-bad-chunk", (), None, "malformed", set()),
    "huge-header": ("peer-huge-header", (), None, "malformed", {"aborted_at_exit", "connection_aborted"}),
    "trickle": ("peer-trickle", (), None, "aborted_at_exit", {"connection_aborted"}),
}


@pytest.mark.parametrize("case", CASES)
def test_failure_is_counted_by_its_cause(case):
    server, args, dst, cause, also = CASES[case]
    s, ns = Session(), Netns(f"fc{case[:8]}")
    try:
        changes = {"scheduler": PHASES}
        if dst:
            changes["network"] = _with_destination(dst)
        srv, client, rep = client_against(s, ns, case, server, args=args, status=1, **changes)
        errors = rep["errors"]
        assert errors.get(cause, 0) > 0, (errors, client.text()[-3000:])
        assert {k for k, v in errors.items() if v} <= {cause, *also}, errors
        acc = rep["accounting"]
        for side in ("connections", "requests"):
            o = acc[side]
            assert o["open_now"] == 0, acc
            assert o["started"] == o["ok"] + o["failed"] + o["retried"], acc
            assert o["failed"] == sum(o["failed_by_cause"].values()), acc
        assert acc["connections"]["started"] == rep["connections_opened"] > 0 or cause == "arp_failed", acc
        assert sum(errors.values()) == (acc["connections"]["failed"] + acc["requests"]["failed"]
                                        + errors.get("arp_failed", 0)), (errors, acc)
        assert re.search(rf"\] stopped: .*; errors: (.*, )?{cause} {errors[cause]:,}", client.text()), \
            client.text()[-3000:]
        if srv is not None:
            assert srv.p.poll() is None, srv.text()        # the peer outlived the client: no crash hid a cause
    finally:
        s.close()
        ns.close()


def _with_destination(ip: str) -> dict:
    network = json.load(open(EXAMPLE))["network"]
    network["l3"]["dst_ip_start"] = network["l3"]["dst_ip_end"] = ip
    return network
