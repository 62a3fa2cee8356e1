"""The client and server kernels back to back on arrays (no DPDK): exact counts, with and without loss."""
from nperf.kernels import client_app as ca
from nperf.roles.worker_stack import StackOptions
from tests.stack_pair import Pair

BIG = StackOptions(max_conns=20_000)


def test_total_connections_with_three_requests_each_exactly():
    p = Pair(server_opts=BIG, client_opts=BIG)
    p.schedule([0.2, 0.3, 3.0, 3.1, 3.5], type=ca.O_TOTAL_CONNECTIONS, value=2000, rpc=3, conc_cap=100)
    p.run(5.0)
    assert p.client_counter("connections_opened") == 2000
    assert p.client_counter("requests_sent") == p.client_counter("responses_ok") == 6000
    assert p.counter(p.server, "conn_opened") == p.counter(p.client, "conn_opened") == 2000
    assert p.counter(p.client, "conn_closed") == 2000            # the server closes first: no TIME_WAIT here
    assert p.counter(p.server, "tcp_retransmits") == p.counter(p.client, "tcp_retransmits") == 0
    assert p.client.s.app.sched[ca.K_ACTIVE] == 0 and p.client.s.app.sched[ca.K_FINISHED] == 1


def test_one_percent_loss_each_way_costs_retransmissions_not_responses():
    p = Pair(server_opts=BIG, client_opts=BIG, loss=0.01, seed=7)
    p.schedule([0.2, 0.3, 6.0, 6.1, 9.0], type=ca.O_TOTAL_CONNECTIONS, value=500, rpc=2, conc_cap=50)
    p.run(12.0)
    assert p.lost > 0
    assert p.client_counter("connections_opened") == 500
    assert p.client_counter("responses_ok") == 1000 and p.client_counter("responses_failed") == 0
    assert p.counter(p.server, "tcp_retransmits") + p.counter(p.client, "tcp_retransmits") > 0
