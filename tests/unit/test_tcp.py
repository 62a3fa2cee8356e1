"""The server's TCP (kernels.tcp, tcp_table, time_wait), driven frame by frame without DPDK (see
tests/tcp_wire.py); the client's side is test_client_tcp, ARP and ICMP test_arp, frame input
checks test_worker_input.

Every test asserts exact flags, sequence and acknowledgement numbers, payload
bytes, connection states and counters. The harness also checks every frame
the server sends (checksums, lengths), that it never sends beyond the window
a peer offered, and after every step the table/hash/free-stack/timer-wheel
invariants.

Like every unit test, they run once more with bounds checks (test_with_bounds_checks).
"""
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nperf.roles.http_tables import BODY_PATTERN
from nperf.kernels import http_server as hs
from nperf.kernels import reassembly
from nperf.kernels import stack as nstack
from nperf.kernels import tcp_table as tt
from nperf.kernels.stack import COUNTER_NAMES, V_TW_HEAD, V_TW_TAIL
from tests.tcp_wire import (ACK, BCAST, FIN, M32, OTHER_MAC, PEER_IP, PEER_MAC, PSH, RST, SERVER_IP, SERVER_MAC,
                            SYN, Peer, Wire, arp_frame, changed, checksum, eth, icmp_echo, ipv4, linux_syn_options,
                            opt_mss, opt_ws, seq_after, seq_diff, tcp_segment)

HERE = Path(__file__).resolve().parent.parent      # tests/
KiB, MiB = 1024, 1 << 20
MS = 1000                          # µs


