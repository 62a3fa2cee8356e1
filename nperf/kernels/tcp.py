"""TCP (RFC 9293) over the connection table: input, output, timers.

Receive side: segments are handed to the application *in order, straight
from the mbuf*. A segment beyond the next expected byte is copied aside
(nperf.kernels.reassembly) until the hole before it fills; bytes the
application could not take are not acknowledged (the peer sends them
again). Send side: nothing is buffered; the application regenerates any
byte range of its stream (`app.app_copy`), so a retransmission is just
"build that range again".

Congestion control is NewReno (RFC 6582): slow start and congestion
avoidance by bytes acknowledged, fast retransmit on three duplicate ACKs,
partial ACKs retransmit the next hole, the first two duplicate ACKs each let a
new segment out (limited transmit, RFC 3042), and a retransmission timeout goes back
to snd_una with one segment of window (RFC 6298 timer, Karn's rule). When
both ends permit SACK, fast recovery resends the holes the peer's blocks
show to be lost instead (nperf.kernels.sack), and ACKs report kept segments;
and an ACK overdue by two round trips (where the timeout is still far) sends a
tail loss probe (RFC 8985 7, `_on_pto`), whose ACK starts fast recovery where
too few segments were left in flight to bring three duplicate ACKs.

When both ends send timestamps (RFC 7323; F_TS), every segment but a RST
carries one: our clock is the host's monotonic clock in milliseconds, so it
only grows across connections, workers and runs, and a peer still holding a
4-tuple in TIME-WAIT accepts our new SYN for it (RFC 6191). An arriving
segment with text or FIN stamped older than TS.Recent is dropped (PAWS),
and where Karn's rule gives no round-trip sample (after a retransmission)
the echoed timestamp gives one.

Every state change goes through `set_state`. The transitions (RFC 9293
3.3.2), with the function that makes each:

    from          on                                   to            in
    (free row)    tcp_connect                          SYN_SENT      _init
    (free row)    a SYN to a listening port            SYN_RCVD      _accept
    SYN_SENT      a SYN-ACK acknowledging our SYN      ESTABLISHED   _syn_sent
    SYN_RCVD      an ACK of our SYN-ACK                ESTABLISHED   _segment
    ESTABLISHED   our FIN sent                         FIN_WAIT_1    tcp_output
    ESTABLISHED   the peer's FIN                       CLOSE_WAIT    _fin
    CLOSE_WAIT    our FIN sent                         LAST_ACK      tcp_output
    FIN_WAIT_1    our FIN acknowledged                 FIN_WAIT_2    _segment
    FIN_WAIT_1    the peer's FIN                       CLOSING       _fin
    FIN_WAIT_2    the peer's FIN                       TIME_WAIT     _fin -> _time_wait
    CLOSING       our FIN acknowledged                 TIME_WAIT     _segment -> _time_wait
    TIME_WAIT     nothing owed (at once, or once the   CLOSED        _to_record (the 4-tuple lives
                  last ACK is sent)                                  on in kernels.time_wait)
    LAST_ACK      our FIN acknowledged                 CLOSED        release
    any           RST, retries exhausted, idle, exit   CLOSED        release (its `how`: END_*)
"""
import numpy as np

from nperf.kernels import app, frame_out, lookup, mbuf, net, reassembly, sack, time_wait
from nperf.kernels.jit import inline, kernel, step
from nperf.kernels.stack import (
    C_CONN_ABORTED, C_CONN_CLOSED, C_CONN_IDLE_CLOSED, C_CONN_OPENED, C_CONN_RESET, C_CONN_TIMED_OUT, C_DROP_BAD_TCP, C_DROP_NO_MBUF,
    C_DROP_TCP_CHECKSUM, C_TCP_BYTES_IN, C_TCP_BYTES_OUT, C_TCP_DUPACKS, C_TCP_DUPLICATE_SEGS,
    C_TCP_FAST_RETRANSMITS, C_TCP_NO_LISTENER, C_TCP_OOO_BYTES, C_TCP_OUT_OF_ORDER, C_TCP_RESETS_IN, C_TCP_RESETS_OUT,
    C_RING_OVERFLOW, C_TCP_RETRANSMITS, C_TCP_SEGS_IN, C_TCP_SEGS_OUT, C_TCP_SYN_CHALLENGED, C_TCP_SYN_EVICTED, C_TCP_SYNS_IN,
    C_TCP_RETRANSMIT_BYTES, C_TCP_SACK_RETRANSMITS, C_TCP_TABLE_FULL, C_TCP_TIME_WAIT, C_TCP_TIMEOUTS,
    C_TCP_LOSS_PROBES, C_TCP_PAWS_DROPPED, C_TCP_WINDOW_PROBES, P_DACK_US, P_DATA_RETRIES, P_IDLE_US, P_INIT_CWND,
    P_MSS, P_PORT_FIRST, P_PORT_LAST, P_RCV_WND, P_RCV_WSCALE, P_ROLE, P_RTO_INIT_US, P_RTO_MAX_US, P_RTO_MIN_US,
    P_SACK, P_SYN_RETRIES, P_TIME_WAIT_US, P_TIMESTAMPS, P_TS_BASE_MS, SERVER, V_EVICT_AT, V_WORK_HEAD, V_WORK_TAIL,
    random64)
from nperf.kernels.tcp_table import (
    CLOSED, CLOSE_WAIT, CLOSING, END_ABORT, END_CLOSED, END_IDLE, END_RESET, END_TIMEOUT, ESTABLISHED, FIN_WAIT_1,
    FIN_WAIT_2, F_ACK_DELAYED, F_ACK_NOW, F_FIN_QUEUED, F_IN_WORK, F_PERSIST, F_PROBED, F_PROBE_NEW, F_PROBE_RESENT,
    F_PROBE_TIMER, F_RECOVERY, F_RETRANSMIT, F_SACK,
    F_RTT, F_TS, LAST_ACK, N_WORDS, SYN_RCVD, SYN_SENT, TIME_WAIT, T_BACKOFF, T_BORN, T_CWND, T_DUPACKS, T_FLAGS,
    T_ADDR_SUM, T_IRS, T_ISS, T_LIP, T_LIP_HI, T_LPORT, T_MSS, T_PEER_MAC, T_RCV_NXT, T_RCV_WSCALE, T_RECOVER,
    T_RIP, T_RIP_HI, T_RPORT, T_RTO, T_RTTVAR, T_RTT_SEQ, T_RTT_START,
    T_SND_END, T_SND_MAX,
    T_SND_NXT, T_SND_UNA, T_SND_WL1, T_SND_WND, T_SND_WSCALE, T_SRTT, T_SSTHRESH, T_STATE, T_T_DACK, T_T_END,
    T_T_RTO, T_W_DUE, T_OOO_HEAD, T_OOO_LAST, T_RTX_NXT, T_SACK_N, T_TS_RECENT, T_LAST_ACK, TS_OPTION_LEN, slot_alloc,
    slot_free, tuple_keys)
from nperf.kernels.timers import timer_at, timer_cancel

M32 = 0xFFFFFFFF
DEFAULT_PEER_MSS = 536
EVICT_SCAN = 64                  # rows looked at for a half-open connection to free when the table is full
MAX_WSCALE = 14
WC_DEL_ACK_US = 200_000          # RFC 8985 7.2: a lone segment's ACK may be delayed this long (WCDelAckT)
PTO_SLACK_US = 2_000             #   and an ACK of more than one this long beyond two round trips (as Linux)



# --- small helpers -------------------------------------------------------

