"""The client application frame by frame against a scripted HTTP server (tests.http_peer): responses
that end the connection, the keep-alive race, HEAD, Keep-Alive timeouts, unsolicited bytes, and the
accounting of every connection and request, with the failure cause a real peer gives."""
import json

import pytest

from nperf.kernels import client_app as ca
from nperf.kernels import stack as st
from nperf.kernels import tcp
from nperf.roles.client import accounting
from tests.http_peer import HttpServer, response
from tests.tcp_wire import SEED_CLIENT, Wire

PHASES = [0.05, 0.06, 0.6, 0.61, 0.9]          # prepare, ramp-up, sustain, ramp-down, close (ends, s)


def settle(srv):
    """What the role does at exit; then both balances must hold with nothing open."""
    tcp.abort_all(srv.w.s, srv.w.now)
    ca.drop_retries(srv.w.s)
    acc = accounting(srv.w.s)
    assert acc.holds(), acc
    assert acc.connections.open_now == 0 and acc.requests.open_now == 0, acc
    return acc


def test_a_close_response_ends_the_connection_and_is_no_failure():
    w = Wire(role="client")

    def third_closes(conn, head):
        last = len(conn.heads) == 3
        conn.respond(response(headers="Connection: close\r\n" if last else ""), close=last)

    srv = HttpServer(w, third_closes)
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=10)
    srv.run(1.0)
    conns = srv.all_conns()
    assert len(conns) >= 3
    assert all(len(c.heads) == 3 for c in conns[:-1]), [len(c.heads) for c in conns]
    assert all(b"Connection: close" not in h for c in conns for h in c.heads)
    acc = settle(srv)
    assert acc.requests.failed == acc.connections.failed == 0
    assert acc.requests.ok == acc.requests.started - acc.requests.retried > 0
    assert srv.counter("reset") == srv.counter("closed_early") == srv.counter("closed_unused") == 0


def test_http10_response_without_keepalive_ends_the_connection():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.respond(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=10)
    srv.run(1.0)
    assert all(len(c.heads) == 1 for c in srv.all_conns())
    acc = settle(srv)
    assert acc.requests.failed == 0 and acc.requests.ok >= 3


@pytest.mark.parametrize("how", ["reset", "close"])
def test_a_reused_connection_lost_to_the_race_is_retried_once_on_a_new_one(how):
    w = Wire(role="client")

    def second_lost(conn, head):
        if len(conn.heads) == 2 and srv.loading():
            conn.reset() if how == "reset" else conn.close()   # closed idle just as the request left
        else:
            conn.respond(response())

    srv = HttpServer(w, second_lost)
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=100)
    srv.run(1.0)
    conns = srv.all_conns()
    # every connection but the first starts with the request its predecessor lost, same path
    for before, after in zip(conns, conns[1:]):
        assert after.heads[0] == before.heads[1]
    acc = settle(srv)
    assert acc.requests.failed == 0 and acc.connections.failed == 0, acc
    assert acc.requests.retried == len(conns) - 1 >= 2


def test_a_first_request_lost_is_not_retried():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.reset())
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=100)
    srv.run(1.0)
    acc = settle(srv)
    assert acc.requests.retried == 0
    assert acc.requests.failed == acc.requests.failed_by_cause["reset"] == len(srv.all_conns()) >= 2
    assert acc.connections.failed_by_cause["connection_reset"] == len(srv.all_conns())


def test_retry_can_be_turned_off():
    w = Wire(role="client")
    w.s.app.sched[ca.K_RETRY_ON] = 0
    srv = HttpServer(w, lambda conn, head: conn.close() if len(conn.heads) == 2 and srv.loading()
                     else conn.respond(response()))
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=100)
    srv.run(1.0)
    acc = settle(srv)
    assert acc.requests.retried == 0 and acc.requests.failed_by_cause["closed_early"] == acc.requests.failed > 0


def test_head_responses_have_no_body(tmp_path):
    cfg = json.load(open(SEED_CLIENT))
    cfg["http_config"]["paths"][0]["method"] = "HEAD"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    w = Wire(role="client", config=path)
    srv = HttpServer(w, lambda conn, head: conn.respond(response(b"", length=100)))   # Content-Length, no body
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=5)
    srv.run(1.0)
    heads = [h for c in srv.all_conns() for h in c.heads]
    assert heads and all(h.startswith(b"HEAD /hello HTTP/1.1\r\n") for h in heads)
    acc = settle(srv)
    assert acc.requests.failed == 0 and acc.requests.ok == len(heads)


def test_keepalive_timeout_is_respected_between_paced_requests():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.respond(response(headers="Keep-Alive: timeout=1\r\n")))
    srv.schedule([0.05, 0.06, 5.0, 5.01, 5.3], type=ca.O_HTTP_REQUESTS, value=1, rpc=100,
                 interval_ns=2_000_000_000)                # one request every 2 s, idle longer than 1 s
    srv.run(5.5)
    conns = srv.all_conns()
    assert len(conns) >= 3 and all(len(c.heads) == 1 for c in conns), [len(c.heads) for c in conns]
    assert srv.counter("keepalive_closed") >= 2
    acc = settle(srv)
    assert acc.requests.failed == 0 and acc.connections.failed == 0