def body(n: int) -> bytes:
    return (BODY_PATTERN * (n // len(BODY_PATTERN) + 1))[:n]


def ok(n: int, close: bool = False) -> bytes:
    """The seed config's 200 response with an n-byte body."""
    return (b"HTTP/1.1 200 OK\r\nServer: unetbsd\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {n}\r\n".encode() + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body(n))


HELLO = ok(100)
ROOT = ok(1024)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
               b"Connection: close\r\n\r\nbad request\n")
REQ = Peer.request("/hello")


def http(w: Wire, counter: int) -> int:
    """One of the HTTP server's counters (hs.CNT_*)."""
    return int(w.s.counters[nstack.CS_HTTP_SERVER + counter])


def established(w: Wire | None = None, **peer) -> tuple[Wire, Peer, int]:
    w = w or Wire()
    p = Peer(w, **peer)
    return w, p, p.connect()


def pure_ack(g, p: Peer) -> bool:
    return g.flags == ACK and g.payload == b"" and g.ack == p.snd_nxt

# ------------------------------------------------------------------ handshake

def test_handshake_syn_ack_options_then_established():
    w = Wire()
    p = Peer(w, mss=1460, wscale=7)
    before = w.counters()
    out = p.syn(options=linux_syn_options(1460, 7))     # MSS, SACK-permitted, timestamps, NOP, WS
    assert len(out) == 1
    sa = out[0]
    c = p.slot
    assert sa.flags == SYN | ACK
    assert sa.ack == (p.isn + 1) & M32
    assert sa.seq == w.tcb.iss[c]
    assert sa.options == {"mss": 1960, "ws": 5, 4: b""}   # mtu 2000 - 40; the stack's receive shift; SACK ok
    assert sa.window == 65535 and sa.payload == b""
    assert (sa.dst_mac, sa.src_ip, sa.dst_ip, sa.sport, sa.dport) == (PEER_MAC, SERVER_IP, PEER_IP, 8000, 40000)
    assert p.state == "SYN_RCVD"
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_syns_in": 1, "tcp_segs_out": 1}
    assert p.ack() == []
    assert p.state == "ESTABLISHED"
    assert changed(w, before) == {"rx_frames": 2, "tcp_segs_in": 2, "tcp_syns_in": 1, "tcp_segs_out": 1,
                                  "conn_opened": 1}
    t = w.tcb
    assert (t.mss[c], t.snd_wscale[c], t.rcv_wscale[c]) == (1460, 7, 5)
    assert t.flags[c] & tt.F_SACK
    assert t.snd_wnd[c] == (65535 >> 7) << 7
    assert w.s.free[0] == w.max_conns - 1


def test_handshake_without_options_uses_536_bytes_and_no_scaling():
    w = Wire()
    p = Peer(w, wscale=None)
    out = p.syn(options=b"")
    assert [g.flags for g in out] == [SYN | ACK] and 4 not in out[0].options     # SACK not offered: not permitted
    p.ack()
    c = p.slot
    assert (w.tcb.mss[c], w.tcb.snd_wscale[c], w.tcb.rcv_wscale[c]) == (536, 0, 0)
    assert not w.tcb.flags[c] & tt.F_SACK
    out = p.send(Peer.request("/"))
    assert [len(g.payload) for g in out] == [536, 536, len(ROOT) - 1072]
    assert all(g.window == 65535 for g in out)           # unscaled: 1 MiB does not fit, 65535 does
    assert p.data == ROOT


def test_lost_syn_ack_is_sent_again_for_a_repeated_syn_and_after_the_initial_rto():
    w = Wire(syn_retries=2)
    p = Peer(w)
    [sa] = p.syn()
    before = w.counters()
    out = p.syn()                                        # the SYN again: the same SYN-ACK
    assert [(g.flags, g.seq, g.ack, g.options) for g in out] == [(sa.flags, sa.seq, sa.ack, sa.options)]
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_segs_out": 1, "tcp_retransmits": 1}
    t0 = w.now
    assert w.advance_to(t0 + 1_000 * MS - 1) == []       # initial RTO 1 s
    out = w.advance_to(t0 + 1_000 * MS)
    assert [(g.flags, g.seq, g.ack) for g in out] == [(SYN | ACK, sa.seq, sa.ack)]
    assert w.advance_to(t0 + 3_000 * MS - 1) == []       # backed off: 2 s
    assert [g.flags for g in w.advance_to(t0 + 3_000 * MS)] == [SYN | ACK]
    before = w.counters()
    assert w.advance_to(t0 + 7_000 * MS) == []           # syn_retries=2: then given up, silently
    assert p.state == "CLOSED"
    assert changed(w, before) == {"tcp_timeouts": 1, "conn_timed_out": 1}
    assert w.s.free[0] == w.max_conns


# ------------------------------------------------------------------ HTTP over TCP

def test_get_hello_exact_response_then_keep_alive():
    w, p, c = established()
    before = w.counters()
    out = p.send(REQ)
    assert len(out) == 1
    g = out[0]
    assert g.flags == PSH | ACK
    assert g.seq == (p.irs + 1) & M32 and g.ack == p.snd_nxt
    assert g.window == (1 << 20) >> 5
    assert g.payload == HELLO
    assert HELLO[-100:] == BODY_PATTERN[:100]
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_segs_out": 1}
    assert p.ack() == []
    t = w.tcb
    assert t.snd_una[c] == t.snd_max[c] == 1 + len(HELLO) and t.q_head[c] == t.q_tail[c] == 1
    out = p.send(REQ)                                    # keep-alive: the same connection again
    assert [(g.seq, g.payload) for g in out] == [((p.irs + 1 + len(HELLO)) & M32, HELLO)]
    assert p.data == HELLO * 2 and p.state == "ESTABLISHED"
    assert http(w, hs.CNT_REQUESTS) == 2


def test_pipelined_requests_in_one_segment_are_answered_in_order():
    w, p, c = established()
    p.send(REQ + Peer.request("/") + Peer.request("/missing"))
    assert bytes(p.data) == HELLO + ROOT + NOT_FOUND
    assert http(w, hs.CNT_REQUESTS) == 3


def test_pipelining_deeper_than_the_queue_leaves_the_rest_unacknowledged():
    w, p, c = established()
    first = p.snd_nxt
    reqs = [Peer.request(path) for path in ("/hello", "/", "/hello", "/", "/missing")]
    out = p.send(b"".join(reqs))
    taken = sum(map(len, reqs[:tt.APPQ]))
    assert out[-1].ack == (first + taken) & M32          # the fifth request is not acknowledged
    assert bytes(p.data) == HELLO + ROOT + HELLO + ROOT
    p.ack()                                              # responses acknowledged: the queue has room
    out = p.send(reqs[4], seq=(first + taken) & M32)     # the peer sends the fifth again
    assert bytes(p.data) == HELLO + ROOT + HELLO + ROOT + NOT_FOUND
    assert out[-1].ack == p.snd_nxt


def test_request_split_across_two_segments():
    w, p, c = established()
    assert p.send(REQ[:9]) == []                         # nothing to answer yet (ACK delayed)
    out = p.send(REQ[9:])
    assert [g.payload for g in out] == [HELLO] and out[0].ack == p.snd_nxt


def test_unknown_path_gets_404_and_the_connection_stays():
    w, p, c = established()
    out = p.send(Peer.request("/nope"))
    assert [(g.flags, g.payload) for g in out] == [(PSH | ACK, NOT_FOUND)]
    assert p.state == "ESTABLISHED"
    assert http(w, hs.CNT_NOT_FOUND) == 1


def test_malformed_request_gets_400_and_fin():
    w, p, c = established()
    out = p.send(b"\x01\x02 what\r\n\r\n")
    assert [(g.flags, g.payload) for g in out] == [(FIN | PSH | ACK, BAD_REQUEST)]
    assert p.fin_received and p.state == "FIN_WAIT_1"
    assert http(w, hs.CNT_BAD_REQUEST) == 1


# ------------------------------------------------------------------ bulk transfer

def test_5mib_response_with_window_scaling_and_slow_start():
    w, p, c = established(window=64 * KiB, wscale=7)
    t = w.tcb
    expected = ok(5 * MiB)
    out = p.send(Peer.request("/another"))
    assert [len(g.payload) for g in out] == [1460] * 10  # initial window: 10 segments of the peer's MSS
    cwnd = [int(t.cwnd[c])]
    while len(p.data) < len(expected):
        assert p.ack_owed(), f"the server went quiet at {len(p.data)} bytes"
        cwnd.append(int(t.cwnd[c]))
    p.ack_owed()
    assert bytes(p.data) == expected
    assert cwnd[0] == 10 * 1460 and max(cwnd) >= 64 * KiB and cwnd == sorted(cwnd)
    n = w.counters()
    assert n["tcp_retransmits"] == n["tcp_fast_retransmits"] == n["tcp_timeouts"] == n["tcp_dupacks"] == 0
    assert t.snd_una[c] == t.snd_max[c] == 1 + len(expected)
    assert p.state == "ESTABLISHED" and not p.fin_received
    assert t.q_head[c] == t.q_tail[c] == 1


def _pick_rng_seed(lo: int, hi: int) -> int:
    """A V_RNG seed whose first initial sequence number falls in [lo, hi] (the stack's xorshift64)."""
    m64 = (1 << 64) - 1
    for seed in range(1, 1 << 22):
        x = seed
        x ^= (x << 13) & m64
        x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
        x ^= (x << 17) & m64
        if lo <= x & M32 <= hi:
            return seed
    raise AssertionError("no seed")


def test_sequence_numbers_wrap_in_both_directions():
    seed = _pick_rng_seed(M32 - 3 * MiB, M32 - 2 * MiB)  # the server's sequence wraps mid-response
    w = Wire(rng_seed=seed)
    p = Peer(w, isn=M32 - 40, window=256 * KiB)          # the peer's wraps inside the first request
    p.connect()
    assert p.irs > M32 - 3 * MiB
    p.send(Peer.request("/another"))
    p.fetch(len(ok(5 * MiB)))
    p.ack_owed()
    assert bytes(p.data) == ok(5 * MiB)
    p.send(REQ)
    assert bytes(p.data[-len(HELLO):]) == HELLO
    assert w.counter("tcp_retransmits") == 0


# ------------------------------------------------------------------ ACK timing

def test_delayed_ack_and_immediate_ack_for_a_second_segment():
    w, p, c = established()                              # delayed_ack_ms = 10
    t0 = w.now
    assert p.send(REQ[:5]) == []
    assert w.advance_to(t0 + 10 * MS - 1) == []
    out = w.advance_to(t0 + 10 * MS)
    assert len(out) == 1 and pure_ack(out[0], p)
    assert p.send(REQ[5:10]) == []                       # delayed again
    out = p.send(REQ[10:20])                             # the second unacknowledged segment: at once
    assert len(out) == 1 and pure_ack(out[0], p)
    assert w.advance(20 * MS) == []                      # nothing owed any more
    out = p.send(REQ[20:])
    assert [g.payload for g in out] == [HELLO] and out[0].ack == p.snd_nxt


# ------------------------------------------------------------------ loss recovery

def test_retransmission_timeout_backoff_then_reset():
    w, p, c = established()
    t = w.tcb
    assert t.rto[c] == 200 * MS                          # after the handshake's RTT sample: the minimum
    [g] = p.send(REQ)
    deadline = w.now
    for k in range(8):                                   # data_retries = 8
        deadline += min(200 * MS << k, 10_000 * MS)      # doubled each time, at most rto_max
        assert w.advance_to(deadline - 1) == [], k
        out = w.advance_to(deadline)
        assert [(r.flags, r.seq, r.ack, r.payload) for r in out] == [(g.flags, g.seq, g.ack, HELLO)], k
        assert t.backoff[c] == k + 1
        assert (w.counter("tcp_retransmits"), w.counter("tcp_timeouts")) == (k + 1, k + 1)
    before = w.counters()
    deadline += 10_000 * MS
    assert w.advance_to(deadline - 1) == []
    out = w.advance_to(deadline)
    assert [(r.flags, r.seq) for r in out] == [(RST | ACK, (g.seq + len(HELLO)) & M32)]
    assert p.state == "CLOSED" and w.s.free[0] == w.max_conns
    assert changed(w, before) == {"tcp_timeouts": 1, "tcp_resets_out": 1, "tcp_segs_out": 1, "conn_timed_out": 1}


def test_retransmitted_segment_gives_no_rtt_sample():
    """Karn's rule: the ACK of a retransmitted segment says nothing about the RTT."""
    w, p, c = established()
    t = w.tcb
    srtt, rttvar = int(t.srtt[c]), int(t.rttvar[c])
    p.send(REQ)
    assert len(w.advance(200 * MS)) == 1                 # the retransmission
    p.ack(dt=5 * MS)
    assert (t.srtt[c], t.rttvar[c], t.backoff[c]) == (srtt, rttvar, 0)
    p.send(REQ)
    p.ack(dt=30 * MS)                                    # a clean sample: RFC 6298 smoothing
    assert t.srtt[c] == (7 * srtt + 30 * MS) // 8
    assert t.rttvar[c] == (3 * rttvar + abs(srtt - 30 * MS)) // 4


def test_fast_retransmit_newreno_partial_ack_then_full_ack():
    w, p, c = established(window=1 * MiB)
    t = w.tcb
    mss = 1460
    out = p.send(Peer.request("/another"))
    assert len(out) == 10
    start = [g.seq for g in out]                         # segment i starts at start[i]
    una = lambda k: (start[0] + k * mss) & M32           # noqa: E731  (ack of the first k segments)
    out = p.ack(ack=una(1))                              # segment 1 arrives; 2 is lost
    assert [g.seq for g in out] == [una(10), una(11)]    # slow start: two more
    before = w.counters()
    out = p.ack(ack=una(1))                              # limited transmit (RFC 3042): a new segment
    assert [(g.seq, len(g.payload)) for g in out] == [(una(12), mss)] and t.cwnd[c] == 11 * mss
    out = p.ack(ack=una(1))                              #   for each of the first two duplicates
    assert [(g.seq, len(g.payload)) for g in out] == [(una(13), mss)] and t.cwnd[c] == 11 * mss
    out = p.ack(ack=una(1))                              # the third duplicate: fast retransmit
    assert [(g.seq, len(g.payload)) for g in out] == [(una(1), mss)]
    assert out[0].payload == ok(5 * MiB)[mss:2 * mss]
    assert changed(w, before) == {"rx_frames": 3, "tcp_segs_in": 3, "tcp_dupacks": 3, "tcp_fast_retransmits": 1,
                                  "tcp_retransmits": 1, "tcp_segs_out": 3}
    assert t.flags[c] & tt.F_RECOVERY
    assert t.ssthresh[c] == 13 * mss // 2 and t.cwnd[c] == t.ssthresh[c] + 3 * mss
    assert p.ack(ack=una(1)) == []                       # a fourth: the window inflates, no resend
    assert t.cwnd[c] == t.ssthresh[c] + 4 * mss
    out = p.ack(ack=una(2))                              # partial ACK: the next hole at once
    assert [(g.seq, len(g.payload)) for g in out] == [(una(2), mss)]
    assert t.flags[c] & tt.F_RECOVERY and w.counter("tcp_retransmits") == 2
    out = p.ack(ack=una(14))                             # everything sent before recovery: done
    assert not t.flags[c] & tt.F_RECOVERY
    assert t.cwnd[c] == t.ssthresh[c] == 13 * mss // 2
    assert out[0].seq == una(14) and sum(len(g.payload) for g in out) == t.cwnd[c]
    assert (w.counter("tcp_retransmits"), w.counter("tcp_fast_retransmits")) == (2, 1)
    assert w.counter("tcp_retransmit_bytes") == 2 * mss


def test_fast_retransmit_resends_only_what_was_sent():
    """A hole smaller than a segment (the window cut it) is resent as it was, never beyond the window."""
    w = Wire()
    p = Peer(w, wscale=None, window=600)
    p.connect(options=b"")                               # MSS 536, no scaling
    out = p.send(Peer.request("/"))
    assert [len(g.payload) for g in out] == [536, 64]    # the window: 600 bytes
    first = out[0].seq
    for _ in range(3):                                   # the first segment is lost
        out = p.ack(ack=first)
    assert [(g.seq, len(g.payload)) for g in out] == [(first, 536)]
    out = p.ack(ack=first + 536, window=64)              # partial ACK; the receiver's buffer is full
    assert [(g.seq, len(g.payload), g.flags) for g in out] == [(first + 536, 64, ACK)]
    p.ack(window=600)
    p.fetch(len(ROOT), window=600)
    assert bytes(p.data) == ROOT


def test_sack_permitted_is_answered_only_when_offered_and_switched_on():
    w = Wire(sack=False)
    p = Peer(w)
    out = p.syn(options=linux_syn_options(1460, 7))
    assert out[0].options == {"mss": 1960, "ws": 5}
    p.ack()
    assert not w.tcb.flags[p.slot] & tt.F_SACK
    w, p, c = established(Wire())                        # offered nothing: the SYN-ACK offers nothing
    assert p.synack_options == {"mss": 1960, "ws": 5} and not w.tcb.flags[c] & tt.F_SACK


# ------------------------------------------------------------------ reordering and duplicates

def test_out_of_order_segment_is_kept_and_given_to_the_application_when_the_hole_fills():
    w, p, c = established()
    a, b = REQ[:20], REQ[20:]
    seq_a = p.snd_nxt
    seq_b = (seq_a + len(a)) & M32
    before = w.counters()
    out = p.send(b, seq=seq_b)                           # the second half first: kept
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == seq_a and out[0].payload == b""
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_out_of_order": 1, "tcp_ooo_kept": 1,
                                  "tcp_segs_out": 1}
    assert (w.tcb.ooo_n[c], http(w, hs.CNT_REQUESTS)) == (1, 0)
    before = w.counters()
    out = p.send(a, seq=seq_a)                           # the hole: the whole request, answered at once
    p.snd_nxt = (seq_b + len(b)) & M32
    assert [(g.payload, g.ack) for g in out] == [(HELLO, p.snd_nxt)]
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_ooo_bytes": len(b), "tcp_segs_out": 1}
    assert (w.tcb.ooo_head[c], w.tcb.ooo_n[c]) == (0, 0)
    before = w.counters()
    out = p.send(b, seq=seq_b)                           # the peer resends the second half: old now
    assert len(out) == 1 and pure_ack(out[0], p)
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_duplicate_segs": 1, "tcp_segs_out": 1}
    assert http(w, hs.CNT_REQUESTS) == 1