@inline
def work_push(s, c):
    """Put c on the output work list (once).

    Live entries are at most one per row (F_IN_WORK); a row released and
    reused before work_run reaches its old entry leaves that entry stale, so
    the ring (2 x rows + 64) holds rows plus the releases since the last
    drain. Should it ever be full, the push is counted (ring_overflow) and
    the connection waits for its next event or timer instead of being
    written over another's entry.
    """
    t = s.tcb
    if t[c, T_FLAGS] & F_IN_WORK:
        return
    tail = s.var[V_WORK_TAIL]
    if tail - s.var[V_WORK_HEAD] == s.work.shape[0]:
        s.counters[C_RING_OVERFLOW] += 1
        return
    t[c, T_FLAGS] |= F_IN_WORK
    s.work[tail % s.work.shape[0]] = c
    s.var[V_WORK_TAIL] = tail + 1


@inline
def set_state(t, c, state):
    """The one place a connection's state changes (the table in the module docstring)."""
    t[c, T_STATE] = state


@step
def _rearm(s, c):
    """Queue c on the wheel at its earliest deadline (0 = none)."""
    t = s.tcb
    if t[c, T_STATE] == CLOSED:
        return
    due = np.int64(0)
    for d in (t[c, T_T_RTO], t[c, T_T_DACK], t[c, T_T_END]):
        if d > 0 and (due == 0 or d < due):
            due = d
    if due > 0:
        timer_at(t, s.wheel, c, due)


@inline
def _rto_after_backoff(s, c):
    return min(s.tcb[c, T_RTO] << min(s.tcb[c, T_BACKOFF], 20), s.params[P_RTO_MAX_US])


@inline
def _window_field(s, c, syn):
    if syn:
        return min(s.params[P_RCV_WND], 65535)
    return min(s.params[P_RCV_WND] >> s.tcb[c, T_RCV_WSCALE], 65535)


# --- building segments ---------------------------------------------------