def test_keepalive_connection_is_reused_within_its_timeout():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.respond(response(headers="Keep-Alive: timeout=5, max=100\r\n")))
    srv.schedule([0.05, 0.06, 2.0, 2.01, 2.3], type=ca.O_HTTP_REQUESTS, value=1, rpc=100, interval_ns=500_000_000)
    srv.run(2.5)
    assert len(srv.all_conns()) == 1 and len(srv.all_conns()[0].heads) >= 3
    assert srv.counter("keepalive_closed") == 0


def test_a_response_nobody_asked_for_is_noted_not_failed():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.respond(response() + response()))
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    srv.run(1.0)
    acc = settle(srv)
    assert srv.counter("unsolicited") == len(srv.all_conns()) >= 1
    assert acc.requests.failed == 0 and acc.connections.failed == 0


def test_truncated_response_is_closed_early():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: conn.respond(response(b"abc", length=10), close=True) if srv.loading()
                     else conn.respond(response(), close=True))
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    srv.run(1.0)
    acc = settle(srv)
    assert acc.requests.failed == acc.requests.failed_by_cause["closed_early"] == srv.counter("responses_failed") > 1
    assert acc.requests.ok + acc.requests.failed == len(srv.all_conns()) and srv.counter("malformed") == 0


def test_connect_refused():
    w = Wire(role="client")
    srv = HttpServer(w, answer_syn="rst")
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=2, rpc=1)
    srv.run(1.0)
    acc = settle(srv)
    assert acc.connections.failed == acc.connections.failed_by_cause["connect_refused"] == srv.syns >= 2
    assert acc.requests.started == 0


def test_connect_timeout():
    w = Wire(role="client", syn_retries=1)
    srv = HttpServer(w, answer_syn="none")
    srv.schedule([0.05, 0.06, 5.0, 5.01, 5.5], type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    srv.run(3.5)                                   # SYN at 0, again at 1 s, given up at 3 s, a new SYN
    assert srv.syns == 3 and srv.counter("connect_timeout") == 1
    acc = settle(srv)
    assert acc.connections.failed_by_cause == {"connect_timeout": 1, "connect_refused": 0, "connection_reset": 0,
                                               "connection_timeout": 0, "connection_aborted": 1, "tls_failed": 0}


def test_unanswered_requests_are_aborted_at_exit():
    w = Wire(role="client")
    srv = HttpServer(w, lambda conn, head: None)
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=3, rpc=1)
    srv.run(0.3)
    assert accounting(w.s).requests.open_now == 3
    acc = settle(srv)
    assert acc.requests.failed_by_cause["aborted_at_exit"] == 3
    assert acc.connections.failed_by_cause["connection_aborted"] == 3


def test_idle_reset_of_an_established_connection_is_a_connection_failure():
    w = Wire(role="client")
    srv = HttpServer(w)
    srv.schedule([0.05, 0.06, 2.0, 2.01, 2.3], type=ca.O_TCP_CONCURRENT, value=2)
    srv.run(0.3)
    for conn in list(srv.conns.values()):
        conn.reset()
    srv.run(0.3)
    acc = settle(srv)
    assert acc.connections.failed_by_cause["connection_reset"] == 2
    assert acc.requests.started == 0


def test_tcp_concurrent_connections_outlive_the_idle_timeout():
    w = Wire(role="client", idle_timeout_s=0.2)
    srv = HttpServer(w)
    srv.schedule([0.05, 0.06, 1.5, 1.51, 1.8], type=ca.O_TCP_CONCURRENT, value=3)
    srv.run(1.2)
    assert srv.syns == 3 and len(srv.conns) == 3
    assert not any(c.rst_received for c in srv.conns.values())
    acc = settle(srv)
    assert acc.connections.failed == 0


def test_connections_that_carried_no_request_are_noted_closed_unused():
    w = Wire(role="client")
    srv = HttpServer(w)
    srv.schedule(PHASES, type=ca.O_TCP_CONCURRENT, value=3)
    srv.run(1.2)
    assert srv.syns == 3 and all(c.fin_received for c in srv.conns.values())
    acc = settle(srv)
    assert acc.connections.ok == 3 and acc.requests.started == 0
    assert srv.counter("closed_unused") == 3


def test_a_destination_without_arp_answer_is_skipped_and_counted_once():
    w = Wire(role="client")
    srv = HttpServer(w)
    s = w.s
    s.params[st.P_ARP_RETRY_US] = 10_000
    s.params[st.P_ARP_TRIES] = 2
    k = s.app.sched
    k[ca.K_DIP_COUNT] = 2                         # 192.168.1.100 answers (the server), .101 never does
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=2, rpc=1)
    srv.run(0.8)
    assert srv.counter("arp_failed") == 1
    assert srv.counter("responses_ok") >= 20 and len(srv.all_conns()) >= 20
    acc = settle(srv)
    assert acc.requests.failed == 0
