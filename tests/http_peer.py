"""A scripted HTTP/1.1 server for driving the *client* stack frame by frame (with `Wire(role="client")`).

It answers ARP for its addresses, SYN with SYN-ACK (or RST / silence when
told), collects each connection's request bytes in order, and hands every
complete request head to `on_request(conn, head)`, which answers with
`conn.respond(...)`, `conn.close()`, `conn.reset()` or nothing. Frames it
sends are delivered at the next step. Frames are built with struct in
tests.tcp_wire, not by the code under test.

    w = Wire(role="client", max_conns=64)
    srv = HttpServer(w)
    srv.schedule(phases_s=[0.1, 0.2, 1.0, 1.1, 1.5], type=ca.O_HTTP_REQUESTS, value=2, rpc=5)
    srv.run(2.0)
"""
from __future__ import annotations

from nperf.kernels import client_app as ca
from nperf.kernels import client_sched
from nperf.kernels import stack as st
from tests.tcp_wire import (ACK, CLIENT_MAC, FIN, M32, PSH, RST, SYN, Seg, Wire, arp_frame, ip_int, opt_mss,
                            seq_diff, tcp_frame)

SERVER_IP = "192.168.1.100"
SERVER_PORT = 8000
SERVER_MAC = bytes.fromhex("02000000ee05")