def test_kept_segments_with_holes_overlaps_and_duplicates_give_the_stream_once_in_order():
    """Two pipelined requests arrive as [30,50) [10,25) [35,45) [20,40) [50,98) [0,12): the stream
    reaches the parser once, whole and in order, and both responses leave in order."""
    w, p, c = established()
    x = REQ + REQ
    base = p.snd_nxt

    def part(lo: int, hi: int) -> list:
        return p.send(x[lo:hi], seq=(base + lo) & M32)

    for lo, hi in ((30, 50), (10, 25)):
        assert [(g.flags, g.ack) for g in part(lo, hi)] == [(ACK, base)]
    before = w.counters()
    part(35, 45)                                         # inside [30,50): nothing new
    part(20, 40)                                         # overlaps both: kept too (they do not cover it)
    part(50, 98)
    assert changed(w, before) == {"rx_frames": 3, "tcp_segs_in": 3, "tcp_out_of_order": 3, "tcp_ooo_kept": 2,
                                  "tcp_duplicate_segs": 1, "tcp_segs_out": 3}
    assert w.tcb.ooo_n[c] == 4 and http(w, hs.CNT_REQUESTS) == 0
    out = part(0, 12)
    p.snd_nxt = (base + len(x)) & M32
    assert [(g.payload, g.ack) for g in out] == [(HELLO + HELLO, p.snd_nxt)]     # both responses, one segment
    assert w.counter("tcp_ooo_bytes") == len(x) - 12 and w.tcb.ooo_n[c] == 0
    assert http(w, hs.CNT_REQUESTS) == 2


def test_a_kept_segment_carries_its_fin_until_the_hole_fills():
    w, p, c = established()
    a, b = REQ[:20], REQ[20:]
    seq_a = p.snd_nxt
    seq_b = (seq_a + len(a)) & M32
    out = p.put(FIN | PSH | ACK, b, seq=seq_b)           # request end and FIN, out of order
    assert [(g.flags, g.ack) for g in out] == [(ACK, seq_a)] and p.state == "ESTABLISHED"
    out = p.send(a, seq=seq_a)
    p.snd_nxt = (seq_b + len(b) + 1) & M32               # the FIN counts one
    assert [(g.flags, g.payload, g.ack) for g in out] == [(FIN | PSH | ACK, HELLO, p.snd_nxt)]
    assert w.tcb.ooo_n[c] == 0


def test_kept_segments_are_bounded_per_connection_and_freed_when_it_ends():
    w, p, c = established()
    base = p.snd_nxt
    n = reassembly.PER_CONN + 1
    for k in range(n):                                   # one byte every other offset after a hole
        p.send(b"x", seq=(base + 1 + 2 * k) & M32)
    assert (w.counter("tcp_ooo_kept"), w.counter("tcp_ooo_not_kept")) == (n - 1, 1)
    assert w.tcb.ooo_n[c] == n - 1
    p.rst(seq=base)
    assert p.slot is None and w.counter("tcp_ooo_discarded") == n - 1
    assert int(w.s.var[nstack.V_OOO_FREE]) >= 0          # the harness walked the pool: every slot free


def test_the_shared_pool_running_out_is_counted_and_the_stream_still_completes():
    w = Wire()
    w.s = w.s._replace(ooo=reassembly.new_pool(3))      # three slots for everyone
    w.s.var[nstack.V_OOO_FREE] = 0
    (p1, c1), (p2, c2) = [(p, p.connect()) for p in (Peer(w), Peer(w, port=40001))]
    for p in (p1, p2):
        base = p.snd_nxt
        for lo in (10, 20):
            p.send(REQ[lo:lo + 5], seq=(base + lo) & M32)
    assert (w.counter("tcp_ooo_kept"), w.counter("tcp_ooo_not_kept")) == (3, 1)
    assert (w.tcb.ooo_n[c1], w.tcb.ooo_n[c2]) == (2, 1)
    for p in (p1, p2):                                   # the whole request, in order, resent
        out = p.send(REQ, seq=p.snd_nxt)
        p.snd_nxt = (p.snd_nxt + len(REQ)) & M32
        assert [(g.payload, g.ack) for g in out] == [(HELLO, p.snd_nxt)]
    assert http(w, hs.CNT_REQUESTS) == 2 and w.tcb.ooo_n[c1] == w.tcb.ooo_n[c2] == 0


SACK_SYN = opt_mss(1460) + b"\x01\x01\x04\x02" + b"\x01" + opt_ws(7)    # MSS, NOP, NOP, SACK ok, NOP, WS


