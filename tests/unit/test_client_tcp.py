"""The client's TCP frame by frame against tests.http_peer's scripted server: the active open, SYN
retries and their back-off, response data out of order, and RST in each state of a connection.

The server side records every segment the client sends, with the time it was sent
(`Recording.seen`); the client stack runs as in production (`Wire(role="client")`)."""
import struct

import numpy as np

from nperf.kernels import client_app as ca
from nperf.kernels import stack as st
from nperf.kernels import tcp_table as tt
from tests.http_peer import SERVER_IP, SERVER_MAC, SERVER_PORT, HttpServer, response
from tests.tcp_wire import ACK, CLIENT_MAC, M32, PSH, RST, SYN, Wire, tcp_frame
from tests.unit.test_client_app import PHASES, settle

MS = 1000
SECOND = 1_000_000


class Recording(HttpServer):
    """An HttpServer that keeps (time in µs, segment) of everything the client sent."""

    def __init__(self, *args, **kw):
        self.seen = []
        super().__init__(*args, **kw)

    def receive(self, seg) -> None:
        self.seen.append((self.w.now, seg))
        super().receive(seg)

    def until(self, done, dt: int = 200, limit: int = 100_000) -> None:
        for _ in range(limit):
            if done():
                return
            self._step(dt)
        raise AssertionError("the client never got there")

    def sent_since(self, i: int) -> list:
        return [g for _, g in self.seen[i:]]


def one_connection(on_request=None, synack_options=b"", sack=True, **objective):
    w = Wire(role="client", sack=sack)
    srv = Recording(w, on_request, synack_options=synack_options)
    srv.schedule(PHASES, **{"type": ca.O_HTTP_REQUESTS, "value": 1, "rpc": 1, **objective})
    return w, srv


def held(conn, head) -> None:
    """A server that answers nothing by itself: the test sends what it wants."""


def test_active_open_syn_options_and_the_request_on_the_handshake_ack():
    w, srv = one_connection()
    srv.until(lambda: srv.all_conns() and srv.all_conns()[0].heads)
    syn, req = srv.sent_since(0)[:2]
    conn = srv.all_conns()[0]
    assert syn.flags == SYN and syn.payload == b"" and syn.dport == SERVER_PORT and syn.dst_ip == SERVER_IP
    assert syn.options == {"mss": int(w.s.params[st.P_MSS]), "ws": int(w.s.params[st.P_RCV_WSCALE]), 4: b""}
    assert not w.tcb.flags[conn_slot(w)] & tt.F_SACK    # SACK offered; the server did not permit it
    assert syn.window == 65535                           # a SYN's window is never scaled (RFC 7323 2.2)
    assert req.flags == PSH | ACK and req.seq == (syn.seq + 1) & M32 and req.ack == (conn.isn + 1) & M32
    assert req.window << w.s.params[st.P_RCV_WSCALE] == w.s.params[st.P_RCV_WND]
    assert req.payload == conn.heads[0] and req.payload.startswith(b"GET /hello HTTP/1.1\r\n")


