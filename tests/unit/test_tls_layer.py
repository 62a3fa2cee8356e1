"""The TLS layer (nperf.kernels.tls_layer) in a server's stack, frame by frame, against Python's ssl
client over the test wire (tests.tcp_wire): no DPDK, every segment checked, retransmissions
compared byte for byte with what was sent before."""
import hashlib
import ssl

import pytest

from nperf import tls
from nperf.config import load_worker
from nperf.kernels import tls_layer
from tests.dpdk.test_server_tap import pattern_digest
from nperf.kernels.tcp_table import T_TLS
from tests.tcp_wire import FIN, M32, SEED_SERVER, Peer, Wire, seq_diff

NAME = "nperf.test"


@pytest.fixture
def served(tmp_path):
    """A server stack with TLS on (the wire's seed server, its certificate written into tmp_path)."""
    cert, key = tls.self_signed(str(tmp_path), [NAME])
    cfg, _ = load_worker(str(SEED_SERVER))
    cfg.http_config.use_https, cfg.http_config.cert_path, cfg.http_config.key_path = 1, cert, key
    ctx = tls.Context(cfg.http_config, "server", str(SEED_SERVER))
    w = Wire()
    w.s = w.s._replace(tls=ctx.layer(4))
    yield w, cert
    ctx.close()


class TlsPeer:
    """Python's TLS client on a wire Peer: what it writes is sent as TCP text, what the server
    sends is fed to it."""

    def __init__(self, w: Wire, cafile: str, **kw):
        self.p = Peer(w, **kw)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = ssl.create_default_context(cafile=cafile).wrap_bio(self.inc, self.out, server_hostname=NAME)
        self.fed = 0

    def flush(self) -> None:
        data = self.out.read()
        if data:
            self.p.send(data)
        self._feed()

    def _feed(self) -> None:
        if len(self.p.data) > self.fed:
            self.inc.write(bytes(self.p.data[self.fed:]))
            self.fed = len(self.p.data)
        if self.p.fin_received and not self.inc.eof:
            self.inc.write_eof()

    def handshake(self) -> None:
        self.p.connect()
        for _ in range(10):
            try:
                self.ssl.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
        raise AssertionError("no handshake")

    def get(self, request: bytes, size: int) -> bytes:
        """Send `request`; the plaintext read until `size` bytes or the server's close_notify."""
        self.ssl.write(request)
        self.flush()
        got = b""
        for _ in range(100_000):
            try:
                chunk = self.ssl.read(1 << 20)
                if not chunk:                 # close_notify
                    return got
                got += chunk
                if len(got) >= size:
                    return got
            except ssl.SSLWantReadError:
                if not self.p.ack_owed():
                    raise AssertionError(f"the server went quiet after {len(got)} bytes") from None
                self._feed()
        raise AssertionError("too many steps")


HELLO = b"HTTP/1.1 200 OK\r\nServer: unetbsd\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"


def test_a_request_over_tls_gets_its_exact_response(served):
    w, cert = served
    c = TlsPeer(w, cert)
    c.handshake()
    assert c.ssl.version() == "TLSv1.3" and w.counter("tls_full") == 1
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    got = c.get(request, len(HELLO) + 100)
    assert got[:len(HELLO)] == HELLO and len(got) == len(HELLO) + 100
    assert w.counter("tls_bytes_encrypted") == len(got) and w.counter("tls_bytes_decrypted") == len(request)