def sack_blocks(g, base: int) -> list[tuple[int, int]]:
    """The SACK blocks of segment g, as offsets from base."""
    v = g.options.get(5, b"")
    return [tuple(seq_diff(x, base) for x in struct.unpack_from("!II", v, 8 * k)) for k in range(len(v) // 8)]


def test_acks_carry_sack_blocks_of_the_kept_segments_the_latest_first():
    w = Wire()
    p = Peer(w)
    c = p.connect(options=SACK_SYN)
    x = REQ + REQ
    base = p.snd_nxt

    def part(lo: int, hi: int) -> list:
        out = p.send(x[lo:hi], seq=(base + lo) & M32)
        assert len(out) == 1 and out[0].ack == base and out[0].payload == b"" and out[0].flags == ACK
        return sack_blocks(out[0], base)

    before = w.counters()
    assert part(40, 50) == [(40, 50)]
    assert part(70, 80) == [(70, 80), (40, 50)]
    assert part(20, 30) == [(20, 30), (40, 50), (70, 80)]
    assert part(50, 60) == [(40, 60), (20, 30), (70, 80)]             # touches [40,50): one block
    assert part(5, 10) == [(5, 10), (20, 30), (40, 60), (70, 80)]      # four: all an option holds
    assert part(90, 95) == [(90, 95), (5, 10), (20, 30), (40, 60)]     # five runs: the last in order is left out
    assert changed(w, before) == {"rx_frames": 6, "tcp_segs_in": 6, "tcp_out_of_order": 6, "tcp_ooo_kept": 6,
                                  "tcp_segs_out": 6, "tcp_sack_blocks_out": 1 + 2 + 3 + 3 + 4 + 4}
    out = p.send(x[:20], seq=base)                       # [0,30) now in order: ACK 30, the rest still kept
    assert [(seq_diff(g.ack, base), sack_blocks(g, base)) for g in out] == [(30, [(90, 95), (40, 60), (70, 80)])]
    out = p.send(x[30:], seq=(base + 30) & M32)          # the rest: both responses, no blocks left to report
    p.snd_nxt = (base + len(x)) & M32
    assert [(g.payload, g.ack, sack_blocks(g, base)) for g in out] == [(HELLO + HELLO, p.snd_nxt, [])]
    assert w.tcb.ooo_n[c] == 0


def sack_option(*blocks) -> bytes:
    """NOP, NOP and a SACK option of absolute (left, right) blocks."""
    return b"\x01\x01" + bytes([5, 2 + 8 * len(blocks)]) + b"".join(struct.pack("!II", a, b) for a, b in blocks)


def sack_download():
    """A peer that permits SACK asked for the 5 MiB body: (wire, peer, its slot, una), una(k) the first
    byte of the response's segment k (the first ten are out)."""
    w = Wire()
    p = Peer(w, window=1 * MiB)
    c = p.connect(options=SACK_SYN)
    start = p.send(Peer.request("/another"))[0].seq
    return w, p, c, lambda k: (start + k * 1460) & M32


def test_a_sack_sender_resends_every_hole_the_blocks_show_without_waiting_for_partial_acks():
    """Segments 1 and 3 of a response are lost. With SACK the server sends new segments on the first
    two duplicate ACKs (limited transmit), resends segment 1 on the third (cwnd halved, not
    inflated) and segment 3 as soon as the SACKs show pipe has room, before any partial ACK (NewReno
    waits one round trip per hole: test_fast_retransmit_newreno_partial_ack_then_full_ack); SACKed
    segments are never resent."""
    w, p, c, una = sack_download()
    t = w.tcb
    mss = 1460
    p.ack(ack=una(1))                                    # slow start: segments 10 and 11 follow
    sacked = lambda *runs: sack_option(*((una(a), una(b)) for a, b in runs))     # noqa: E731
    before = w.counters()
    out = p.ack(ack=una(1), options=sacked((2, 3)))                  # limited transmit: segment 12
    assert [(g.seq, len(g.payload)) for g in out] == [(una(12), mss)]
    out = p.ack(ack=una(1), options=sacked((4, 5), (2, 3)))          # and 13
    assert [(g.seq, len(g.payload)) for g in out] == [(una(13), mss)]
    out = p.ack(ack=una(1), options=sacked((4, 6), (2, 3)))          # the third: segment 1 again
    assert [(g.seq, len(g.payload)) for g in out] == [(una(1), mss)]
    assert t.flags[c] & tt.F_RECOVERY and t.cwnd[c] == t.ssthresh[c] == 13 * mss // 2
    for k in (7, 8, 9):                                  # pipe: (14 - k) + 1 segments, cwnd 6.5
        assert p.ack(ack=una(1), options=sacked((4, k), (2, 3))) == []
    out = p.ack(ack=una(1), options=sacked((4, 10), (2, 3)))         # pipe 5 + 1: room for the hole at 3
    assert [(g.seq, len(g.payload)) for g in out] == [(una(3), mss)]
    assert out[0].payload == ok(5 * MiB)[3 * mss:4 * mss]
    assert changed(w, before) == {"rx_frames": 7, "tcp_segs_in": 7, "tcp_dupacks": 7, "tcp_fast_retransmits": 1,
                                  "tcp_retransmits": 2, "tcp_segs_out": 4,
                                  "tcp_sack_blocks_in": 1 + 2 + 2 + 2 + 2 + 2 + 2, "tcp_sack_retransmits": 1}
    assert w.counter("tcp_retransmit_bytes") - before["tcp_retransmit_bytes"] == 2 * mss
    out = p.ack(ack=una(3), options=sacked((4, 10)))     # partial ACK: segment 3 was resent already
    assert all(g.seq == una(14) or seq_after(g.seq, una(14)) for g in out)
    out = p.ack(ack=una(14))                             # all before recovery: done
    assert not t.flags[c] & tt.F_RECOVERY and t.cwnd[c] == t.ssthresh[c]
    assert (t.sack_n[c], w.counter("tcp_retransmits")) == (0, 2)


def test_a_dsack_of_a_needless_resend_makes_the_sender_wait_for_a_fourth_duplicate_ack():
    """The peer reports segment 0 twice (a D-SACK below its ACK: a resend it did not need). The next
    three duplicate ACKs are taken as reordering: two let new segments out, the third sends nothing;
    the fourth starts fast recovery."""
    w, p, c, una = sack_download()
    t = w.tcb
    mss = 1460
    sacked = lambda *runs: sack_option(*((una(a), una(b)) for a, b in runs))     # noqa: E731
    p.ack(ack=una(1))
    before = w.counters()
    p.ack(ack=una(2), options=sacked((0, 1)))
    assert changed(w, before)["tcp_dsacks_in"] == 1 and t.sack_n[c] == 0
    assert [len(p.ack(ack=una(2), options=sacked((3, k)))) for k in (4, 5, 6)] == [1, 1, 0]
    assert not t.flags[c] & tt.F_RECOVERY
    out = p.ack(ack=una(2), options=sacked((3, 7)))
    assert [(g.seq, len(g.payload)) for g in out] == [(una(2), mss)] and t.flags[c] & tt.F_RECOVERY


def test_after_a_timeout_the_sender_skips_what_the_acks_of_its_resends_sack():
    """Segments 1-3 and 8 are lost, and so are the ACKs. The timeout resends segment 1 with a window
    of one (the scoreboard is forgotten: RFC 2018 8). Its ACK SACKs 4-7 and 9-12 anew: segments 2
    and 3 go again, then 8 alone, never the SACKed 9-11 (RFC 6675 5.1)."""
    w, p, c, una = sack_download()
    t = w.tcb
    mss = 1460
    sacked = lambda *runs: sack_option(*((una(a), una(b)) for a, b in runs))     # noqa: E731
    p.ack(ack=una(1))                                    # segments 10 and 11 follow
    out = []
    for _ in range(2000):
        out += w.advance(MS)
        if w.counter("tcp_timeouts"):
            break
    assert [(g.seq, len(g.payload)) for g in out] == [(una(12), mss), (una(1), mss)]    # the probe, the timeout
    out = p.ack(ack=una(2), options=sacked((4, 8), (9, 13)))
    assert [(g.seq, len(g.payload)) for g in out] == [(una(2), mss), (una(3), mss)]
    out = p.ack(ack=una(8), options=sacked((9, 13)))
    assert [(g.seq, len(g.payload)) for g in out] == [(una(8), mss)]
    assert out[0].payload == ok(5 * MiB)[8 * mss:9 * mss]
    out = p.ack(ack=una(13))
    assert [g.seq for g in out] == [una(k) for k in (13, 14, 15, 16)]


def probe_tick(w: Wire, c: int) -> int:
    """When the armed probe timeout fires: the first timer tick at or after its deadline."""
    assert w.tcb.flags[c] & tt.F_PROBE_TIMER
    return -(-int(w.tcb.t_rto[c]) // MS) * MS


def test_silence_sends_a_new_segment_as_a_loss_probe_and_its_duplicate_ack_starts_recovery():
    """Tail loss probe (RFC 8985 7): after segment 1 every segment and ACK is lost. Two round trips
    and 2 ms after the last ACK (not the 200 ms timeout) one new segment goes out past cwnd; the
    peer's duplicate ACK, SACKing it, starts fast recovery at once: the three duplicates that would
    otherwise have started it could not come."""
    w, p, c, una = sack_download()
    t = w.tcb
    mss = 1460
    out = p.ack(ack=una(1), dt=1 * MS)                   # slow start: segments 10 and 11 follow
    assert [g.seq for g in out] == [una(10), una(11)] and t.cwnd[c] == 11 * mss
    due = probe_tick(w, c)
    assert t.t_rto[c] == w.now + 2 * t.srtt[c] + 2 * MS
    before = w.counters()
    assert w.advance_to(due - 1) == []
    out = w.advance_to(due)
    assert [(g.seq, len(g.payload)) for g in out] == [(una(12), mss)]
    assert out[0].payload == ok(5 * MiB)[12 * mss:13 * mss]
    assert changed(w, before) == {"tcp_loss_probes": 1, "tcp_segs_out": 1}
    assert t.cwnd[c] == 11 * mss and t.t_rto[c] == due + 200 * MS and not t.flags[c] & tt.F_PROBE_TIMER
    before = w.counters()
    out = p.ack(ack=una(1), options=sack_option((una(12), una(13))))
    assert [(g.seq, len(g.payload)) for g in out] == [(una(1), mss)]
    assert t.flags[c] & tt.F_RECOVERY and t.cwnd[c] == t.ssthresh[c] == 12 * mss // 2
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_dupacks": 1, "tcp_fast_retransmits": 1,
                                  "tcp_retransmits": 1, "tcp_segs_out": 1, "tcp_sack_blocks_in": 1}
    p.ack(ack=una(13))
    assert not t.flags[c] & (tt.F_RECOVERY | tt.F_PROBED) and w.counter("tcp_timeouts") == 0


@pytest.mark.parametrize("answer", ["duplicate", "all"])
def test_a_full_window_resends_its_last_segment_as_the_probe(answer):
    """The peer's window (3 segments) is full, so the probe resends the last segment. A duplicate
    ACK SACKing it starts recovery at once with the first segment; an ACK of everything means the
    probe repaired a loss (or crossed a late ACK: without D-SACK nothing tells them apart), so the
    window halves as for a loss."""
    w = Wire()
    p = Peer(w, wscale=None, window=3 * 1460)
    c = p.connect(options=opt_mss(1460) + b"\x01\x01\x04\x02")     # MSS, NOP, NOP, SACK permitted
    t = w.tcb
    mss = 1460
    out = p.send(Peer.request("/another"))
    start = out[0].seq
    una = lambda k: (start + k * mss) & M32              # noqa: E731
    assert [(g.seq, len(g.payload)) for g in out] == [(una(k), mss) for k in range(3)]
    due = probe_tick(w, c)
    assert due < w.now + 200 * MS
    before = w.counters()
    out = w.advance_to(due)
    assert [(g.seq, len(g.payload)) for g in out] == [(una(2), mss)]
    assert out[0].payload == ok(5 * MiB)[2 * mss:3 * mss]
    assert changed(w, before) == {"tcp_loss_probes": 1, "tcp_retransmits": 1, "tcp_segs_out": 1}
    assert t.flags[c] & tt.F_PROBE_RESENT and t.cwnd[c] == 10 * mss
    if answer == "duplicate":
        out = p.ack(ack=una(0), options=sack_option((una(2), una(3))), window=3 * 1460)
        assert [(g.seq, len(g.payload)) for g in out] == [(una(0), mss)]
        assert t.flags[c] & tt.F_RECOVERY and t.cwnd[c] == t.ssthresh[c] == 2 * mss
    else:
        out = p.ack(ack=una(3), window=3 * 1460)
        assert t.cwnd[c] == t.ssthresh[c] == 2 * mss and not t.flags[c] & (tt.F_RECOVERY | tt.F_PROBE_RESENT)
        assert [(g.seq, len(g.payload)) for g in out] == [(una(3), mss), (una(4), mss)]
    assert w.counter("tcp_timeouts") == 0


@pytest.mark.parametrize("case", ["no SACK", "one segment"])
def test_no_probe_without_sack_or_for_a_lone_segment(case):
    """Without SACK a probe's ACK would say nothing new; a lone segment's ACK may be delayed 200 ms
    (RFC 8985 7.2), as long as the timeout: both wait for the timeout, which resends segment 0."""
    w = Wire()
    p = Peer(w, window=1 * MiB)
    c = p.connect(options=SACK_SYN if case == "one segment" else opt_mss(1460) + opt_ws(7))
    t = w.tcb
    out = p.send(Peer.request("/hello" if case == "one segment" else "/another"))
    assert len(out) == (1 if case == "one segment" else 10)
    assert not t.flags[c] & tt.F_PROBE_TIMER and t.t_rto[c] == w.now + 200 * MS
    assert w.advance(200 * MS - 1) == []
    assert [g.seq for g in w.advance(1)] == [out[0].seq]
    assert (w.counter("tcp_loss_probes"), w.counter("tcp_timeouts")) == (0, 1)


def test_partly_old_segment_gives_only_its_new_bytes_to_the_application():
    w, p, c = established()
    first = p.snd_nxt
    assert p.send(REQ[:15]) == []
    out = p.send(REQ, seq=first)                         # 15 old bytes, then new ones
    p.snd_nxt = (first + len(REQ)) & M32
    assert [(g.payload, g.ack) for g in out] == [(HELLO, p.snd_nxt)]
    assert http(w, hs.CNT_REQUESTS) == 1


# ------------------------------------------------------------------ flow control

def test_window_limits_sending_zero_window_probes_then_the_rest_follows():
    w, p, c = established(window=8 * KiB)
    t = w.tcb
    expected = ok(5 * MiB)
    out = p.send(Peer.request("/another"))
    assert [len(g.payload) for g in out] == [1460] * 5 + [8 * KiB - 5 * 1460]   # exactly the window
    assert p.ack(window=8 * KiB) != []                   # the window moves: more follows
    before = w.counters()
    assert p.ack(window=0) == []                         # everything ACKed, window closed: nothing
    una = p.rcv_nxt
    t0 = w.now
    assert w.advance_to(t0 + 200 * MS - 1) == []
    out = w.advance_to(t0 + 200 * MS)                    # persist timer: a window probe
    assert [(g.flags, g.seq, g.payload) for g in out] == [(ACK, (una - 1) & M32, b"")]
    assert p.ack(window=0) == []                         # the probe's answer: still closed
    assert w.advance_to(t0 + 600 * MS - 1) == []         # the next probe is backed off: 400 ms
    assert len(w.advance_to(t0 + 600 * MS)) == 1
    assert changed(w, before) == {"rx_frames": 2, "tcp_segs_in": 2, "tcp_segs_out": 2, "tcp_window_probes": 2}
    opened = w.now + 1 * MS
    out = p.ack(window=64 * KiB, dt=1 * MS)              # the window opens: data again
    assert out and out[0].seq == una and all(len(g.payload) == 1460 for g in out)
    assert t.backoff[c] == 0                             # probing is over: no backoff carried over
    assert w.advance_to(opened + 200 * MS - 1) == []
    out = w.advance_to(opened + 200 * MS)                # not ACKed: a normal 200 ms retransmission
    assert [(g.seq, len(g.payload)) for g in out] == [(una, 1460)]
    assert w.counter("tcp_retransmits") == 1
    p.fetch(len(expected), window=64 * KiB)
    assert bytes(p.data) == expected


def test_slow_reader_gets_every_byte():
    """The peer ACKs what arrives at once, but its application reads only 3 KiB of its 16 KiB buffer
    per turn, and now and then not at all for 300 ms: the window closes, opens, closes."""
    w, p, c = established(window=16 * KiB)
    expected = ok(5 * MiB)
    cap, turn = 16 * KiB, 0
    p.send(Peer.request("/another"))
    buffered = len(p.data)                               # received, not yet read by the application
    while len(p.data) < len(expected):
        got = len(p.data)
        p.ack(window=cap - buffered)
        buffered += len(p.data) - got
        assert buffered <= cap
        if len(p.data) > got:
            continue                                     # more arrived: acknowledge it first
        turn += 1
        assert turn < 5_000, f"stuck at {len(p.data)}"
        if turn % 50 < 2:
            assert (cap - buffered) >> 7 == 0                 # closed (the field counts 128-byte units)
            w.advance(300 * MS)                          # the application is busy: window probes
        else:
            buffered = max(0, buffered - 3 * KiB)
    assert bytes(p.data) == expected
    assert w.counter("tcp_window_probes") > 0 and w.counter("tcp_retransmits") == 0


# ------------------------------------------------------------------ closing

def test_server_closes_first_fin_wait_1_fin_wait_2_time_wait_released():
    w, p, c = established()                              # time_wait_ms = 1000
    out = p.send(Peer.request("/hello", close=True))
    assert [(g.flags, g.payload) for g in out] == [(FIN | PSH | ACK, ok(100, close=True))]
    assert p.state == "FIN_WAIT_1"
    assert p.ack() == [] and p.state == "FIN_WAIT_2"
    before = w.counters()
    out = p.fin()
    assert len(out) == 1 and pure_ack(out[0], p)
    assert p.state == "TIME_WAIT"
    # the row is free at once; a TIME-WAIT record holds the 4-tuple (nperf.kernels.time_wait)
    assert w.s.free[0] == w.max_conns and w.tcb.state[c] == tt.CLOSED
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_segs_out": 1, "conn_closed": 1,
                                  "tcp_time_wait": 1}
    t0 = w.now
    assert w.advance_to(t0 + 1_000 * MS - 1) == [] and p.state == "TIME_WAIT"
    assert w.advance_to(t0 + 1_000 * MS) == []
    assert p.state == "CLOSED" and w.s.var[V_TW_HEAD] == w.s.var[V_TW_TAIL]


def test_peer_closes_first_last_ack_released():
    w, p, c = established()
    p.send(REQ)
    p.ack()
    before = w.counters()
    fin = p.frame(FIN | ACK)
    p.snd_nxt = (p.snd_nxt + 1) & M32
    out = w.step([fin])                                  # CLOSE_WAIT lasts until the output, in the same turn
    assert [(g.flags, g.seq, g.ack) for g in out] == [(FIN | ACK, (p.irs + 1 + len(HELLO)) & M32, p.snd_nxt)]
    assert p.state == "LAST_ACK"
    assert p.ack() == []
    assert p.state == "CLOSED" and w.s.free[0] == w.max_conns
    assert changed(w, before) == {"rx_frames": 2, "tcp_segs_in": 2, "tcp_segs_out": 1, "conn_closed": 1}


@pytest.mark.parametrize("case", ["fin_with_request", "fin_before_response_acked", "fin_during_bulk",
                                  "rst_after_fin_for_unread_data", "rst_for_unread_data",
                                  "rst_beyond_bytes_not_taken"])
def test_peer_close_like_a_load_generator_exiting_always_releases(case):
    """wrk closing its sockets: every way a Linux client ends a keep-alive connection frees the slot."""
    w, p, c = established()
    if case == "fin_with_request":
        out = p.fin(REQ)                                 # request and FIN in one segment
        assert [(g.flags, g.payload) for g in out] == [(FIN | PSH | ACK, HELLO)]
        p.ack()
    elif case == "fin_before_response_acked":
        p.send(REQ)
        out = p.fin(ack=(p.irs + 1) & M32)
        assert [g.flags for g in out] == [FIN | ACK]
        p.ack()
    elif case == "fin_during_bulk":
        p.send(Peer.request("/another"))
        p.fetch(100 * KiB)
        p.fin()                                          # the rest of the response, then FIN
        p.fetch(len(ok(5 * MiB)))
        p.ack_owed()
        assert p.fin_received and bytes(p.data) == ok(5 * MiB)
    elif case == "rst_after_fin_for_unread_data":
        p.send(REQ)                                      # response sent with ack = the peer's FIN seq
        fin_seq = p.snd_nxt
        [f] = p.fin(ack=(p.irs + 1) & M32)               # server: CLOSE_WAIT -> FIN -> LAST_ACK
        assert f.flags == FIN | ACK and p.state == "LAST_ACK"
        assert p.rst(seq=fin_seq) == []                  # Linux resets the response: RST seq = its ack
        assert p.state == "LAST_ACK"                     # below the window: ignored (RFC 5961)
        p.rst(seq=f.ack)                                 # and the server's FIN (no socket): RST seq = ack
    elif case == "rst_for_unread_data":
        p.send(REQ)                                      # response unread, socket closed: RST at snd_nxt
        p.rst(flags=RST | ACK)
    else:
        p.send(REQ[:10], seq=(p.snd_nxt + 10) & M32)     # a segment the server dropped (out of order)
        p.snd_nxt = (p.snd_nxt + 20) & M32
        [a] = p.rst(flags=RST | ACK)                     # the client exits: RST beyond what was taken
        assert a.flags == ACK and p.state == "ESTABLISHED"   # challenge ACK ...
        p.rst(seq=a.ack)                                 # ... which the closed socket answers exactly
    assert p.state == "CLOSED" and w.s.free[0] == w.max_conns
    assert w.counter("conn_closed") + w.counter("conn_reset") == 1


def test_simultaneous_close_closing_then_time_wait():
    w, p, c = established()
    out = p.send(Peer.request("/hello", close=True))
    server_fin = out[-1]
    assert server_fin.flags & FIN
    # the peer closes at the same time: its FIN does not acknowledge the server's FIN
    out = p.put(FIN | ACK, ack=server_fin.seq + len(server_fin.payload))
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == p.snd_nxt
    assert p.state == "CLOSING"
    assert p.ack() == []
    assert p.state == "TIME_WAIT"
    assert w.advance(1_000 * MS) == [] and p.state == "CLOSED" and w.counter("conn_closed") == 1


def test_fin_retransmitted_in_time_wait_is_acked_again_and_restarts_it():
    w, p, c = established()
    p.send(Peer.request("/hello", close=True))
    p.ack()
    fin_seq = p.snd_nxt
    p.fin()
    assert p.state == "TIME_WAIT"
    out = p.put(FIN | ACK, seq=fin_seq, dt=500 * MS)     # our ACK was lost: FIN again
    assert len(out) == 1 and pure_ack(out[0], p)
    assert w.advance(999 * MS) == [] and p.state == "TIME_WAIT"
    assert w.advance(1 * MS) == [] and p.state == "CLOSED"


def test_new_syn_for_a_four_tuple_in_time_wait_opens_a_new_connection():
    w, p, c = established()
    p.send(Peer.request("/hello", close=True))
    p.ack()
    p.fin()
    assert p.state == "TIME_WAIT"
    before = w.counters()
    p.reset(isn=p.snd_nxt + 100_000)
    c2 = p.connect()
    assert changed(w, before) == {"rx_frames": 2, "tcp_segs_in": 2, "tcp_syns_in": 1, "tcp_segs_out": 1,
                                  "conn_opened": 1}           # the first closed when it entered TIME-WAIT
    p.send(REQ)
    assert bytes(p.data) == HELLO and w.live() == 1 and c2 >= 0


# ------------------------------------------------------------------ resets

def test_rst_with_the_next_sequence_number_closes():
    w, p, c = established()
    before = w.counters()
    assert p.rst() == []
    assert p.state == "CLOSED" and w.s.free[0] == w.max_conns
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_resets_in": 1, "conn_reset": 1}


@pytest.mark.parametrize("off", [-1, -100_000, 1 << 20, 1 << 31])
def test_rst_outside_the_window_is_ignored(off):
    w, p, c = established()                              # receive window: 1 MiB
    before = w.counters()
    assert p.rst(seq=(p.snd_nxt + off) & M32) == []
    assert p.state == "ESTABLISHED"
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1}
    assert [g.payload for g in p.send(REQ)] == [HELLO]


