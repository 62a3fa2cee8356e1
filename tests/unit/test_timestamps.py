"""TCP timestamps (RFC 7323) frame by frame: negotiation, the option on every segment, TS.Recent by
the Last.ACK.sent rule, PAWS, round-trip samples from the echo where Karn's rule gives none, and the
room they leave for SACK blocks. Server side against a scripted peer (tests/tcp_wire.py), client
side against tests.http_peer's server.

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
import struct

import pytest

from nperf.kernels import client_app as ca
from nperf.kernels import stack as st
from nperf.kernels import tcp_table as tt
from tests.http_peer import HttpServer
from tests.tcp_wire import ACK, M32, SYN, Peer, Wire, linux_syn_options, opt_mss, opt_sack_perm, \
    opt_timestamps, opt_ws
from tests.unit.test_tcp import HELLO, MS, REQ, sack_blocks

LINUX_MSS = 1460


def clock(w: Wire) -> int:
    """The stack's timestamp clock now: the host's monotonic ms at start, plus the run's ms."""
    return (int(w.s.params[st.P_TS_BASE_MS]) + w.now // 1000) & M32


def ts(g) -> tuple[int, int] | None:
    """(TSval, TSecr) of segment g, None without the option."""
    v = g.options.get(8)
    return None if v is None else struct.unpack("!II", v)


def header_options(g) -> bytes:
    """The raw option bytes of segment g."""
    tcp = g.frame[34:]
    return bytes(tcp[20:(tcp[12] >> 4) * 4])


def stamped(val: int = 1, ecr: int = 0, **wire) -> tuple[Wire, Peer, int]:
    """A connection whose peer offered timestamps (a Linux SYN with TSval `val`), established."""
    w = Wire(timestamps=True, **wire)
    p = Peer(w)
    c = p.connect(options=opt_mss(LINUX_MSS) + opt_sack_perm() + opt_timestamps(val, ecr) + b"\x01" + opt_ws(7))
    return w, p, c


def test_a_linux_syn_gets_timestamps_back_and_every_segment_carries_them_within_the_mss():
    w = Wire(timestamps=True)
    p = Peer(w)
    [synack] = p.syn(options=linux_syn_options(LINUX_MSS, 7))     # TSval 1
    mss = int(w.s.params[st.P_MSS])
    assert header_options(synack) == (struct.pack("!BBH", 2, 4, mss) + b"\x01\x03\x03"
                                      + bytes([int(w.s.params[st.P_RCV_WSCALE])])
                                      + b"\x04\x02\x08\x0a" + struct.pack("!II", clock(w), 1))
    p.ack(options=opt_timestamps(2, clock(w)))
    c = p.slot
    assert w.tcb.flags[c] & tt.F_TS and w.tcb.mss[c] == min(LINUX_MSS, mss) - 12
    assert w.tcb.ts_recent[c] == 2
    out = p.send(REQ, options=opt_timestamps(3, clock(w)), dt=5 * MS)
    assert [(g.payload, ts(g)) for g in out] == [(HELLO, (clock(w), 3))]
    assert len(header_options(out[0])) == 12 and header_options(out[0])[:4] == b"\x01\x01\x08\x0a"


def test_a_big_response_fills_segments_of_the_mss_less_the_option():
    w, p, c = stamped()
    out = p.send(p.request("/another"), options=opt_timestamps(2, clock(w)))
    sizes = {len(g.payload) for g in out if g.payload}
    assert out and max(sizes) == w.tcb.mss[c] == min(LINUX_MSS, int(w.s.params[st.P_MSS])) - 12, sizes
    assert len(out) == 10 and all(ts(g) == (clock(w), 2) for g in out)             # the initial window


@pytest.mark.parametrize("peer_offers, ours", [(False, True), (True, False)], ids=["peer-none", "ours-off"])
def test_no_timestamps_unless_both_ends_want_them(peer_offers, ours):
    w = Wire(timestamps=ours)
    p = Peer(w)
    stamp = opt_timestamps(5, 0) if peer_offers else b"\x08\x09" + bytes(7)      # malformed: length 9
    [synack] = p.syn(options=opt_mss(LINUX_MSS) + stamp + b"\x01" + opt_ws(7))
    assert 8 not in synack.options
    p.ack()
    c = p.slot
    assert not w.tcb.flags[c] & tt.F_TS and w.tcb.mss[c] == min(LINUX_MSS, int(w.s.params[st.P_MSS]))
    out = p.send(REQ, options=opt_timestamps(6, 0) if peer_offers else b"")
    assert [(g.payload, g.options) for g in out] == [(HELLO, {})]


def test_ts_recent_is_the_stamp_of_the_segment_the_last_ack_asked_for():
    """RFC 7323 4.3: with the ACK of a segment delayed, the next one's stamp is not taken; the ACK
    that finally goes echoes the earlier stamp (the longest delay, as the RFC wants)."""
    w, p, c = stamped()
    first = p.send(REQ[:10], options=opt_timestamps(10, clock(w)))
    assert first == [] and w.tcb.ts_recent[c] == 10            # its ACK is delayed
    out = p.send(REQ[10:], options=opt_timestamps(20, clock(w)))
    assert w.tcb.ts_recent[c] == 10                            # beyond Last.ACK.sent: not taken
    assert [(g.payload, ts(g)) for g in out] == [(HELLO, (clock(w), 10))]
    out = p.send(REQ, options=opt_timestamps(30, clock(w)))    # at Last.ACK.sent again: taken
    assert [(g.payload, ts(g)) for g in out] == [(HELLO, (clock(w), 30))]


def test_paws_drops_old_text_and_fin_with_an_ack_and_passes_old_pure_acks():
    w, p, c = stamped()
    [resp] = p.send(REQ, options=opt_timestamps(100, clock(w)))
    assert ts(resp)[1] == 100
    rcv = int(w.tcb.rcv_nxt[c])
    out = p.send(REQ, options=opt_timestamps(50, clock(w)), advance=False)     # an old duplicate
    assert [(g.flags, g.payload, g.ack, ts(g)) for g in out] == [(ACK, b"", p.snd_nxt, (clock(w), 100))]
    assert w.counter("tcp_paws_dropped") == 1 and w.tcb.rcv_nxt[c] == rcv
    assert p.fin(options=opt_timestamps(60, clock(w)), advance=False)[0].flags == ACK
    assert w.counter("tcp_paws_dropped") == 2 and p.state == "ESTABLISHED"
    assert p.ack(options=opt_timestamps(70, clock(w))) == []   # a pure ACK, reordered: its ACK field counts
    assert w.tcb.snd_una[c] == w.tcb.snd_max[c] and w.tcb.ts_recent[c] == 100
    out = p.send(REQ, options=opt_timestamps(101, clock(w)))
    assert [(g.payload, ts(g)[1]) for g in out] == [(HELLO, 101)]
    assert w.counter("tcp_paws_dropped") == 2
    p.rst(options=opt_timestamps(1, 0))                        # an exact RST is taken whatever its stamp
    assert p.state == "CLOSED" and w.counter("tcp_resets_in") == 1


def test_the_clock_comparison_wraps_at_32_bits():
    w, p, c = stamped(val=M32 - 5)
    out = p.send(REQ, options=opt_timestamps(4, clock(w)))     # 10 ms later, past the wrap: newer
    assert [(g.payload, ts(g)[1]) for g in out] == [(HELLO, 4)] and w.tcb.ts_recent[c] == 4
    out = p.send(REQ, options=opt_timestamps(M32 - 1, clock(w)), advance=False)    # before the wrap: older
    assert w.counter("tcp_paws_dropped") == 1 and [g.payload for g in out] == [b""]


@pytest.mark.parametrize("timestamps", [True, False], ids=["timestamps", "none"])
def test_an_ack_of_a_retransmission_gives_a_sample_only_from_the_echo(timestamps):
    """Karn's rule takes no sample from a segment sent again; the echoed stamp says which send the
    ACK answers, so with timestamps the RTO re-learns at once."""
    w = Wire(timestamps=timestamps)
    p = Peer(w)
    c = p.connect(options=opt_mss(LINUX_MSS) + (opt_timestamps(1, 0) if timestamps else b"") + b"\x01" + opt_ws(7))
    stamp = (lambda v: opt_timestamps(v, clock(w))) if timestamps else (lambda v: b"")
    [resp] = p.send(REQ, options=stamp(2))                      # not acknowledged: lost
    srtt, rttvar, rto = int(w.tcb.srtt[c]), int(w.tcb.rttvar[c]), int(w.tcb.rto[c])
    out = w.advance(rto)
    assert [(g.payload, g.seq) for g in out] == [(HELLO, resp.seq)] and w.tcb.backoff[c] == 1
    sent_at = clock(w)
    assert ts(out[0]) == ((sent_at, 2) if timestamps else None)
    p._receive(out[0])
    echo = sent_at if timestamps else 0
    p.ack(options=opt_timestamps(3, echo) if timestamps else b"", dt=30 * MS)
    assert w.tcb.snd_una[c] == w.tcb.snd_max[c] and w.tcb.backoff[c] == 0
    if timestamps:
        r = max(clock(w) - sent_at, 1) * 1000
        assert r in (30 * MS, 31 * MS)
        assert w.tcb.srtt[c] == (7 * srtt + r) // 8 and w.tcb.rttvar[c] == (3 * rttvar + abs(srtt - r)) // 4
    else:
        assert (w.tcb.srtt[c], w.tcb.rttvar[c]) == (srtt, rttvar)


def test_acks_with_timestamps_carry_at_most_three_sack_blocks():
    w, p, c = stamped()
    base = p.snd_nxt
    x = REQ + REQ
    for lo in (5, 20, 40, 70):                                  # four runs kept
        [g] = p.send(x[lo:lo + 5], seq=(base + lo) & M32, options=opt_timestamps(2, clock(w)))
    assert g.ack == base and ts(g) == (clock(w), 1)             # TS.Recent: the segment at rcv_nxt's
    assert sack_blocks(g, base) == [(70, 75), (5, 10), (20, 25)]
    assert len(header_options(g)) == 12 + 4 + 3 * 8 == 40


def test_the_client_offers_timestamps_and_echoes_the_servers():
    w = Wire(role="client", timestamps=True)
    srv = HttpServer(w, synack_options=opt_sack_perm() + opt_timestamps(777, 0))
    srv.seen = []
    real = srv.receive

    def receive(seg):
        srv.seen.append((w.now, seg))
        real(seg)

    srv.receive = receive
    srv.schedule([0.01, 0.02, 5.0, 5.0, 5.5], type=ca.O_HTTP_REQUESTS, value=1, rpc=1)
    for _ in range(2000):
        if len(srv.seen) >= 2:
            break
        srv._step(1 * MS)
    (t_syn, syn), (t_req, req) = srv.seen[:2]
    assert syn.flags == SYN and header_options(syn)[8:] == (
        b"\x04\x02\x08\x0a" + struct.pack("!II", (int(w.s.params[st.P_TS_BASE_MS]) + t_syn // 1000) & M32, 0))
    assert req.flags & ACK and req.payload and ts(req)[1] == 777
    [c] = [c for c in range(w.max_conns) if w.tcb.state[c] == tt.ESTABLISHED]
    assert w.tcb.flags[c] & tt.F_TS and w.tcb.mss[c] == LINUX_MSS - 12