@inline
def emit(s, c, seq, n, flags, now):
    """Send one segment of c: sequence offset `seq`, `n` stream bytes, `flags`."""
    t = s.tcb
    m = frame_out.take_mbuf(s)
    if m < 0:
        return False
    b = mbuf.buffer_view(m)
    o = frame_out.l4_offset(t[c, T_RIP_HI])
    hl = net.TCP_LEN
    if flags & net.SYN:
        hl += _put_syn_options(s, c, b, o + net.TCP_LEN, now)
    elif not flags & net.RST:
        blocks = sack.MAX_BLOCKS
        if t[c, T_FLAGS] & F_TS:
            _put_timestamp(s, c, b, o + hl, now)
            hl += TS_OPTION_LEN
            blocks -= 1                                      # 12 + 4 + 3 x 8 fill the 40 bytes
        if t[c, T_OOO_HEAD] != 0 and t[c, T_FLAGS] & F_SACK:   # blocks only where they fit
            hl += sack.put_blocks(s, c, b, o + hl, min(blocks, (t[c, T_MSS] - n - 4) // 8))
    frame_out.put_ip(s, b, t[c, T_PEER_MAC], t[c, T_LIP_HI], t[c, T_LIP], t[c, T_RIP_HI], t[c, T_RIP],
                     net.PROTO_TCP, hl + n)
    wire_seq = (t[c, T_ISS] + seq) & M32
    wire_ack = (t[c, T_IRS] + t[c, T_RCV_NXT]) & M32 if flags & net.ACK else 0
    win = _window_field(s, c, flags & net.SYN)
    net.put16(b, o + net.TCP_SPORT, t[c, T_LPORT])
    net.put16(b, o + net.TCP_DPORT, t[c, T_RPORT])
    net.put32(b, o + net.TCP_SEQ, wire_seq)
    net.put32(b, o + net.TCP_ACK, wire_ack)
    b[o + net.TCP_DATA_OFF] = (hl // 4) << 4
    b[o + net.TCP_FLAGS] = flags
    net.put16(b, o + net.TCP_WINDOW, win)
    net.put32(b, o + net.TCP_CHECKSUM, 0)          # and the urgent pointer
    seg = hl + n
    csum = net.tcp_header_sum(t[c, T_LPORT], t[c, T_RPORT], wire_seq, wire_ack, hl, flags, win) \
        + t[c, T_ADDR_SUM] + net.PROTO_TCP + seg
    if hl > net.TCP_LEN:
        csum = net.sum16(b, o + net.TCP_LEN, hl - net.TCP_LEN, csum)
    if n > 0:
        app.app_copy(s, c, seq - 1, b, o + hl, n)
        csum = net.sum16(b, o + hl, n, csum)      # hl is even: the payload's words line up
    net.put16(b, o + net.TCP_CHECKSUM, net.fold(csum))
    frame_out.send(s, m, o + seg)
    s.counters[C_TCP_SEGS_OUT] += 1
    s.counters[C_TCP_BYTES_OUT] += n
    if seq < t[c, T_SND_MAX] and (n > 0 or flags & (net.SYN | net.FIN)):
        s.counters[C_TCP_RETRANSMITS] += 1
        s.counters[C_TCP_RETRANSMIT_BYTES] += n
    if flags & net.ACK:
        t[c, T_FLAGS] &= ~(F_ACK_NOW | F_ACK_DELAYED)
        t[c, T_T_DACK] = 0
        t[c, T_LAST_ACK] = t[c, T_RCV_NXT]
    return True


@inline
def _put_syn_options(s, c, b, p, now):
    """A SYN's options at b[p:]: MSS, NOP, window scale, then SACK permitted and timestamps, each
    when a client offers it or a server's peer did (each after two NOPs, but kind 4 takes the place
    of the NOPs before kind 8, as in a Linux SYN); their length."""
    t = s.tcb
    b[p] = net.OPT_MSS
    b[p + 1] = 4
    net.put16(b, p + 2, s.params[P_MSS])
    b[p + 4] = net.OPT_NOP
    b[p + 5] = net.OPT_WSCALE
    b[p + 6] = 3
    b[p + 7] = t[c, T_RCV_WSCALE]
    client = t[c, T_STATE] == SYN_SENT
    sack_ok = (s.params[P_SACK] != 0) if client else (t[c, T_FLAGS] & F_SACK) != 0
    ts = (s.params[P_TIMESTAMPS] != 0) if client else (t[c, T_FLAGS] & F_TS) != 0
    if ts:
        _put_timestamp(s, c, b, p + 8, now)
    if sack_ok:
        b[p + 8 + (0 if ts else 2)] = net.OPT_SACK_PERM
        b[p + 9 + (0 if ts else 2)] = 2
        if not ts:
            b[p + 8] = net.OPT_NOP
            b[p + 9] = net.OPT_NOP
    return np.int64(8 + (TS_OPTION_LEN if ts else 4 if sack_ok else 0))


@inline
def ts_clock(s, now):
    """Our timestamp clock (RFC 7323 5.4): milliseconds of the host's monotonic clock, 32 bits."""
    return (s.params[P_TS_BASE_MS] + now // 1000) & M32


@inline
def timestamp_of(b, i, end):
    """(TSval, TSecr) of the timestamps option among b[i:end]; (-1, -1) if there is none. The layout
    Linux and nperf put first in every segment (NOP, NOP, kind 8) is read at once, any other walked."""
    if end - i >= TS_OPTION_LEN and b[i] == net.OPT_NOP and b[i + 1] == net.OPT_NOP \
            and b[i + 2] == net.OPT_TIMESTAMP and b[i + 3] == 10:
        return net.get32(b, i + 4), net.get32(b, i + 8)
    while True:
        kind, i, n = net.tcp_option(b, i, end)
        if kind < 0:
            break
        if kind == net.OPT_TIMESTAMP and n == 10:
            return net.get32(b, i + 2), net.get32(b, i + 6)
        i += n
    return np.int64(-1), np.int64(-1)


@inline
def _put_timestamp(s, c, b, p, now):
    """NOP, NOP, a timestamps option at b[p:p + 12]: our clock, and TS.Recent echoed."""
    b[p] = net.OPT_NOP
    b[p + 1] = net.OPT_NOP
    b[p + 2] = net.OPT_TIMESTAMP
    b[p + 3] = 10
    net.put32(b, p + 4, ts_clock(s, now))
    net.put32(b, p + 8, s.tcb[c, T_TS_RECENT])


@kernel
def reply(s, b, src_hi, src, dst_hi, dst, sport, dport, seq, ack, flags, win):
    """A header-only segment answering frame b (from src:sport to dst:dport), with no connection row;
    False if no frame was free (counted)."""
    m = frame_out.take_mbuf(s)
    if m < 0:
        s.counters[C_DROP_NO_MBUF] += 1
        return False
    out = mbuf.buffer_view(m)
    frame_out.put_ip(s, out, net.get_mac(b, net.ETH_SRC), dst_hi, dst, src_hi, src, net.PROTO_TCP, net.TCP_LEN)
    o = frame_out.l4_offset(src_hi)
    net.put16(out, o + net.TCP_SPORT, dport)
    net.put16(out, o + net.TCP_DPORT, sport)
    net.put32(out, o + net.TCP_SEQ, seq)
    net.put32(out, o + net.TCP_ACK, ack)
    out[o + net.TCP_DATA_OFF] = (net.TCP_LEN // 4) << 4
    out[o + net.TCP_FLAGS] = flags
    net.put16(out, o + net.TCP_WINDOW, win)
    net.put32(out, o + net.TCP_CHECKSUM, 0)
    net.put16(out, o + net.TCP_CHECKSUM, net.fold(net.tcp_header_sum(dport, sport, seq, ack, net.TCP_LEN, flags, win)
                                                  + net.pseudo_sum(dst_hi, dst, src_hi, src, net.PROTO_TCP,
                                                                   net.TCP_LEN)))
    frame_out.send(s, m, o + net.TCP_LEN)
    return True


@kernel
def reply_rst(s, b, src_hi, src, dst_hi, dst, sport, dport, seq, ack, flags, plen):
    """RST for a segment that has no connection (RFC 9293 3.10.7.1)."""
    if flags & net.RST:
        return
    if flags & net.ACK:
        sent = reply(s, b, src_hi, src, dst_hi, dst, sport, dport, ack, 0, net.RST, 0)
    else:
        end = (seq + plen + (1 if flags & net.SYN else 0) + (1 if flags & net.FIN else 0)) & M32
        sent = reply(s, b, src_hi, src, dst_hi, dst, sport, dport, 0, end, net.RST | net.ACK, 0)
    if sent:
        s.counters[C_TCP_RESETS_OUT] += 1


@inline
def _send_rst(s, c):
    """Abort: RST with our next sequence number."""
    if emit(s, c, s.tcb[c, T_SND_NXT], 0, net.RST | net.ACK, 0):
        s.counters[C_TCP_RESETS_OUT] += 1


# --- opening and closing -------------------------------------------------

@inline
def _refuse(s, c, now):
    """The application cannot take c (no TLS slot): reset it."""
    _send_rst(s, c)
    release(s, c, END_RESET, now)


@step
def _init(s, c, lip_hi, lip, lport, rip_hi, rip, rport, mac, state, now):
    """A fresh row for connection c (every word 0 but these), entered in the 4-tuple hash."""
    t = s.tcb
    for k in range(N_WORDS):
        t[c, k] = 0
    set_state(t, c, state)
    t[c, T_LIP_HI] = lip_hi
    t[c, T_LIP] = lip
    t[c, T_LPORT] = lport
    t[c, T_RIP_HI] = rip_hi
    t[c, T_RIP] = rip
    t[c, T_RPORT] = rport
    t[c, T_ADDR_SUM] = net.addr_sum(lip_hi, lip, rip_hi, rip)
    t[c, T_PEER_MAC] = mac
    t[c, T_ISS] = random64(s) & M32
    t[c, T_SND_END] = 1
    t[c, T_MSS] = s.params[P_MSS]
    t[c, T_CWND] = s.params[P_INIT_CWND] * s.params[P_MSS]
    t[c, T_SSTHRESH] = 1 << 40
    t[c, T_RTO] = s.params[P_RTO_INIT_US]
    t[c, T_T_RTO] = now + s.params[P_RTO_INIT_US]
    t[c, T_W_DUE] = -1                  # not on the timer wheel
    t[c, T_BORN] = now
    k1, k2 = tuple_keys(rip, rport, lip, lport, rip_hi, lip_hi)
    lookup.insert(s, k1, k2, c)


@step
def _syn_options(s, c, b, o, doff):
    """MSS, window scale, SACK permitted and timestamps from a SYN's options (malformed options end
    the walk)."""
    t = s.tcb
    peer_mss = np.int64(DEFAULT_PEER_MSS)
    wscale = np.int64(-1)
    sack_ok = False
    ts_ok = False
    i = o + net.TCP_LEN
    while True:
        kind, i, n = net.tcp_option(b, i, o + doff)
        if kind < 0:
            break
        if kind == net.OPT_MSS and n == 4:
            peer_mss = net.get16(b, i + 2)
        elif kind == net.OPT_WSCALE and n == 3:
            wscale = min(np.int64(b[i + 2]), MAX_WSCALE)
        elif kind == net.OPT_SACK_PERM and n == 2:
            sack_ok = True
        elif kind == net.OPT_TIMESTAMP and n == 10:
            ts_ok = s.params[P_TIMESTAMPS] != 0
            t[c, T_TS_RECENT] = net.get32(b, i + 2)
        i += n
    t[c, T_MSS] = max(min(peer_mss, s.params[P_MSS]), 64)
    if ts_ok:
        t[c, T_FLAGS] |= F_TS
        t[c, T_MSS] -= TS_OPTION_LEN                         # every segment carries the option
    t[c, T_CWND] = s.params[P_INIT_CWND] * t[c, T_MSS]      # initial window in segments of the negotiated MSS
    if wscale >= 0:
        t[c, T_SND_WSCALE] = wscale
        t[c, T_RCV_WSCALE] = s.params[P_RCV_WSCALE]
    if sack_ok and s.params[P_SACK] != 0:
        t[c, T_FLAGS] |= F_SACK


@step
def tcp_connect(s, lip_hi, lip, lport, rip_hi, rip, rport, mac, now):
    """Active open: a slot in SYN_SENT and the SYN owed; -1 if the table is full or the local
    pair is held (the scheduler checks lookup.pair_free first)."""
    if not lookup.pair_free(s, tuple_keys(rip, rport, lip, lport, rip_hi, lip_hi)[1]):
        return np.int64(-1)
    c = slot_alloc(s.free)
    if c < 0:
        s.counters[C_TCP_TABLE_FULL] += 1
        return np.int64(-1)
    _init(s, c, lip_hi, lip, lport, rip_hi, rip, rport, mac, SYN_SENT, now)
    s.tcb[c, T_RCV_WSCALE] = s.params[P_RCV_WSCALE]
    _send_syn(s, c, now)
    return c


@step
def _accept(s, b, o, doff, src_hi, src, sport, dst_hi, dst, dport, seq, win, now):
    """Passive open on a SYN to a listening address and port."""
    s.counters[C_TCP_SYNS_IN] += 1
    c = slot_alloc(s.free)
    if c < 0 and _evict_half_open(s, now):
        c = slot_alloc(s.free)
    if c < 0:
        s.counters[C_TCP_TABLE_FULL] += 1
        return
    _init(s, c, dst_hi, dst, dport, src_hi, src, sport, net.get_mac(b, net.ETH_SRC), SYN_RCVD, now)
    t = s.tcb
    t[c, T_IRS] = seq
    t[c, T_RCV_NXT] = 1
    t[c, T_SND_WND] = win
    _syn_options(s, c, b, o, doff)
    _send_syn(s, c, now)


@inline
def _evict_half_open(s, now):
    """The table is full and a SYN arrived: free the oldest SYN-RECEIVED row among the EVICT_SCAN rows
    from a rotating cursor; False if there is none. A SYN flood so recycles its own rows, oldest first,
    while a legitimate handshake keeps its row until the flood has swept the whole table once (the
    syncache's answer to a full bucket); a table full of established connections still drops."""
    t = s.tcb
    n = t.shape[0]
    at = s.var[V_EVICT_AT]
    best = np.int64(-1)
    for i in range(min(EVICT_SCAN, n)):
        c = (at + i) % n
        if t[c, T_STATE] == SYN_RCVD and (best < 0 or t[c, T_BORN] < t[best, T_BORN]):
            best = c
    if best < 0:
        s.var[V_EVICT_AT] = (at + EVICT_SCAN) % n
        return False
    s.var[V_EVICT_AT] = (best + 1) % n
    s.counters[C_TCP_SYN_EVICTED] += 1
    release(s, best, END_ABORT, now)
    return True


@inline
def _send_syn(s, c, now):
    """Owe the first SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED): tcp_output sends it (`_first_syn`), in
    this turn or, when no frame is free, in a later one; never as if sent while it was not."""
    work_push(s, c)
    _rearm(s, c)


@inline
def _first_syn(s, c, now):
    """Send the owed first SYN or SYN-ACK (snd_nxt 0 until it leaves); False if no frame was free."""
    t = s.tcb
    _rtt_on_send(s, c, 0, now)
    if not emit(s, c, 0, 0, net.SYN | (net.ACK if t[c, T_STATE] == SYN_RCVD else 0), now):
        return False
    t[c, T_SND_NXT] = 1
    t[c, T_SND_MAX] = 1
    return True


@kernel
def release(s, c, how, now):
    """Forget connection c, its 4-tuple included, and return its slot (`_release`, called)."""
    _release(s, c, how, now)


@inline
def _release(s, c, how, now):
    """`release`, inlined where every connection passes (the orderly close): a kernel call passes the
    whole Stack by value, some 300 words, which cost a connection more than the release itself."""
    t = s.tcb
    if t[c, T_STATE] == CLOSED:
        return
    k1, k2 = tuple_keys(t[c, T_RIP], t[c, T_RPORT], t[c, T_LIP], t[c, T_LPORT], t[c, T_RIP_HI], t[c, T_LIP_HI])
    lookup.remove(s, k1, k2)
    _free_row(s, c, how, now)


@inline
def _free_row(s, c, how, now):
    """The application learns how c ended; its row goes back to the free stack (the hash is the caller's)."""
    t = s.tcb
    app.app_closed(s, c, how, now)
    s.counters[(C_CONN_CLOSED, C_CONN_RESET, C_CONN_TIMED_OUT, C_CONN_IDLE_CLOSED, C_CONN_ABORTED)[how]] += 1
    timer_cancel(t, s.wheel, c)
    if t[c, T_OOO_HEAD] != 0:
        reassembly.discard(s, c)
    set_state(t, c, CLOSED)
    t[c, T_FLAGS] = 0
    slot_free(s.free, c)


@inline
def _time_wait(s, c, now):
    """Enter TIME-WAIT. An ACK still owed leaves first: tcp_output sends it and then hands the
    connection over (`_to_record`); with nothing owed that happens at once."""
    t = s.tcb
    set_state(t, c, TIME_WAIT)
    t[c, T_T_RTO] = 0
    if t[c, T_FLAGS] & (F_ACK_NOW | F_ACK_DELAYED):
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
    else:
        _to_record(s, c, now)


@step
def _to_record(s, c, now):
    """The 4-tuple of c (in TIME-WAIT, nothing owed) moves to a record (nperf.kernels.time_wait) and
    its row is free at once; the connection counts as closed."""
    t = s.tcb
    k1, k2 = tuple_keys(t[c, T_RIP], t[c, T_RPORT], t[c, T_LIP], t[c, T_LPORT], t[c, T_RIP_HI], t[c, T_LIP_HI])
    time_wait.start(s, k1, k2, (t[c, T_ISS] + t[c, T_SND_NXT]) & M32, (t[c, T_IRS] + t[c, T_RCV_NXT]) & M32,
                    _window_field(s, c, 0), t[c, T_PEER_MAC], now + max(s.params[P_TIME_WAIT_US], 1))
    s.counters[C_TCP_TIME_WAIT] += 1
    _free_row(s, c, END_CLOSED, now)


@inline
def _time_wait_segment(s, i, b, src_hi, src, dst_hi, dst, sport, dport, flags, now):
    """A segment for a 4-tuple in TIME-WAIT (record i); False if it opens a new connection instead."""
    r = s.tw
    if flags & net.RST:
        s.counters[C_TCP_RESETS_IN] += 1
        time_wait.end(s, i)
        return True
    if flags & net.SYN and not flags & net.ACK:
        time_wait.end(s, i)             # the 4-tuple is reused: a new connection
        return False
    if flags & net.FIN:                 # our last ACK was lost: again, and TIME-WAIT starts over
        if reply(s, b, src_hi, src, dst_hi, dst, sport, dport, r[i, time_wait.TW_SEQ], r[i, time_wait.TW_ACK],
                 net.ACK, r[i, time_wait.TW_WIN]):
            s.counters[C_TCP_SEGS_OUT] += 1
        time_wait.restart(s, i, now + max(s.params[P_TIME_WAIT_US], 1))
    return True


@kernel
def abort_all(s, now):
    """At exit: forget every connection still in the table (END_ABORT settles each); returns how many."""
    n = 0
    for c in range(s.tcb.shape[0]):
        if s.tcb[c, T_STATE] != CLOSED:
            release(s, c, END_ABORT, now)
            n += 1
    return n


# --- input ---------------------------------------------------------------

@step
def tcp_input(s, b, o, tcp_len, src_hi, src, dst_hi, dst, l4_csum, now):
    """One TCP segment b[o:o+tcp_len] from (src_hi, src) to (dst_hi, dst), the IP header already
    checked (high words 0: IPv4); l4_csum: what the port found of its checksum (mbuf.CSUM_*: software
    sums it unless the port found it good or bad)."""
    if tcp_len < net.TCP_LEN:
        s.counters[C_DROP_BAD_TCP] += 1
        return
    doff = (np.int64(b[o + net.TCP_DATA_OFF]) >> 4) * 4
    if doff < net.TCP_LEN or doff > tcp_len:
        s.counters[C_DROP_BAD_TCP] += 1
        return
    if net.checksum_bad(l4_csum, b, o, tcp_len, net.pseudo_sum(src_hi, src, dst_hi, dst, net.PROTO_TCP, tcp_len)):
        s.counters[C_DROP_TCP_CHECKSUM] += 1
        return
    sport = net.get16(b, o + net.TCP_SPORT)
    dport = net.get16(b, o + net.TCP_DPORT)
    seq = net.get32(b, o + net.TCP_SEQ)
    ack = net.get32(b, o + net.TCP_ACK)
    flags = np.int64(b[o + net.TCP_FLAGS])
    win = net.get16(b, o + net.TCP_WINDOW)
    plen = tcp_len - doff
    s.counters[C_TCP_SEGS_IN] += 1
    s.counters[C_TCP_BYTES_IN] += plen
    k1, k2 = tuple_keys(src, sport, dst, dport, src_hi, dst_hi)
    c = lookup.find(s, k1, k2)
    if time_wait.is_record(c):
        if _time_wait_segment(s, c - time_wait.TAG, b, src_hi, src, dst_hi, dst, sport, dport, flags, now):
            return
        c = np.int64(-1)
    if c < 0:
        if flags & net.RST:
            s.counters[C_TCP_RESETS_IN] += 1
        elif (flags & (net.SYN | net.ACK | net.FIN)) == net.SYN and s.params[P_ROLE] == SERVER \
                and s.params[P_PORT_FIRST] <= dport <= s.params[P_PORT_LAST]:
            _accept(s, b, o, doff, src_hi, src, sport, dst_hi, dst, dport, seq, win, now)
        else:
            s.counters[C_TCP_NO_LISTENER] += 1
            reply_rst(s, b, src_hi, src, dst_hi, dst, sport, dport, seq, ack, flags, plen)
        return
    if s.tcb[c, T_STATE] == SYN_SENT:
        _syn_sent(s, c, b, o, doff, seq, ack, flags, win, now)
    else:
        _segment(s, c, b, o + net.TCP_LEN, o + doff, plen, seq, ack, flags, win, now)
    if not s.tcb[c, T_FLAGS] & F_IN_WORK:
        _rearm(s, c)        # else tcp_output re-arms after sending, often with the delayed ACK gone


@step
def _syn_sent(s, c, b, o, doff, seq, ack, flags, win, now):
    t = s.tcb
    if flags & net.ACK and ((ack - t[c, T_ISS]) & M32) != 1:
        if not flags & net.RST:
            s.counters[C_TCP_SYN_CHALLENGED] += 1      # the peer holds the 4-tuple's last connection
            reply_rst(s, b, t[c, T_RIP_HI], t[c, T_RIP], t[c, T_LIP_HI], t[c, T_LIP], t[c, T_RPORT], t[c, T_LPORT],
                      seq, ack, flags, 0)
        return
    if flags & net.RST:
        if flags & net.ACK:
            s.counters[C_TCP_RESETS_IN] += 1
            release(s, c, END_RESET, now)
        return
    if not (flags & net.SYN and flags & net.ACK):
        return                       # simultaneous open is not supported: wait for SYN-ACK
    t[c, T_IRS] = seq
    t[c, T_RCV_NXT] = 1
    _syn_options(s, c, b, o, doff)
    t[c, T_SND_UNA] = 1
    t[c, T_SND_NXT] = 1                  # also when a SYN resent by the timer is still owed
    t[c, T_SND_WND] = win
    t[c, T_SND_WL1] = 1
    _rtt_on_ack(s, c, 1, now)
    t[c, T_BACKOFF] = 0
    t[c, T_T_RTO] = 0
    set_state(t, c, ESTABLISHED)
    s.counters[C_CONN_OPENED] += 1
    t[c, T_FLAGS] |= F_ACK_NOW
    _idle_deadline(s, c, now)
    if not app.app_established(s, c, now):
        _refuse(s, c, now)
        return
    work_push(s, c)


@inline
def _idle_deadline(s, c, now):
    if s.params[P_IDLE_US] > 0:
        s.tcb[c, T_T_END] = now + s.params[P_IDLE_US]


# --- round-trip time (RFC 6298), Karn's rule -------------------------------
# One segment at a time is timed (F_RTT, from T_RTT_START, ending at T_RTT_SEQ).
# Karn: only a segment sent once gives a sample, so any retransmission stops
# the timing; the backed-off RTO stays until new data is acknowledged.

@inline
def _rtt_on_send(s, c, seq, now):
    """A segment starting at sequence offset seq leaves: time it if it is new and nothing is timed."""
    t = s.tcb
    if not t[c, T_FLAGS] & F_RTT and seq >= t[c, T_SND_MAX]:
        t[c, T_FLAGS] |= F_RTT
        t[c, T_RTT_SEQ] = seq
        t[c, T_RTT_START] = now


@inline
def _rtt_on_ack(s, c, ack_off, now):
    """An ACK up to ack_off: a sample if it covers the timed segment."""
    t = s.tcb
    if t[c, T_FLAGS] & F_RTT and ack_off > t[c, T_RTT_SEQ]:
        t[c, T_FLAGS] &= ~F_RTT
        _rtt_sample(s, c, max(now - t[c, T_RTT_START], 1))


@inline
def _rtt_from_echo(s, c, ts_ecr, now):
    """A sample from the timestamp an ACK echoes (RFC 7323 4.1), where Karn's rule leaves none: what
    it acknowledges was sent again. Whole milliseconds, at least one (as Linux does)."""
    _rtt_sample(s, c, max(net.seq_diff(ts_clock(s, now), ts_ecr), 1) * 1000)


@inline
def _rtt_on_retransmit(s, c):
    """Something is sent again: no sample from what is being timed (Karn)."""
    s.tcb[c, T_FLAGS] &= ~F_RTT


@inline
def _rtt_sample(s, c, r):
    """RFC 6298 estimator: a round trip of r microseconds."""
    t = s.tcb
    if t[c, T_SRTT] == 0:
        t[c, T_SRTT] = r
        t[c, T_RTTVAR] = r // 2
    else:
        t[c, T_RTTVAR] = (3 * t[c, T_RTTVAR] + abs(t[c, T_SRTT] - r)) // 4
        t[c, T_SRTT] = (7 * t[c, T_SRTT] + r) // 8
    rto = t[c, T_SRTT] + max(4 * t[c, T_RTTVAR], 1000)
    t[c, T_RTO] = min(max(rto, s.params[P_RTO_MIN_US]), s.params[P_RTO_MAX_US])


@step
def _acked(s, c, ack_off, ts_ecr, now):
    """New data acknowledged up to sequence offset ack_off (ts_ecr: the timestamp echoed, -1: none)."""
    t = s.tcb
    acked = ack_off - t[c, T_SND_UNA]
    syn = t[c, T_SND_UNA] == 0                     # the ACK of our SYN: no data, no window growth
    mss = t[c, T_MSS]
    if ts_ecr >= 0 and not t[c, T_FLAGS] & F_RTT and (t[c, T_BACKOFF] > 0 or t[c, T_FLAGS] & F_RECOVERY):
        _rtt_from_echo(s, c, ts_ecr, now)
    else:
        _rtt_on_ack(s, c, ack_off, now)
    t[c, T_SND_UNA] = ack_off
    if t[c, T_SND_NXT] < ack_off:
        t[c, T_SND_NXT] = ack_off
    if t[c, T_SACK_N] != 0:
        sack.trim(t, c, ack_off)
    if t[c, T_FLAGS] & F_RECOVERY:
        if ack_off >= t[c, T_RECOVER]:
            t[c, T_FLAGS] &= ~F_RECOVERY
            t[c, T_CWND] = t[c, T_SSTHRESH]
        elif not t[c, T_FLAGS] & F_SACK:
            t[c, T_FLAGS] |= F_RETRANSMIT          # partial ACK: the next hole
            t[c, T_CWND] = max(t[c, T_CWND] - acked + mss, mss)
        elif t[c, T_SACK_N] == 0:
            t[c, T_FLAGS] |= F_RETRANSMIT          # SACK, but no blocks to tell a loss from reordering: as NewReno
    elif syn:
        pass
    elif t[c, T_CWND] < t[c, T_SSTHRESH]:
        t[c, T_CWND] += min(acked, mss)
    else:
        t[c, T_CWND] += max(mss * mss // t[c, T_CWND], 1)
    t[c, T_FLAGS] &= ~F_PROBED                    # the silence a probe broke is over (_on_pto)
    if t[c, T_FLAGS] & F_PROBE_RESENT and ack_off >= t[c, T_SND_MAX]:
        t[c, T_FLAGS] &= ~F_PROBE_RESENT          # the probe repaired a loss, or crossed a late ACK
        if not t[c, T_FLAGS] & F_RECOVERY:
            t[c, T_CWND] = _halve(t, c, t[c, T_SND_MAX] - (ack_off - acked))
    t[c, T_DUPACKS] = 0
    t[c, T_BACKOFF] = 0
    app.app_acked(s, c, ack_off)
    if ack_off < t[c, T_SND_MAX]:
        _arm_retransmission(s, c, now)
    else:
        t[c, T_T_RTO] = 0
        t[c, T_FLAGS] &= ~F_PROBE_TIMER


@inline
def _halve(t, c, flight):
    """A loss seen: ssthresh becomes half of what was in flight, at least two segments (RFC 5681
    eq. 4); returns it for the caller's new cwnd."""
    t[c, T_SSTHRESH] = max(flight // 2, 2 * t[c, T_MSS])
    return t[c, T_SSTHRESH]


@inline
def _fin_acked(t, c):
    return (t[c, T_FLAGS] & F_FIN_QUEUED) != 0 and t[c, T_SND_UNA] > t[c, T_SND_END]


@step
def _segment(s, c, b, opts, p, plen, seq, ack, flags, win, now):
    """A segment for a synchronized connection; options at b[opts:p], payload at b[p:p+plen].

    In the order of RFC 9293 3.10.7.4 ("Other states"), its steps numbered below.
    """
    t = s.tcb
    st = t[c, T_STATE]
    ts_val, ts_ecr = np.int64(-1), np.int64(-1)
    if t[c, T_FLAGS] & F_TS and p > opts:
        ts_val, ts_ecr = timestamp_of(b, opts, p)
    stale = ts_val >= 0 and net.seq_diff(ts_val, t[c, T_TS_RECENT]) < 0
    # PAWS (RFC 7323 5.3 R1): text or a FIN stamped before the last segment is an old duplicate.
    # A pure ACK passes (it may only be reordered: Linux's tcp_disordered_ack), and so does a RST.
    if stale and (plen > 0 or flags & net.FIN) and not flags & net.RST:
        s.counters[C_TCP_PAWS_DROPPED] += 1
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
        return
    # First, the sequence number: kept as an offset; acceptability of text is _data's (in order only,
    # anything else is answered with an ACK), of RST the next step's.
    seg = t[c, T_RCV_NXT] + net.seq_diff(seq, (t[c, T_IRS] + t[c, T_RCV_NXT]) & M32)
    # Second, the RST bit (RFC 5961 3.2: exact, or a challenge ACK)
    if flags & net.RST:
        if seg == t[c, T_RCV_NXT] or st == SYN_RCVD:
            s.counters[C_TCP_RESETS_IN] += 1
            release(s, c, END_RESET, now)
        elif t[c, T_RCV_NXT] < seg < t[c, T_RCV_NXT] + s.params[P_RCV_WND]:
            t[c, T_FLAGS] |= F_ACK_NOW             # in the window, not exact: challenge ACK (RFC 9293 3.10.7.4)
            work_push(s, c)
        return
    if st == TIME_WAIT:                  # its ACK is about to leave (tcp_output), then the row goes
        return
    if ts_val >= 0 and not stale and seg <= t[c, T_LAST_ACK]:
        t[c, T_TS_RECENT] = ts_val       # RFC 7323 4.3: the segment our last ACK asked for echoes next
    # Third, security and precedence: none. Fourth, the SYN bit (RFC 5961 4.2: a challenge ACK)
    if flags & net.SYN:
        if st == SYN_RCVD and seg == 0:
            _rtt_on_retransmit(s, c)
            emit(s, c, 0, 0, net.SYN | net.ACK, now)   # our SYN-ACK was lost
        else:
            t[c, T_FLAGS] |= F_ACK_NOW                      # challenge ACK (RFC 5961)
            work_push(s, c)
        return
    # Fifth, the ACK field: SYN-RECEIVED completes the handshake, then snd_una, the window, our FIN
    if not flags & net.ACK:
        return
    ack_off = t[c, T_SND_UNA] + net.seq_diff(ack, (t[c, T_ISS] + t[c, T_SND_UNA]) & M32)
    if st == SYN_RCVD:
        if ack_off < 1 or ack_off > t[c, T_SND_MAX]:
            reply_rst(s, b, t[c, T_RIP_HI], t[c, T_RIP], t[c, T_LIP_HI], t[c, T_LIP], t[c, T_RPORT], t[c, T_LPORT],
                      seq, ack, flags, plen)
            return
        set_state(t, c, ESTABLISHED)
        st = ESTABLISHED
        s.counters[C_CONN_OPENED] += 1
        t[c, T_SND_WL1] = seg
        if not app.app_established(s, c, now):
            _refuse(s, c, now)
            return
    if ack_off > t[c, T_SND_MAX]:
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
        return
    if p > opts and t[c, T_FLAGS] & F_SACK:
        sack.take_blocks(s, c, b, opts, p, ack_off)
    wnd = win << t[c, T_SND_WSCALE]
    if ack_off > t[c, T_SND_UNA]:
        _acked(s, c, ack_off, ts_ecr, now)
        work_push(s, c)
    elif ack_off == t[c, T_SND_UNA] and plen == 0 and not flags & net.FIN and t[c, T_SND_MAX] > t[c, T_SND_UNA] \
            and wnd == t[c, T_SND_WND]:
        _dupack(s, c)
    if ack_off >= t[c, T_SND_UNA] and seg >= t[c, T_SND_WL1]:
        if wnd > t[c, T_SND_WND]:
            work_push(s, c)
        t[c, T_SND_WND] = wnd
        t[c, T_SND_WL1] = seg
        if wnd > 0 and t[c, T_FLAGS] & F_PERSIST:   # the window opened: stop probing, forget its backoff
            t[c, T_FLAGS] &= ~F_PERSIST
            t[c, T_T_RTO] = 0
            t[c, T_BACKOFF] = 0
    if _fin_acked(t, c):
        if st == FIN_WAIT_1:
            st = FIN_WAIT_2
            set_state(t, c, FIN_WAIT_2)
        elif st == CLOSING:
            _time_wait(s, c, now)
            return
        elif st == LAST_ACK:
            _release(s, c, END_CLOSED, now)
            return
    # Sixth, the URG bit: ignored. Seventh, the segment text
    kept_fin = False
    if plen > 0:
        kept_fin = _data(s, c, b, p, plen, seg, st, (flags & net.FIN) != 0, now)
    # Eighth, the FIN bit, once every byte before it has been taken (its own, or a kept segment's)
    if (flags & net.FIN and seg + plen == t[c, T_RCV_NXT]) or kept_fin:
        _fin(s, c, st, now)
    if t[c, T_STATE] != CLOSED and t[c, T_STATE] != TIME_WAIT:
        _idle_deadline(s, c, now)


@step
def _dupack(s, c):
    """A duplicate ACK. The first two let a segment of new data out each (limited transmit, RFC 3042:
    tcp_output's window allows it); the third starts fast recovery (or a later one, once D-SACKs
    raised DupThresh: nperf.kernels.sack), and so does the first after a loss probe (_on_pto).
    (RFC 6675 would also count an
    ACK that SACKs new data with a new window, and start on a segment the blocks show lost before
    the third: with the lb's 10 % reordering and 1 +- 0.5 ms jitter, both made recovery start on
    reordered segments, and the server resent 11-25 % more bytes than without SACK.)"""
    t = s.tcb
    s.counters[C_TCP_DUPACKS] += 1
    t[c, T_DUPACKS] += 1
    thresh = sack.dupthresh(t, c, t[c, T_MSS])
    if (t[c, T_DUPACKS] >= thresh or t[c, T_FLAGS] & F_PROBED) and not t[c, T_FLAGS] & F_RECOVERY:
        t[c, T_FLAGS] &= ~(F_PROBED | F_PROBE_RESENT)          # (a probe's: _on_pto)
        ssthresh = _halve(t, c, t[c, T_SND_MAX] - t[c, T_SND_UNA])
        t[c, T_CWND] = ssthresh + (0 if t[c, T_FLAGS] & F_SACK else 3 * t[c, T_MSS])
        t[c, T_RECOVER] = t[c, T_SND_MAX]
        t[c, T_RTX_NXT] = t[c, T_SND_UNA]
        t[c, T_FLAGS] |= F_RECOVERY | F_RETRANSMIT
        _rtt_on_retransmit(s, c)
        s.counters[C_TCP_FAST_RETRANSMITS] += 1
        work_push(s, c)
    elif t[c, T_FLAGS] & F_RECOVERY:
        if not t[c, T_FLAGS] & F_SACK:             # NewReno: each duplicate ACK is a segment gone
            t[c, T_CWND] += t[c, T_MSS]
        work_push(s, c)
    elif t[c, T_DUPACKS] < 3:
        work_push(s, c)                            # limited transmit


@step
def _data(s, c, b, p, plen, seg, st, fin, now):
    """Segment text b[p:p+plen] at stream offset seg: in order to the application, then whatever kept
    segments (nperf.kernels.reassembly) it makes contiguous, beyond rcv_nxt kept; True if a kept
    segment's FIN is now next."""
    t = s.tcb
    if st != ESTABLISHED and st != FIN_WAIT_1 and st != FIN_WAIT_2:
        t[c, T_FLAGS] |= F_ACK_NOW          # data after the peer's FIN: just acknowledge
        work_push(s, c)
        return False
    rcv = t[c, T_RCV_NXT]
    if seg > rcv:
        s.counters[C_TCP_OUT_OF_ORDER] += 1
        reassembly.keep(s, c, b, p, plen, seg, fin)
        t[c, T_OOO_LAST] = seg
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
        return False
    skip = rcv - seg
    if skip >= plen:
        s.counters[C_TCP_DUPLICATE_SEGS] += 1
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
        return False
    buf, off, want = b, p + skip, plen - skip
    k, kept_fin = np.int64(-1), False
    filling = t[c, T_OOO_HEAD] != 0      # in order while segments are kept: (part of) a hole is filled
    while True:                          # one application input serves the segment and the kept ones
        took = app.app_input(s, c, buf, off, want, now) if want > 0 else np.int64(0)
        rcv += took
        if k >= 0:
            s.counters[C_TCP_OOO_BYTES] += took
        if took < want:
            break
        if k >= 0:
            reassembly.release_slot(s, c, k)
            if kept_fin:
                break
        if t[c, T_OOO_HEAD] == 0:
            break
        k, off, want, kept_fin = reassembly.next_ready(s, c, rcv)
        if k < 0:
            break
        buf = reassembly.slot_view(s, k)
    t[c, T_RCV_NXT] = rcv
    if took < want or filling or t[c, T_FLAGS] & F_ACK_DELAYED:
        t[c, T_FLAGS] |= F_ACK_NOW       # RFC 5681 4.2: at once when a hole is filled, or one remains
    else:
        t[c, T_FLAGS] |= F_ACK_DELAYED
        t[c, T_T_DACK] = now + s.params[P_DACK_US]
    work_push(s, c)
    return kept_fin and took == want


@step
def _fin(s, c, st, now):
    t = s.tcb
    t[c, T_RCV_NXT] += 1
    t[c, T_FLAGS] |= F_ACK_NOW
    work_push(s, c)
    if st == ESTABLISHED:
        set_state(t, c, CLOSE_WAIT)
        app.app_peer_closed(s, c, now)
    elif st == FIN_WAIT_1:
        set_state(t, c, CLOSING)
    elif st == FIN_WAIT_2:
        _time_wait(s, c, now)


# --- output --------------------------------------------------------------

@inline
def tcp_output(s, c, now):
    """Send what c may send now; False if frames ran out (c stays on the list)."""
    t = s.tcb
    st = t[c, T_STATE]
    if st == SYN_SENT or st == SYN_RCVD:
        if t[c, T_SND_NXT] == 0 and not _first_syn(s, c, now):
            return False
        _rearm(s, c)
        return True
    if st == CLOSED:
        return True
    if st == TIME_WAIT:                  # the ACK of the peer's FIN, then the row is given up
        if not emit(s, c, t[c, T_SND_NXT], 0, net.ACK, now):
            return False
        _to_record(s, c, now)
        return True
    app.app_output(s, c, now)
    if t[c, T_FLAGS] & F_RETRANSMIT:
        una = t[c, T_SND_UNA]
        if not t[c, T_FLAGS] & F_SACK or t[c, T_RTX_NXT] <= una:     # with SACK, unless resent already
            n = min(t[c, T_MSS], t[c, T_SND_END] - una, t[c, T_SND_MAX] - una)   # resend only what was sent
            fin = una + n == t[c, T_SND_END] and t[c, T_SND_MAX] > t[c, T_SND_END]
            if n > 0 or fin:
                if not emit(s, c, una, n, net.ACK | (net.FIN if fin else 0), now):
                    return False
                t[c, T_RTX_NXT] = una + n + (1 if fin else 0)
        t[c, T_FLAGS] &= ~F_RETRANSMIT
    room = t[c, T_CWND]                  # what snd_nxt - snd_una may reach
    least = np.int64(1)
    armed = False
    if not t[c, T_FLAGS] & F_RECOVERY:   # limited transmit (RFC 3042): a segment more per duplicate ACK
        room += min(t[c, T_DUPACKS], 2) * t[c, T_MSS]
    elif t[c, T_FLAGS] & F_SACK:
        if not _resend_holes(s, c, now):
            return False
        room -= sack.pipe(t, c, t[c, T_MSS]) - (t[c, T_SND_NXT] - t[c, T_SND_UNA])   # pipe, not flight
        least = t[c, T_MSS]              #   and a whole segment's room, never less (RFC 6675 5)
    if t[c, T_FLAGS] & F_PROBE_NEW:      # a loss probe of new data (_on_pto): a segment past cwnd
        t[c, T_FLAGS] &= ~F_PROBE_NEW
        room = max(room, t[c, T_SND_NXT] - t[c, T_SND_UNA] + t[c, T_MSS])
    while True:
        nxt = t[c, T_SND_NXT]
        sacked_from = np.int64(1 << 62)
        if nxt < t[c, T_SND_MAX] and t[c, T_SACK_N] > 0:     # sending again (a timeout): not what is SACKed
            nxt, sacked_from = sack.unsacked(t, c, nxt)
        end = t[c, T_SND_END]
        usable = min(t[c, T_SND_WND], room) - (nxt - t[c, T_SND_UNA])
        if usable < least:
            usable = min(usable, 0)
        n = min(end - nxt, t[c, T_MSS], max(usable, 0), sacked_from - nxt)
        fin = (t[c, T_FLAGS] & F_FIN_QUEUED) != 0 and nxt + n == end and (n > 0 or usable >= 0) and nxt <= end
        if n <= 0 and not fin:
            break
        if not emit(s, c, nxt, n, net.ACK | (net.PSH if n > 0 else 0) | (net.FIN if fin else 0), now):
            return False
        _rtt_on_send(s, c, nxt, now)
        nxt += n + (1 if fin else 0)
        t[c, T_SND_NXT] = nxt
        if nxt > t[c, T_SND_MAX]:
            t[c, T_SND_MAX] = nxt
        if t[c, T_T_RTO] == 0:
            t[c, T_T_RTO] = now + t[c, T_RTO]
            armed = True
        if fin:
            if st == ESTABLISHED:
                set_state(t, c, FIN_WAIT_1)
            elif st == CLOSE_WAIT:
                set_state(t, c, LAST_ACK)
            break
    if armed:                            # now the probe timeout, which depends on what is in flight
        _arm_retransmission(s, c, now)
    if t[c, T_FLAGS] & F_ACK_NOW:
        if not emit(s, c, t[c, T_SND_NXT], 0, net.ACK, now):
            return False
    if t[c, T_SND_WND] == 0 and t[c, T_SND_NXT] < t[c, T_SND_END] and t[c, T_SND_MAX] == t[c, T_SND_UNA] \
            and t[c, T_T_RTO] == 0:
        t[c, T_FLAGS] |= F_PERSIST
        t[c, T_T_RTO] = now + t[c, T_RTO]
    _rearm(s, c)
    return True


@inline
def _resend_holes(s, c, now):
    """SACK recovery (nperf.kernels.sack): send the lost holes again, in order from rtx_nxt, while
    the congestion window has a segment's room beyond pipe; False if frames ran out."""
    t = s.tcb
    while sack.pipe(t, c, t[c, T_MSS]) + t[c, T_MSS] <= t[c, T_CWND]:
        start, n = sack.next_hole(t, c, max(t[c, T_RTX_NXT], t[c, T_SND_UNA]), t[c, T_MSS])
        if n <= 0:
            break
        n = min(n, t[c, T_MSS], t[c, T_SND_END] - start)
        fin = start + n == t[c, T_SND_END] and t[c, T_SND_MAX] > t[c, T_SND_END]
        if n <= 0 and not fin:
            break
        if not emit(s, c, start, n, net.ACK | (net.FIN if fin else 0), now):
            return False
        s.counters[C_TCP_SACK_RETRANSMITS] += 1
        t[c, T_RTX_NXT] = start + n + (1 if fin else 0)
    return True


@inline
def work_run(s, now):
    """Output for every connection on the work list; False if frames ran out."""
    while s.var[V_WORK_HEAD] < s.var[V_WORK_TAIL]:
        c = s.work[s.var[V_WORK_HEAD] % s.work.shape[0]]
        if s.tcb[c, T_FLAGS] & F_IN_WORK:
            if not tcp_output(s, c, now):
                return False
            s.tcb[c, T_FLAGS] &= ~F_IN_WORK
        s.var[V_WORK_HEAD] += 1
    return True


# --- timers --------------------------------------------------------------

@kernel
def tcp_timer(s, c, now):
    """Connection c's tick came round: run whatever deadline has passed."""
    t = s.tcb
    if t[c, T_STATE] == CLOSED:
        return
    if t[c, T_T_END] and now >= t[c, T_T_END]:
        if app.app_idle(s, c):
            _send_rst(s, c)
            release(s, c, END_IDLE, now)
            return
        _idle_deadline(s, c, now)
    if t[c, T_T_RTO] and now >= t[c, T_T_RTO]:
        t[c, T_T_RTO] = 0
        if t[c, T_FLAGS] & F_PROBE_TIMER:
            t[c, T_FLAGS] &= ~F_PROBE_TIMER
            _on_pto(s, c, now)
        elif not _on_rto(s, c, now):
            return
    if t[c, T_T_DACK] and now >= t[c, T_T_DACK]:
        t[c, T_T_DACK] = 0
        t[c, T_FLAGS] |= F_ACK_NOW
        work_push(s, c)
    _rearm(s, c)


@inline
def _arm_retransmission(s, c, now):
    """Data is in flight: the retransmission timer from now, or a probe timeout (_on_pto) where one
    is sooner and may go (RFC 8985 7.2): SACK on, not recovering or backing off, a round trip
    measured. Only an ACK of new data arms a probe again, so one goes per silence."""
    t = s.tcb
    t[c, T_FLAGS] &= ~F_PROBE_TIMER
    t[c, T_T_RTO] = now + t[c, T_RTO]
    if (t[c, T_FLAGS] & (F_SACK | F_RECOVERY)) != F_SACK or t[c, T_BACKOFF] != 0 or t[c, T_SRTT] == 0:
        return
    lone = t[c, T_SND_MAX] - t[c, T_SND_UNA] <= t[c, T_MSS]
    pto = 2 * t[c, T_SRTT] + (WC_DEL_ACK_US if lone else PTO_SLACK_US)
    if pto < t[c, T_RTO]:
        t[c, T_T_RTO] = now + pto
        t[c, T_FLAGS] |= F_PROBE_TIMER


@inline
def _on_pto(s, c, now):
    """Probe timeout: no ACK for two round trips with data in flight. One segment goes out to make
    the peer answer with its SACK blocks (its duplicate ACK lets limited transmit and then fast
    recovery go on, where the timeout would have waited and gone back to one segment): new data if
    the peer's window takes it (tcp_output sends it past cwnd), else the last segment sent, again.
    After two round trips of silence, a duplicate ACK for the probe shows what was sent before it
    lost (RACK's conclusion, RFC 8985 6.2, without its per-segment times): it starts fast recovery
    at once (_dupack). An ACK of all of a resend instead means it repaired the loss or crossed a
    late ACK, which only D-SACK would tell apart: taken as a loss, the window halves (_acked). The
    retransmission timer runs on from now; a probe that finds recovery begun sends nothing."""
    t = s.tcb
    t[c, T_T_RTO] = now + t[c, T_RTO]
    if t[c, T_FLAGS] & F_RECOVERY:
        return
    s.counters[C_TCP_LOSS_PROBES] += 1
    una, nxt, end, mss = t[c, T_SND_UNA], t[c, T_SND_NXT], t[c, T_SND_END], t[c, T_MSS]
    if nxt == t[c, T_SND_MAX] and nxt < end and nxt + min(mss, end - nxt) - una <= t[c, T_SND_WND]:
        t[c, T_FLAGS] |= F_PROBE_NEW | F_PROBED
        work_push(s, c)
        return
    hi = min(t[c, T_SND_MAX], end)                 # the last segment's data (and its FIN, if sent)
    start = max(hi - mss, una)
    fin = t[c, T_SND_MAX] > end
    _rtt_on_retransmit(s, c)
    if emit(s, c, start, hi - start, net.ACK | (net.FIN if fin else 0), now):
        t[c, T_FLAGS] |= F_PROBED | F_PROBE_RESENT


@inline
def _on_rto(s, c, now):
    """Retransmission (or persist) timeout; False if the connection was dropped."""
    t = s.tcb
    st = t[c, T_STATE]
    t[c, T_BACKOFF] += 1
    _rtt_on_retransmit(s, c)
    if st == SYN_SENT or st == SYN_RCVD:
        if t[c, T_BACKOFF] > s.params[P_SYN_RETRIES]:
            s.counters[C_TCP_TIMEOUTS] += 1
            release(s, c, END_TIMEOUT, now)
            return False
        t[c, T_SND_NXT] = 0                      # tcp_output sends the SYN (or SYN-ACK) again
        work_push(s, c)
    elif t[c, T_SND_WND] == 0 and t[c, T_SND_UNA] == t[c, T_SND_MAX]:
        s.counters[C_TCP_WINDOW_PROBES] += 1    # zero window: probe, never give up
        t[c, T_BACKOFF] = min(t[c, T_BACKOFF], 10)
        emit(s, c, t[c, T_SND_UNA] - 1, 0, net.ACK, now)
    elif t[c, T_SND_MAX] > t[c, T_SND_UNA]:
        if t[c, T_BACKOFF] > s.params[P_DATA_RETRIES]:
            s.counters[C_TCP_TIMEOUTS] += 1
            _send_rst(s, c)
            release(s, c, END_TIMEOUT, now)
            return False
        s.counters[C_TCP_TIMEOUTS] += 1
        _halve(t, c, t[c, T_SND_MAX] - t[c, T_SND_UNA])
        t[c, T_CWND] = t[c, T_MSS]
        t[c, T_FLAGS] &= ~(F_RECOVERY | F_PROBED | F_PROBE_RESENT)
        t[c, T_DUPACKS] = 0
        t[c, T_SND_NXT] = t[c, T_SND_UNA]
        sack.clear(t, c)                          # RFC 2018 8: what the peer holds may be gone
        work_push(s, c)
    else:
        t[c, T_BACKOFF] = 0
        return True
    t[c, T_T_RTO] = now + _rto_after_backoff(s, c)
    return True