@pytest.mark.parametrize("off", [1, 100_000, (1 << 20) - 1])
def test_rst_in_the_window_but_not_exact_gets_a_challenge_ack(off):
    w, p, c = established()
    before = w.counters()
    out = p.rst(seq=(p.snd_nxt + off) & M32)
    assert len(out) == 1 and pure_ack(out[0], p) and out[0].seq == (p.irs + 1) & M32
    assert p.state == "ESTABLISHED"
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_segs_out": 1}
    assert p.rst(seq=out[0].ack) == []                   # a peer that really reset answers exactly
    assert p.state == "CLOSED" and w.counter("conn_reset") == 1


def test_segment_to_a_port_without_listener_gets_rst_ack():
    w = Wire()
    p = Peer(w, server_port=9000)
    before = w.counters()
    out = p.put(PSH, b"0123456789", seq=1000)            # no ACK flag: RST+ACK acknowledging it
    assert [(g.flags, g.seq, g.ack, g.sport, g.dport) for g in out] == [(RST | ACK, 0, 1010, 9000, 40000)]
    out = p.put(SYN, seq=5000, options=opt_mss(1460))    # SYN outside the port range
    assert [(g.flags, g.seq, g.ack) for g in out] == [(RST | ACK, 0, 5001)]
    out = p.put(SYN | FIN, b"abc", seq=7000)             # SYN and FIN take a sequence number each
    assert [(g.flags, g.ack) for g in out] == [(RST | ACK, 7005)]
    assert changed(w, before) == {"rx_frames": 3, "tcp_segs_in": 3, "tcp_no_listener": 3, "tcp_resets_out": 3}
    assert out[0].dst_mac == PEER_MAC and out[0].window == 0 and w.live() == 0