def test_a_body_larger_than_the_ring_arrives_whole_and_then_close_notify_and_fin(served):
    """5 MiB through a 64 KiB ring (records wait for ACKs, the ring wraps); `Connection: close`:
    the close_notify comes after the last byte, and the FIN after it."""
    w, cert = served
    c = TlsPeer(w, cert)
    c.handshake()
    got = c.get(b"GET /another HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1 << 30)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and len(body) == 5 << 20
    assert hashlib.sha256(body).hexdigest() == pattern_digest(5 << 20)
    assert c.p.fin_received                         # read() returned b"" at close_notify, before the FIN
    assert w.counter("tls_bytes_encrypted") == len(got)
    assert len(c.p.data) > len(got) + (len(got) // tls_layer.RECORD) * 17     # every record's overhead


def test_plain_http_to_the_tls_port_is_an_alert_and_the_connection_closes(served):
    w, _ = served
    p = Peer(w)
    p.connect()
    out = p.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert any(g.flags & FIN for g in out) and not p.data.startswith(b"HTTP")
    assert (w.counter("tls_failed_alert"), w.counter("tls_full")) == (1, 0)


def test_a_peer_closing_in_its_handshake_is_counted_and_the_slot_comes_back(served):
    w, cert = served
    for port in range(40000, 40006):         # more connections than the pool's 4 slots, one after another
        c = TlsPeer(w, cert, port=port)
        c.p.connect()
        try:
            c.ssl.do_handshake()
        except ssl.SSLWantReadError:
            pass
        c.flush()                            # the ClientHello: the server answers with its flight
        c.p.fin()
        c.p.ack_owed()
    assert w.counter("tls_failed_peer_closed") == 6 and w.counter("tls_no_slot") == 0
    assert w.s.tls.conf[tls_layer.TC_FREE] >= 0 and (w.s.tcb[:, T_TLS] == 0).all()


def test_no_slot_left_resets_the_connection(served):
    w, cert = served
    peers = [TlsPeer(w, cert, port=41000 + i) for i in range(5)]
    for c in peers[:4]:
        c.p.connect()
    peers[4].p.syn()
    out = peers[4].p.ack()                   # the handshake's last ACK: TCP opens, no slot is free
    assert [g.flags & 0x04 for g in out] == [0x04]
    assert w.counter("tls_no_slot") == 1 and w.counter("tcp_resets_out") == 1


def test_a_role_that_takes_nothing_holds_back_ciphertext_and_loses_none(served):
    """5,000 pipelined requests, one record each, acknowledging no response: the ring fills, then
    the response queue, and the role takes no more plaintext. The server then takes HOLD_BYTES more
    ciphertext (and the record OpenSSL has read), not the whole 270 KB. Once the peer acknowledges
    and sends the rest again, every request is answered, exactly and in order."""
    w, cert = served
    c = TlsPeer(w, cert)
    c.handshake()
    request, n = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 5000
    for _ in range(n):
        c.ssl.write(request)
    cipher = c.out.read()
    record = len(cipher) // n
    first = c.p.snd_nxt
    assert record == len(request) + 22 and len(cipher) == n * record

    def acked() -> int:
        return max(seq_diff(g.ack, first) for g in c.p.segs)

    stuck = c.p.rcv_nxt
    for i in range(0, len(cipher), 1400):
        c.p.send(cipher[i:i + 1400], ack=stuck)       # the responses are not acknowledged
    w.advance(50_000)                                  # a delayed ACK goes
    held = acked() - w.counter("tls_bytes_decrypted") // len(request) * record
    assert tls_layer.HOLD_BYTES - 1400 <= held <= tls_layer.HOLD_BYTES + tls_layer.RECORD_ROOM
    for _ in range(10_000):
        if acked() == len(cipher) and len(c.p.data) == c.fed and not c.p.owed:
            break
        c.p.ack_owed()                                 # the ring drains: the role takes held plaintext
        if acked() < len(cipher):
            c.p.send(cipher[acked():acked() + 1400], seq=(first + acked()) & M32)
        c.flush()
    got = c.ssl.read(1 << 30)
    while len(got) < n * (len(HELLO) + 100):
        got += c.ssl.read(1 << 30)
    assert got == got[:len(HELLO) + 100] * n and got.startswith(HELLO)
    assert w.counter("tls_bytes_decrypted") == n * len(request)
