"""Per-second lines and fields of the worker roles, from their counters (no DPDK, no timing).

Rates are the change over the second, counts since start are labelled so;
the busy share is the poll state's busy cycles over all cycles.
"""
import re

import numpy as np

from nperf import config
from nperf.data import SEED_TEST3
from nperf.kernels import poll, stack, worker_loop
from nperf.roles.server import Server
from nperf.roles.worker_stack import StackOptions, build_stack


def server_role() -> Server:
    cfg, _ = config.load_worker(f"{SEED_TEST3}/s.json")
    srv = Server(cfg, "s.json", say=lambda *_: None)
    srv.stack = build_stack(cfg, "server", b"\0" * 6, StackOptions(max_conns=16))
    srv.scratch = worker_loop.LoopScratch().arrays()
    return srv


def field(line: str, label: str) -> str:
    m = re.search(rf"  {re.escape(label)} ([\d,.]+%?)", line)
    assert m, (label, line)
    return m.group(1)


def test_server_line_shows_retransmissions_resets_and_drops_per_second():
    srv = server_role()
    c = srv.stack.counters
    c[stack.C_TCP_RETRANSMITS], c[stack.C_TCP_RESETS_OUT], c[stack.C_DROP_BAD_IP] = 7, 3, 2
    line, fields = srv.second(1)
    assert (field(line, "retrans/s"), field(line, "rst/s"), field(line, "drops/s")) == ("7", "3", "2")
    c[stack.C_TCP_RETRANSMITS] += 5
    c[stack.C_TCP_RESETS_IN] += 1
    line, fields = srv.second(2)
    assert (field(line, "retrans/s"), field(line, "rst/s"), field(line, "drops/s")) == ("5", "1", "0")
    assert fields["retransmits"] == 12 and fields["drop_bad_ip"] == 2     # the fields keep counts since start


def test_busy_share_is_zero_idle_and_one_saturated():
    """By counts: turns that found work against all turns' cycles (kernels.poll.account)."""
    idle, busy = poll.new_poll_state(), poll.new_poll_state()
    for _ in range(1000):
        poll.account(idle, False, 500)
        poll.account(busy, True, 500)
    zero = poll.new_poll_state()
    assert poll.busy_share(zero, idle) == 0.0 and poll.busy_share(zero, busy) == 1.0
    mixed = busy.copy()
    for _ in range(1000):
        poll.account(mixed, False, 1500)
    assert poll.busy_share(busy, mixed) == 0.0 and poll.busy_share(zero, mixed) == 0.25


def test_server_busy_field_follows_its_poll_state():
    srv = server_role()
    pstate = srv.scratch[3]
    for did in [True] * 3 + [False]:
        poll.account(pstate, did, 100)
    line, fields = srv.second(1)
    assert fields["busy"] == 0.75 and field(line, "busy") == "75%"
    line, fields = srv.second(2)
    assert fields["busy"] == 0.0                         # no turn in this second


def test_an_idle_worker_turn_reports_no_work():
    """worker_turn on empty in-memory queues did nothing: the turn counts as idle for the busy share."""
    from tests.tcp_wire import Wire
    w = Wire()
    assert worker_loop.worker_turn(w.fns, w.io, w.s, w.scratch, w.now) == 0
    assert np.all(w.io.tx[2:] == 0)