def test_ack_for_no_connection_gets_rst_with_its_ack_as_sequence():
    w = Wire()
    p = Peer(w)
    out = p.put(ACK, b"data", seq=1, ack=123456789)
    assert [(g.flags, g.seq, g.ack) for g in out] == [(RST, 123456789, 0)]
    out = p.put(SYN | ACK, seq=1, ack=0xFFFFFFFF)        # a stray SYN-ACK
    assert [(g.flags, g.seq) for g in out] == [(RST, 0xFFFFFFFF)]
    assert w.counter("tcp_resets_out") == 2 and w.live() == 0


def test_no_rst_is_ever_sent_for_a_rst():
    w = Wire()
    p = Peer(w)
    q = Peer(w, server_port=9000)
    before = w.counters()
    for peer in (p, q):
        for flags in (RST, RST | ACK, RST | SYN, RST | FIN, RST | PSH | ACK):
            assert peer.put(flags, b"x" if flags & PSH else b"", seq=77, ack=88) == []
    assert changed(w, before) == {"rx_frames": 10, "tcp_segs_in": 10, "tcp_resets_in": 10}
    w2, p2, c2 = established()
    for off in (5, -5):                                  # in a connection: in and out of the window
        out = p2.put(RST | SYN, seq=(p2.snd_nxt + off) & M32)
        assert not any(g.flags & RST for g in out)
    assert p2.state == "ESTABLISHED" and w2.counter("tcp_resets_out") == 0


def test_challenge_ack_for_a_syn_on_an_established_connection():
    w, p, c = established()
    out = p.put(SYN, seq=p.snd_nxt + 1000, options=opt_mss(1460))
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == p.snd_nxt
    assert p.state == "ESTABLISHED" and w.counter("conn_opened") == 1