def test_syn_retries_back_off_doubling_and_then_connect_timeout():
    w = Wire(role="client", syn_retries=3)
    srv = Recording(w, answer_syn="none")
    srv.schedule([0.01, 0.02, 30.0, 30.0, 30.5], type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    srv.until(lambda: srv.counter("connect_timeout") == 1, dt=MS)
    syns = [(t, g) for t, g in srv.seen if g.flags & SYN]
    first_port = syns[0][1].sport
    mine = [(t, g) for t, g in syns if g.sport == first_port and g.src_ip == syns[0][1].src_ip]
    t0 = mine[0][0]
    due = [0, 1, 3, 7]                                  # the RTO: 1 s, doubled after each try
    assert len(mine) == 4 and all(abs(t - t0 - d * SECOND) <= 2 * MS for (t, _), d in zip(mine, due)), mine
    assert len({(g.seq, tuple(g.options.items())) for _, g in mine}) == 1      # the same SYN each time
    assert abs(w.now - t0 - 15 * SECOND) <= 2 * MS       # given up 8 s after the last
    assert w.counter("tcp_retransmits") >= 3


def test_response_data_out_of_order_is_kept_and_completes_when_the_hole_fills():
    w, srv = one_connection(held)
    srv.until(lambda: srv.all_conns() and srv.all_conns()[0].heads)
    conn = srv.all_conns()[0]
    data = response(body=b"x" * 100)
    first, second = data[:50], data[50:]
    start = conn.snd_nxt
    ahead = conn._frame(ACK | PSH, second, seq=(start + len(first)) & M32)
    mark = len(srv.seen)
    srv.pending.append(ahead)
    srv._step(200)
    assert [(g.flags, g.ack, g.payload) for g in srv.sent_since(mark)] == [(ACK, start, b"")]   # a duplicate ACK
    assert (w.counter("tcp_out_of_order"), w.counter("tcp_ooo_kept")) == (1, 1)
    assert srv.counter("responses_ok") == 0
    mark = len(srv.seen)
    srv.pending.append(conn._frame(ACK | PSH, first))
    srv._step(200)
    assert srv.counter("responses_ok") == 1              # the hole filled: the whole response at once
    assert srv.sent_since(mark)[0].ack == (start + len(data)) & M32     # acknowledged at once (RFC 5681 4.2)
    assert w.counter("tcp_ooo_bytes") == len(second)
    conn.snd_nxt = (start + len(data)) & M32
    acc = settle(srv)
    assert acc.requests.ok == 1 and acc.requests.failed == 0


def conn_slot(w: Wire) -> int:
    """The row of the client's one connection."""
    (rows,) = np.nonzero(w.s.tcb[:, tt.T_STATE] != tt.CLOSED)
    assert len(rows) == 1, rows
    return int(rows[0])


def test_the_client_reports_kept_response_data_in_sack_blocks_when_the_server_permits():
    w, srv = one_connection(held, synack_options=b"\x01\x01\x04\x02")
    srv.until(lambda: srv.all_conns() and srv.all_conns()[0].heads)
    conn = srv.all_conns()[0]
    assert w.tcb.flags[conn_slot(w)] & tt.F_SACK
    data = response(body=b"x" * 100)
    start = conn.snd_nxt
    mark = len(srv.seen)
    for lo, hi in ((60, 80), (20, 40)):                 # one ACK each
        srv.pending.append(conn._frame(ACK | PSH, data[lo:hi], seq=(start + lo) & M32))
        srv._step(200)
    blocks = [[struct.unpack_from("!II", g.options[5], 8 * k) for k in range(len(g.options.get(5, b"")) // 8)]
              for g in srv.sent_since(mark)]
    edge = lambda a, b: ((start + a) & M32, (start + b) & M32)          # noqa: E731
    assert blocks == [[edge(60, 80)], [edge(20, 40), edge(60, 80)]]     # the latest first
    assert w.counter("tcp_sack_blocks_out") == 3
    srv.pending.append(conn._frame(ACK | PSH, data))
    srv._step(200)
    assert srv.counter("responses_ok") == 1 and 5 not in srv.sent_since(mark)[-1].options


def test_with_sack_off_the_client_neither_offers_nor_accepts_it():
    w, srv = one_connection(held, synack_options=b"\x01\x01\x04\x02", sack=False)
    srv.until(lambda: srv.all_conns() and srv.all_conns()[0].heads)
    syn = srv.sent_since(0)[0]
    assert syn.flags == SYN and syn.options == {"mss": int(w.s.params[st.P_MSS]), "ws": int(w.s.params[st.P_RCV_WSCALE])}
    assert not w.tcb.flags[conn_slot(w)] & tt.F_SACK


def rst_to(ip: str, port: int, seq: int, ack: int, flags: int = RST | ACK) -> bytes:
    """An RST from the server to the client's ip:port."""
    return tcp_frame(SERVER_IP, ip, SERVER_PORT, port, seq, ack, flags, 0, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)


def _rst(conn, seq: int) -> bytes:
    return rst_to(conn.cip, conn.cport, seq, conn.rcv_nxt)


def test_rst_in_syn_sent_counts_only_with_an_acceptable_ack():
    w = Wire(role="client")
    srv = Recording(w, answer_syn="none")
    srv.schedule(PHASES, type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    srv.until(lambda: srv.syns == 1)
    syn = srv.seen[0][1]
    srv.pending.append(rst_to(syn.src_ip, syn.sport, 0, 0, RST))        # no ACK bit: dropped (RFC 9293 3.10.7.3)
    srv.pending.append(rst_to(syn.src_ip, syn.sport, 0, (syn.seq + 5) & M32))  # an ACK of nothing sent: dropped
    srv._step(200)
    assert srv.counter("connect_refused") == 0 and w.counter("tcp_resets_in") == 0
    srv.pending.append(rst_to(syn.src_ip, syn.sport, 0, (syn.seq + 1) & M32))
    srv._step(200)
    assert srv.counter("connect_refused") == 1 and w.counter("tcp_resets_in") == 1


def row(w, conn):
    """The client's row of conn's connection, or None."""
    return w.slot(SERVER_IP, SERVER_PORT, conn.cip, conn.cport)


def test_rst_while_a_response_is_awaited_fails_the_request_only_in_window():
    w, srv = one_connection(held)
    srv.until(lambda: srv.all_conns() and srv.all_conns()[0].heads)
    conn = srv.all_conns()[0]
    srv.pending.append(_rst(conn, (conn.snd_nxt + 10 * 65535) & M32))     # far outside the window
    srv._step(200)
    assert srv.counter("reset") == 0 and w.state(row(w, conn)) == "ESTABLISHED"
    srv.pending.append(_rst(conn, conn.snd_nxt))
    srv._step(200)
    assert srv.counter("reset") == 1 and srv.counter("connection_reset") == 1 and row(w, conn) is None
    acc = settle(srv)
    assert acc.requests.failed_by_cause["reset"] == 1


def test_rst_after_our_fin_ends_the_connection_without_a_failure():
    w = Wire(role="client")
    srv = Recording(w, held)
    srv.schedule([0.01, 0.02, 0.05, 0.05, 2.0], type=ca.O_TCP_CONCURRENT, value=1)
    srv.until(lambda: srv.all_conns())
    conn = srv.all_conns()[0]
    conn.closed = True                                   # the server will only ACK the client's FIN
    srv.until(lambda: conn.fin_received)
    srv._step(200)
    assert w.state(row(w, conn)) == "FIN_WAIT_2"
    srv.pending.append(_rst(conn, conn.snd_nxt))
    srv._step(200)
    assert row(w, conn) is None and w.counter("tcp_resets_in") == 1
    acc = settle(srv)
    assert acc.connections.ok == 1 and acc.connections.failed == 0 and srv.counter("closed_unused") == 1