def response(body: bytes = b"hello", status: str = "200 OK", headers: str = "", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return f"HTTP/1.1 {status}\r\nContent-Length: {n}\r\n{headers}\r\n".encode() + body


def set_schedule(s, phases_s: list[float], **objective) -> None:
    """A client stack's cumulative phase ends (prepare .. close, seconds) and objective words
    (client_app.K_* by lower-case name)."""
    k = s.app.sched
    for i, end in enumerate(phases_s):
        k[ca.K_PH_PREPARE + i] = int(end * 1e6)
    for name, value in objective.items():
        k[getattr(ca, "K_" + name.upper())] = value


def answer(conn: "Conn", head: bytes) -> None:
    """What a server does by default: 200 with a small body, closing when the request asks to."""
    close = b"\r\nConnection: close\r\n" in head
    conn.respond(response(headers="Connection: close\r\n" if close else ""), close=close)


class Conn:
    """One connection as the server sees it (absolute 32-bit sequence numbers)."""

    def __init__(self, srv: "HttpServer", seg: Seg, isn: int):
        self.srv = srv
        self.cip, self.cport = seg.src_ip, seg.sport
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & M32
        self.snd_nxt = (isn + 1) & M32
        self.isn = isn
        self.stream = bytearray()      # what the client sent, in order
        self.heads: list[bytes] = []   # complete request heads, in order
        self.fin_received = False
        self.rst_received = False
        self.closed = False            # we sent FIN or RST

    def _frame(self, flags: int, payload: bytes = b"", seq: int | None = None) -> bytes:
        return tcp_frame(SERVER_IP, self.cip, SERVER_PORT, self.cport, self.snd_nxt if seq is None else seq,
                         self.rcv_nxt, flags, 65535, payload, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)

    def send(self, flags: int, payload: bytes = b"") -> None:
        self.srv.pending.append(self._frame(flags, payload))
        self.snd_nxt = (self.snd_nxt + len(payload) + (1 if flags & FIN else 0)) & M32

    def respond(self, data: bytes, close: bool = False) -> None:
        """Send `data` in segments of at most 1400 bytes, the last with FIN when `close`."""
        for i in range(0, len(data), 1400):
            last = i + 1400 >= len(data)
            self.send(ACK | PSH | (FIN if close and last else 0), data[i:i + 1400])
        if close:
            self.closed = True

    def close(self) -> None:
        self.send(ACK | FIN)
        self.closed = True

    def reset(self) -> None:
        self.send(RST | ACK)
        self.closed = True

    def receive(self, seg: Seg) -> None:
        if seg.flags & RST:
            self.rst_received = True
            return
        if seg_len := len(seg.payload):
            off = seq_diff(seg.seq, self.rcv_nxt)
            assert off <= 0, f"the client skipped bytes: {seg}"
            new = seg.payload[-off:] if off else seg.payload
            if -off < seg_len:
                self.stream += new
                self.rcv_nxt = (self.rcv_nxt + len(new)) & M32
        if seg.flags & FIN and seq_diff((seg.seq + len(seg.payload)) & M32, self.rcv_nxt) == 0:
            self.rcv_nxt = (self.rcv_nxt + 1) & M32
            self.fin_received = True
        if seg_len or seg.flags & FIN:
            self.srv.pending.append(self._frame(ACK))
        while not self.closed and (end := self.stream.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.stream[:end + 4])
            del self.stream[:end + 4]
            self.heads.append(head)
            self.srv.on_request(self, head)
        if self.fin_received and not self.closed:
            self.close()                    # as a server application closes at the end of the stream


class HttpServer:
    """Every connection the client opens to SERVER_IP:SERVER_PORT (see the module docstring)."""

    def __init__(self, wire: Wire, on_request=None, answer_syn: str = "synack", synack_options: bytes = b""):
        self.w = wire
        wire.listener = self
        self.pending: list[bytes] = []
        self.conns: dict[tuple[str, int], Conn] = {}
        self.finished: list[Conn] = []    # earlier connections of a reused 4-tuple
        self.answer_syn = answer_syn      # "synack", "rst" or "none"
        self.synack_options = opt_mss(1460) + synack_options
        self.on_request = on_request or answer
        self.syns = 0
        self._isn = 0x1000_0000
        s = wire.s
        k = s.app.sched
        k[ca.K_DIP_FIRST], k[ca.K_DIP_COUNT] = ip_int(SERVER_IP), 1
        k[ca.K_DPORT_FIRST], k[ca.K_DPORT_COUNT] = SERVER_PORT, 1
        client_ip = "%d.%d.%d.%d" % tuple(int(s.params[st.P_IP_FIRST]).to_bytes(4, "big"))
        wire.step([arp_frame(2, SERVER_MAC, SERVER_IP, CLIENT_MAC, client_ip, dst_mac=CLIENT_MAC)])

    def schedule(self, phases_s: list[float], **objective) -> None:
        set_schedule(self.w.s, phases_s, **objective)

    def receive(self, seg: Seg) -> None:
        key = (seg.src_ip, seg.sport)
        if seg.flags & SYN:
            self.syns += 1
            if self.answer_syn == "rst":
                self.pending.append(tcp_frame(SERVER_IP, seg.src_ip, SERVER_PORT, seg.sport, 0, (seg.seq + 1) & M32,
                                              RST | ACK, 0, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
                return
            if self.answer_syn == "none":
                return
            if key in self.conns:
                self.finished.append(self.conns.pop(key))
            self._isn = (self._isn + 0x10000) & M32
            conn = self.conns[key] = Conn(self, seg, self._isn)
            self.pending.append(tcp_frame(SERVER_IP, seg.src_ip, SERVER_PORT, seg.sport, conn.isn, conn.rcv_nxt,
                                          SYN | ACK, 65535, options=self.synack_options, src_mac=SERVER_MAC,
                                          dst_mac=CLIENT_MAC))
            return
        conn = self.conns.get(key)
        if conn is not None:
            conn.receive(seg)

    def all_conns(self) -> list[Conn]:
        return self.finished + list(self.conns.values())

    def run(self, seconds: float, dt: int = 200, drain_steps: int = 25) -> None:
        """Step the client and this server for `seconds` (or until the client has finished), then
        `drain_steps` more, as a role drains its queues before it reports."""
        end = self.w.now + int(seconds * 1e6)
        while self.w.now < end and not client_sched.finished(self.w.s):
            self._step(dt)
        for _ in range(drain_steps):
            self._step(dt)

    def _step(self, dt: int) -> None:
        frames, self.pending = self.pending, []
        self.w.step(frames, dt)

    def loading(self) -> bool:
        """The client is still opening connections (not yet closing them all)."""
        return int(self.w.s.app.sched[ca.K_PHASE]) < ca.PH_RAMP_DOWN

    def counter(self, name: str) -> int:
        return int(self.w.s.counters[st.CS_CLIENT + ca.CLIENT_COUNTER_NAMES.index(name)])