# ------------------------------------------------------------------ limits

def test_table_full_drops_syns_until_a_slot_is_free():
    w = Wire(max_conns=2)
    a, b, x = Peer(w, port=1001), Peer(w, port=1002), Peer(w, port=1003)
    a.connect()
    b.connect()
    before = w.counters()
    assert x.syn() == []
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_syns_in": 1, "tcp_table_full": 1}
    assert x.state == "CLOSED" and w.s.free[0] == 0
    a.rst()
    assert w.s.free[0] == 1
    x.connect()
    x.send(REQ)
    assert bytes(x.data) == HELLO and w.s.free[0] == 0


def test_a_syn_flood_recycles_half_open_rows_oldest_first_and_a_handshake_still_completes():
    w = Wire(max_conns=4)
    flood = [Peer(w, ip="192.168.1.50", port=2000 + i) for i in range(8)]
    for p in flood[:4]:
        assert [g.flags for g in p.syn(dt=MS)] == [SYN | ACK]
    assert w.s.free[0] == 0 and [p.state for p in flood[:4]] == ["SYN_RCVD"] * 4
    before = w.counters()
    assert [g.flags for g in flood[4].syn(dt=MS)] == [SYN | ACK]
    assert changed(w, before) == {"rx_frames": 1, "tcp_segs_in": 1, "tcp_syns_in": 1, "tcp_segs_out": 1,
                                  "tcp_syn_evicted": 1, "conn_aborted": 1}
    assert flood[0].state == "CLOSED" and flood[4].state == "SYN_RCVD"
    legit = Peer(w, port=3000)
    out = legit.syn(dt=MS)                               # evicts flood[1], the oldest left
    assert [g.flags for g in out] == [SYN | ACK] and flood[1].state == "CLOSED"
    for p in flood[5:7]:                                 # the flood goes on: flood[2], flood[3] go
        p.syn(dt=MS)
    assert [p.state for p in flood] == ["CLOSED"] * 4 + ["SYN_RCVD"] * 3 + ["CLOSED"]
    assert legit.state == "SYN_RCVD" and not legit.ack() and legit.state == "ESTABLISHED"
    flood[7].syn(dt=MS)                                  # flood[4] goes, not the established one
    assert flood[4].state == "CLOSED" and legit.state == "ESTABLISHED"
    legit.send(REQ)
    assert bytes(legit.data) == HELLO
    assert w.counter("tcp_syn_evicted") == 5 and w.counter("tcp_table_full") == 0
    assert any(g.flags & RST for g in flood[0].ack())   # an evicted peer's late ACK finds no connection


def test_idle_connection_is_reset_after_idle_timeout():
    w = Wire(idle_timeout_s=0.5)
    w, p, c = established(w)
    p.send(REQ)
    p.ack(dt=100 * MS)                                   # the last segment: the idle clock starts
    t0 = w.now
    assert w.advance_to(t0 + 500 * MS - 1) == [] and p.state == "ESTABLISHED"
    before = w.counters()
    out = w.advance_to(t0 + 500 * MS)
    assert [(g.flags, g.seq) for g in out] == [(RST | ACK, (p.irs + 1 + len(HELLO)) & M32)]
    assert p.state == "CLOSED" and w.s.free[0] == w.max_conns
    assert changed(w, before) == {"tcp_segs_out": 1, "tcp_resets_out": 1, "conn_idle_closed": 1}


# ------------------------------------------------------------------ fuzz

FUZZ = settings(derandomize=True, max_examples=int(os.environ.get("NPERF_FUZZ_EXAMPLES", 1000)), deadline=None,
                database=None, suppress_health_check=list(HealthCheck))

DROPS = tuple(n for n in COUNTER_NAMES if n.startswith("drop_") and n not in ("drop_no_mbuf", "drop_tx_full"))
ACCEPTED = tuple(n for n in ("arp_in", "icmp_echo", "tcp_segs_in", "udp_in") if n in COUNTER_NAMES)
CLASSES = {frozenset({n}) for n in DROPS + ACCEPTED}
CLASS_COUNTERS = set(DROPS + ACCEPTED)


def check_frame_classes(w: Wire) -> None:
    """Each frame delivered moved rx_frames and exactly one of: a drop counter, arp_in, icmp_echo, tcp_segs_in."""
    for moved in w.input_classes:
        assert "rx_frames" in moved, moved
        assert frozenset(moved) & CLASS_COUNTERS in CLASSES, moved
    total = sum(w.counter(n) for n in CLASS_COUNTERS)
    assert total == w.counter("rx_frames") == len(w.input_classes)


def fuzz_wire() -> Wire:
    return Wire(max_conns=3, pool=700, idle_timeout_s=2.0, time_wait_ms=100, data_retries=3, syn_retries=2)


def finish(w: Wire) -> None:
    """With no more input every connection ends (idle 2 s at the latest) and the table is whole."""
    for _ in range(20):                                  # SYN_RCVD: 1 + 2 + 4 s of SYN-ACK retries
        w.advance(500 * MS)
    assert w.live() == 0 and w.s.free[0] == w.max_conns
    check_frame_classes(w)
    for p in w.peers.values():
        check_stream(p)


def _all_responses(table) -> list[bytes]:
    """Every response the server can send, in every variant (keep-alive/close, GET/HEAD)."""
    out = []
    for index in range(table[0].shape[0]):
        for flags in range(4):
            n = hs.response_length(table, index, flags)
            buf = np.zeros(n, np.uint8)
            hs.response_copy(table, index, flags, 0, buf, 0, n)
            out.append(buf.tobytes())
    return out


RESPONSES = _all_responses(Wire(max_conns=1, pool=300).s.app.responses)


def check_stream(p: Peer) -> None:
    """What a peer received on one connection is a run of whole responses (the last one maybe cut)."""
    data = bytes(p.data)
    while data:
        for r in RESPONSES:
            if data.startswith(r) or r.startswith(data):
                data = data[len(r):]
                break
        else:
            raise AssertionError(f"not a response: {data[:80]!r}")


def carries_rst(frame: bytes) -> bool:
    """A frame that reaches TCP (as the stack would see it) with the RST flag."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return False
    ihl = (frame[14] & 0xF) * 4
    return len(frame) >= 14 + ihl + 14 and bool(frame[14 + ihl + 13] & RST)


@st.composite
def raw_frames(draw):
    kind = draw(st.integers(0, 5))
    tail = draw(st.binary(max_size=80))
    if kind == 0:
        return tail
    if kind == 4:
        target = draw(st.sampled_from([SERVER_IP, "192.168.1.107", "192.168.1.108"]))
        frame = arp_frame(draw(st.integers(0, 3)), PEER_MAC, PEER_IP, b"\0" * 6, target)
        return frame[:draw(st.integers(14, len(frame)))] if draw(st.booleans()) else frame + tail
    if kind == 5:
        echo = icmp_echo(draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), tail,
                         typ=draw(st.sampled_from([8, 8, 0, 13])))
        return eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, SERVER_IP, 1, echo))
    if kind == 1:
        return eth(draw(st.sampled_from([SERVER_MAC, BCAST, OTHER_MAC])), PEER_MAC,
                   draw(st.sampled_from([0x0800, 0x0806, 0x86DD, 0x1234])), tail)
    dst = draw(st.sampled_from([SERVER_IP, "192.168.1.107", "192.168.1.108"]))
    if kind == 2:
        proto, frag = draw(st.sampled_from([1, 6, 17, 99])), draw(st.sampled_from([0, 0x4000, 0x2000]))
        return eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, dst, proto, tail, frag=frag))
    flags = draw(st.integers(0, 255))
    sport, dport = draw(st.sampled_from([40000, 1])), draw(st.sampled_from([8000, 8010, 8011, 80]))
    opts = draw(st.binary(max_size=40))
    seg = tcp_segment(PEER_IP, dst, sport, dport, draw(st.integers(0, M32)), draw(st.integers(0, M32)), flags,
                      draw(st.integers(0, 65535)), tail, opts[:len(opts) & ~3])
    return eth(SERVER_MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, dst, 6, seg))


@FUZZ
@given(st.lists(st.tuples(raw_frames(), st.integers(0, 300 * MS)), min_size=1, max_size=8))
def test_fuzz_random_frames(frames):
    w = fuzz_wire()
    for frame, dt in frames:
        w.step([frame], dt)
        if dt == 0 and carries_rst(frame):
            assert not any(g.flags & RST for g in w.out), "answered a RST with a RST"
    check_frame_classes(w)
    finish(w)


FIELDS = {                       # frame offset and size of fields worth overwriting
    "ip_len": (16, 2), "ihl": (14, 1), "frag": (20, 2), "proto": (23, 1), "seq": (38, 4), "ack": (42, 4),
    "doff": (46, 1), "flags": (47, 1), "window": (48, 2), "options": (54, 4), "payload": (58, 4),
}
KINDS = ("syn", "ack", "request", "partial", "close_request", "fin", "rst", "old_data", "future_data",
         "bad_request", "big_request", "big_request", "dupacks", "ack_part", "zero_window", "small_window")


def base_frames(p: Peer, kind: str) -> list[bytes]:
    """Valid segments of p's connection as it stands, advancing p as if the server got them.

    `p.fz_ack` is the last acknowledgement number p sent (what "dupacks" repeats)."""
    if p.rcv_nxt is not None and kind in ("dupacks", "ack_part", "zero_window", "small_window"):
        got = (p.irs + 1 + len(p.data)) & M32           # (ignores a FIN received: an old ACK then)
        if kind == "dupacks":
            return [p.frame(ACK, ack=p.fz_ack if p.fz_ack is not None else got)] * 3
        p.fz_ack = (got - min(len(p.data), 3000)) & M32 if kind == "ack_part" else p.rcv_nxt
        return [p.frame(ACK, ack=p.fz_ack, window={"zero_window": 0, "small_window": 3000}.get(kind))]
    return [base_frame(p, kind)]


def base_frame(p: Peer, kind: str) -> bytes:
    if kind == "syn":
        check_stream(p)
        p.reset((p.isn + 7919) & M32)
        p.fz_ack = None
        return p.frame(SYN, options=linux_syn_options())
    payload = {"request": REQ, "partial": REQ[:7], "close_request": Peer.request("/", close=True),
               "old_data": REQ[:5], "future_data": REQ[5:], "bad_request": b"\0\0\0\r\n\r\n",
               "big_request": Peer.request("/another")}.get(kind, b"")
    if kind == "old_data":
        return p.frame(PSH | ACK, payload, seq=(p.snd_nxt - 5) & M32)
    if kind == "future_data":
        return p.frame(PSH | ACK, payload, seq=(p.snd_nxt + 5) & M32)
    if kind == "rst":
        return p.frame(RST | ACK)
    flags = ACK | (FIN if kind == "fin" else 0) | (PSH if payload else 0)
    f = p.frame(flags, payload)
    p.fz_ack = p.rcv_nxt
    p.snd_nxt = (p.snd_nxt + len(payload) + (1 if kind == "fin" else 0)) & M32
    return f


def fix_checksums(frame: bytearray) -> None:
    """Recompute the IPv4 header and TCP checksums of a (mutated) frame, where its lengths allow."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return
    ihl = (frame[14] & 0xF) * 4
    if ihl < 20 or len(frame) < 14 + ihl:
        return
    frame[24:26] = b"\0\0"
    frame[24:26] = struct.pack("!H", checksum(bytes(frame[14:14 + ihl])))
    total = struct.unpack_from("!H", frame, 16)[0]
    o = 14 + ihl
    if frame[23] != 6 or total < ihl + 20 or 14 + total > len(frame):
        return
    frame[o + 16:o + 18] = b"\0\0"
    pseudo = bytes(frame[26:34]) + struct.pack("!BBH", 0, 6, total - ihl)
    frame[o + 16:o + 18] = struct.pack("!H", checksum(pseudo + bytes(frame[o:14 + total])))


@st.composite
def mutation(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return ("none",)
    if kind == 1:
        return ("flip", draw(st.integers(0, 1000)), draw(st.integers(0, 7)), draw(st.booleans()))
    if kind == 2:
        return ("cut", draw(st.integers(0, 120)), draw(st.booleans()))
    return ("field", draw(st.sampled_from(sorted(FIELDS))), draw(st.integers(0, M32)), draw(st.booleans()))


def mutate(frame: bytes, m) -> bytes:
    f = bytearray(frame)
    if m[0] == "flip":
        f[m[1] % len(f)] ^= 1 << m[2]
    elif m[0] == "cut":
        del f[max(len(f) - m[1], 0):]
    elif m[0] == "field":
        off, size = FIELDS[m[1]]
        if off + size <= len(f):
            f[off:off + size] = (m[2] & ((1 << 8 * size) - 1)).to_bytes(size, "big")
    if m[0] != "none" and m[-1]:
        fix_checksums(f)
    return bytes(f)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 1, 2, 3]), st.sampled_from(KINDS), mutation(),
                          st.sampled_from([0, 0, 0, 1, 150 * MS, 500 * MS])), min_size=1, max_size=30))
def test_fuzz_mutated_segments_of_connected_peers(ops):
    w = fuzz_wire()
    peers = [Peer(w, port=40000 + i, check_window=False, isn=(0xFFFFFF00 + 1000 * i) & M32) for i in range(4)]
    for p in peers:
        p.fz_ack = None
    for p in peers[:2]:
        p.connect()
    for i, kind, m, dt in ops:
        p = peers[i]
        frames = base_frames(p, kind)
        frames[0] = mutate(frames[0], m)
        w.step(frames, dt)
        if dt == 0 and len(frames) == 1 and carries_rst(frames[0]):
            assert not any(g.flags & RST for g in w.out), "answered a RST with a RST"
    check_frame_classes(w)
    finish(w)


# ------------------------------------------------------------------ SYNs: owed, and Karn's rule

def test_syn_ack_waits_for_a_free_frame_and_is_not_a_retransmission():
    w = Wire()
    p = Peer(w)
    stash = w.s.stash[:int(w.s.var[nstack.V_STASH_N])].copy()
    w.s.var[nstack.V_STASH_N] = 0               # no free frame, and the pool too small for a refill
    top = int(w.pool[0])
    w.pool[0] = 4
    assert p.syn() == []                         # nothing could be sent: the SYN-ACK is owed
    assert p.state == "SYN_RCVD" and w.tcb.snd_nxt[p.slot] == 0
    w.pool[0] = top
    w.s.stash[:len(stash)] = stash
    w.s.var[nstack.V_STASH_N] = len(stash)
    out = w.advance(1 * MS)                      # the next turn, not the retransmission timeout
    assert [g.flags for g in out] == [SYN | ACK] and out[0].ack == (p.isn + 1) & M32
    assert w.counter("tcp_retransmits") == 0
    assert p.ack() == [] and p.state == "ESTABLISHED"


def test_syn_ack_sent_again_for_a_repeated_syn_gives_no_rtt_sample():
    w = Wire()
    p = Peer(w)
    [synack] = p.syn()
    out = p.syn(dt=300 * MS)                     # the peer did not get it: its SYN again
    assert [(g.flags, g.seq) for g in out] == [(SYN | ACK, synack.seq)]
    p.ack()
    c = p.slot
    assert p.state == "ESTABLISHED"
    assert (w.tcb.srtt[c], w.tcb.rto[c]) == (0, 1_000 * MS)     # Karn: the answer to which SYN-ACK?


def test_client_takes_no_rtt_sample_from_a_retransmitted_syn():
    from tests.http_peer import HttpServer
    from nperf.kernels import client_app as ca
    w = Wire(role="client")
    srv = HttpServer(w, answer_syn="none")
    srv.schedule([0.01, 0.02, 5.0, 5.0, 5.5], type=ca.O_HTTP_REQUESTS, value=1, rpc=1_000_000)
    while srv.syns == 0:
        srv._step(1 * MS)
    first = w.now
    srv.answer_syn = "synack"
    while srv.syns == 1:                         # the retransmission timeout: 1 s
        srv._step(1 * MS)
    assert 1_000 * MS <= w.now - first <= 1_002 * MS
    for _ in range(3):
        srv._step(1 * MS)
    [c] = [c for c in range(w.max_conns) if w.tcb.state[c] == tt.ESTABLISHED]
    # the first sample is the first request's round trip (a step), not the 1 s wait for the SYN-ACK
    assert w.tcb.srtt[c] <= 2 * MS and w.tcb.rto[c] == 200 * MS
    assert w.counter("tcp_retransmits") == 1


def test_a_full_work_ring_is_counted_and_the_connection_recovers_by_its_timer():
    w = Wire()
    w.s = w.s._replace(work=np.zeros(2, np.int64))      # room for two connections' output
    peers = [Peer(w, port=41000 + i) for i in range(3)]
    frames = [p.frame(SYN, options=opt_mss(1460)) for p in peers]
    for p in peers:
        p.snd_nxt = (p.isn + 1) & M32
    out = w.step(frames, burst=True)                     # one burst: three SYNs before any output
    assert sorted(g.dport for g in out if g.flags == SYN | ACK) == [41000, 41001]
    assert w.counter("ring_overflow") == 1
    third = peers[2]
    assert third.state == "SYN_RCVD" and w.tcb.snd_nxt[third.slot] == 0      # its SYN-ACK still owed
    w.s = w.s._replace(work=np.zeros(64, np.int64))     # room again (the ring is empty between turns)
    out = w.advance(1_000 * MS)                          # the retransmission timers: the third's first SYN-ACK
    assert sorted(g.dport for g in out if g.flags == SYN | ACK) == [41000, 41001, 41002]
    assert w.counter("tcp_retransmits") == 2
