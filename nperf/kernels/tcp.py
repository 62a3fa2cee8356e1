"""TCP (RFC 9293) over the connection table: input, output, timers.

Receive side: segments are handed to the application *in order, straight
from the mbuf*; nothing is buffered, so an out-of-order segment is dropped
and answered with a duplicate ACK, and bytes the application could not take
are not acknowledged (the peer sends them again). Send side: nothing is
buffered either; the application regenerates any byte range of its stream
(`app.app_copy`), so a retransmission is just "build that range again".

Congestion control is NewReno (RFC 6582): slow start and congestion
avoidance by bytes acknowledged, fast retransmit on three duplicate ACKs,
partial ACKs retransmit the next hole, and a retransmission timeout goes back
to snd_una with one segment of window (RFC 6298 timer, Karn's rule).
"""
import numpy as np

from nperf.kernels import app, frame_out, mbuf, net
from nperf.kernels.arp import owns
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import (
    C_CONN_CLOSED, C_CONN_IDLE_CLOSED, C_CONN_OPENED, C_CONN_RESET, C_CONN_TIMED_OUT, C_DROP_BAD_TCP, C_DROP_NO_MBUF,
    C_DROP_TCP_CHECKSUM, C_TCP_BYTES_IN, C_TCP_BYTES_OUT, C_TCP_DUPACKS, C_TCP_DUPLICATE_SEGS,
    C_TCP_FAST_RETRANSMITS, C_TCP_NO_LISTENER, C_TCP_OUT_OF_ORDER, C_TCP_RESETS_IN, C_TCP_RESETS_OUT,
    C_TCP_RETRANSMITS, C_TCP_SEGS_IN, C_TCP_SEGS_OUT, C_TCP_SYNS_IN, C_TCP_TABLE_FULL, C_TCP_TIMEOUTS,
    C_TCP_WINDOW_PROBES, P_DACK_US, P_DATA_RETRIES, P_IDLE_US, P_INIT_CWND, P_MSS, P_PORT_FIRST,
    P_PORT_LAST, P_RCV_WND, P_RCV_WSCALE, P_ROLE, P_RTO_INIT_US, P_RTO_MAX_US, P_RTO_MIN_US,
    P_SYN_RETRIES, P_TIME_WAIT_US, SERVER, V_RNG, V_WORK_HEAD, V_WORK_TAIL)
from nperf.kernels.tcp_table import (
    APPQ, CLOSE_WAIT, CLOSED, CLOSING, END_CLOSED, END_IDLE, END_RESET, END_TIMEOUT, ESTABLISHED, F_ACK_DELAYED, F_ACK_NOW, F_FIN_QUEUED, F_IN_WORK,
    F_PERSIST, F_RECOVERY, F_RETRANSMIT, F_RTT, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK, SYN_RCVD, SYN_SENT,
    TIME_WAIT, hash_find, hash_insert, hash_remove, slot_alloc, slot_free, tuple_keys)
from nperf.kernels.timers import timer_at, timer_cancel

M32 = 0xFFFFFFFF
SYN_OPTIONS = 8                  # MSS (4) + NOP + window scale (3)
DEFAULT_PEER_MSS = 536
MAX_WSCALE = 14



# --- small helpers -------------------------------------------------------

@inline
def _random32(s):
    """xorshift64: initial sequence numbers need not be cryptographic here."""
    x = s.var[V_RNG]
    x ^= (x << 13)
    x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
    x ^= (x << 17)
    s.var[V_RNG] = x
    return x & M32


@inline
def work_push(s, c):
    """Put c on the output work list (once)."""
    t = s.tcb
    if t.flags[c] & F_IN_WORK:
        return
    t.flags[c] |= F_IN_WORK
    tail = s.var[V_WORK_TAIL]
    s.work[tail % s.work.shape[0]] = c
    s.var[V_WORK_TAIL] = tail + 1


@inline
def _rearm(s, c):
    """Queue c on the wheel at its earliest deadline (0 = none)."""
    t = s.tcb
    if t.state[c] == CLOSED:
        return
    due = np.int64(0)
    for d in (t.t_rto[c], t.t_dack[c], t.t_end[c]):
        if d > 0 and (due == 0 or d < due):
            due = d
    if due > 0:
        timer_at(t, s.wheel, c, due)


@inline
def _rto_after_backoff(s, c):
    return min(s.tcb.rto[c] << min(s.tcb.backoff[c], 20), s.params[P_RTO_MAX_US])


@inline
def _window_field(s, c, syn):
    if syn:
        return min(s.params[P_RCV_WND], 65535)
    return min(s.params[P_RCV_WND] >> s.tcb.rcv_wscale[c], 65535)


# --- building segments ---------------------------------------------------

@kernel
def emit(s, c, seq, n, flags, now):
    """Send one segment of c: sequence offset `seq`, `n` stream bytes, `flags`."""
    t = s.tcb
    m = frame_out.take_mbuf(s)
    if m < 0:
        return False
    b = mbuf.buffer_view(m)
    hl = net.TCP_LEN + (SYN_OPTIONS if flags & net.SYN else 0)
    frame_out.put_eth(s, b, t.peer_mac[c], net.ETH_IPV4)
    frame_out.put_ipv4(s, b, t.lip[c], t.rip[c], net.PROTO_TCP, hl + n)
    o = net.ETH_LEN + net.IP_LEN
    net.put16(b, o, t.lport[c])
    net.put16(b, o + 2, t.rport[c])
    net.put32(b, o + 4, (t.iss[c] + seq) & M32)
    net.put32(b, o + 8, (t.irs[c] + t.rcv_nxt[c]) & M32 if flags & net.ACK else 0)
    b[o + 12] = (hl // 4) << 4
    b[o + 13] = flags
    net.put16(b, o + 14, _window_field(s, c, flags & net.SYN))
    net.put32(b, o + 16, 0)
    if flags & net.SYN:
        b[o + 20] = 2
        b[o + 21] = 4
        net.put16(b, o + 22, s.params[P_MSS])
        b[o + 24] = 1
        b[o + 25] = 3
        b[o + 26] = 3
        b[o + 27] = t.rcv_wscale[c]
    if n > 0:
        app.app_copy(s, c, seq - 1, b, o + hl, n)
    seg = hl + n
    net.put16(b, o + 16, net.fold(net.sum16(b, o, seg, net.pseudo_sum(t.lip[c], t.rip[c], net.PROTO_TCP, seg))))
    frame_out.send(s, m, o + seg)
    s.counters[C_TCP_SEGS_OUT] += 1
    s.counters[C_TCP_BYTES_OUT] += n
    if seq < t.snd_max[c] and (n > 0 or flags & (net.SYN | net.FIN)):
        s.counters[C_TCP_RETRANSMITS] += 1
    if flags & net.ACK:
        t.flags[c] &= ~(F_ACK_NOW | F_ACK_DELAYED)
        t.t_dack[c] = 0
    return True


@kernel
def reply_rst(s, b, src, dst, sport, dport, seq, ack, flags, plen):
    """RST for a segment that has no connection (RFC 9293 3.10.7.1)."""
    if flags & net.RST:
        return
    m = frame_out.take_mbuf(s)
    if m < 0:
        s.counters[C_DROP_NO_MBUF] += 1
        return
    out = mbuf.buffer_view(m)
    frame_out.put_eth(s, out, net.get_mac(b, 6), net.ETH_IPV4)
    frame_out.put_ipv4(s, out, dst, src, net.PROTO_TCP, net.TCP_LEN)
    o = net.ETH_LEN + net.IP_LEN
    net.put16(out, o, dport)
    net.put16(out, o + 2, sport)
    if flags & net.ACK:
        net.put32(out, o + 4, ack)
        net.put32(out, o + 8, 0)
        out[o + 13] = net.RST
    else:
        net.put32(out, o + 4, 0)
        net.put32(out, o + 8, (seq + plen + (1 if flags & net.SYN else 0) + (1 if flags & net.FIN else 0)) & M32)
        out[o + 13] = net.RST | net.ACK
    out[o + 12] = 5 << 4
    net.put16(out, o + 14, 0)
    net.put32(out, o + 16, 0)
    net.put16(out, o + 16, net.fold(net.sum16(out, o, net.TCP_LEN, net.pseudo_sum(dst, src, net.PROTO_TCP, net.TCP_LEN))))
    frame_out.send(s, m, o + net.TCP_LEN)
    s.counters[C_TCP_RESETS_OUT] += 1


@inline
def _send_rst(s, c):
    """Abort: RST with our next sequence number."""
    if emit(s, c, s.tcb.snd_nxt[c], 0, net.RST | net.ACK, 0):
        s.counters[C_TCP_RESETS_OUT] += 1


# --- opening and closing -------------------------------------------------

@inline
def _init(s, c, lip, lport, rip, rport, mac, state, now):
    t = s.tcb
    t.state[c] = state
    t.flags[c] = 0
    t.lip[c] = lip
    t.lport[c] = lport
    t.rip[c] = rip
    t.rport[c] = rport
    t.peer_mac[c] = mac
    t.iss[c] = _random32(s)
    t.irs[c] = 0
    t.snd_una[c] = 0
    t.snd_nxt[c] = 0
    t.snd_max[c] = 0
    t.snd_end[c] = 1
    t.snd_wnd[c] = 0
    t.snd_wscale[c] = 0
    t.rcv_wscale[c] = 0
    t.mss[c] = s.params[P_MSS]
    t.cwnd[c] = s.params[P_INIT_CWND] * s.params[P_MSS]
    t.ssthresh[c] = 1 << 40
    t.dupacks[c] = 0
    t.recover[c] = 0
    t.rcv_nxt[c] = 0
    t.srtt[c] = 0
    t.rttvar[c] = 0
    t.rto[c] = s.params[P_RTO_INIT_US]
    t.rtt_seq[c] = 0
    t.rtt_start[c] = now
    t.backoff[c] = 0
    t.t_rto[c] = now + t.rto[c]
    t.t_dack[c] = 0
    t.t_end[c] = 0
    t.w_due[c] = -1
    t.q_head[c] = 0
    t.q_tail[c] = 0
    t.app_done[c] = 0
    t.born[c] = now
    for k in range(t.app.shape[1]):
        t.app[c, k] = 0
    k1, k2 = tuple_keys(rip, rport, lip, lport)
    hash_insert(s.hash, k1, k2, c)


@inline
def _syn_options(s, c, b, o, doff):
    """MSS and window scale from a SYN's options (malformed options end the walk)."""
    t = s.tcb
    peer_mss = np.int64(DEFAULT_PEER_MSS)
    wscale = np.int64(-1)
    i = o + net.TCP_LEN
    end = o + doff
    while i < end:
        kind = b[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or b[i + 1] < 2 or i + b[i + 1] > end:
            break
        if kind == 2 and b[i + 1] == 4:
            peer_mss = net.get16(b, i + 2)
        elif kind == 3 and b[i + 1] == 3:
            wscale = min(np.int64(b[i + 2]), MAX_WSCALE)
        i += b[i + 1]
    t.mss[c] = max(min(peer_mss, s.params[P_MSS]), 64)
    t.cwnd[c] = s.params[P_INIT_CWND] * t.mss[c]      # initial window in segments of the negotiated MSS
    if wscale >= 0:
        t.snd_wscale[c] = wscale
        t.rcv_wscale[c] = s.params[P_RCV_WSCALE]


@kernel
def tcp_connect(s, lip, lport, rip, rport, mac, now):
    """Active open: a slot in SYN_SENT and the SYN sent; -1 if the table is full."""
    c = slot_alloc(s.free)
    if c < 0:
        s.counters[C_TCP_TABLE_FULL] += 1
        return np.int64(-1)
    _init(s, c, lip, lport, rip, rport, mac, SYN_SENT, now)
    s.tcb.rcv_wscale[c] = s.params[P_RCV_WSCALE]
    _send_syn(s, c, net.SYN, now)
    return c


@inline
def _accept(s, b, o, doff, src, sport, dst, dport, seq, win, now):
    """Passive open on a SYN to a listening address and port."""
    s.counters[C_TCP_SYNS_IN] += 1
    c = slot_alloc(s.free)
    if c < 0:
        s.counters[C_TCP_TABLE_FULL] += 1
        return
    _init(s, c, dst, dport, src, sport, net.get_mac(b, 6), SYN_RCVD, now)
    t = s.tcb
    t.irs[c] = seq
    t.rcv_nxt[c] = 1
    t.snd_wnd[c] = win
    _syn_options(s, c, b, o, doff)
    _send_syn(s, c, net.SYN | net.ACK, now)


@inline
def _send_syn(s, c, flags, now):
    """The first SYN (or SYN-ACK): sequence offset 0, timed for the first RTT sample."""
    t = s.tcb
    t.flags[c] |= F_RTT
    emit(s, c, 0, 0, flags, now)
    t.snd_nxt[c] = 1
    t.snd_max[c] = 1
    _rearm(s, c)


@kernel
def release(s, c, how, now):
    """Forget connection c and return its slot."""
    t = s.tcb
    if t.state[c] == CLOSED:
        return
    app.app_closed(s, c, how, now)
    s.counters[(C_CONN_CLOSED, C_CONN_RESET, C_CONN_TIMED_OUT, C_CONN_IDLE_CLOSED)[how]] += 1
    k1, k2 = tuple_keys(t.rip[c], t.rport[c], t.lip[c], t.lport[c])
    hash_remove(s.hash, k1, k2)
    timer_cancel(t, s.wheel, c)
    t.state[c] = CLOSED
    t.flags[c] = 0
    slot_free(s.free, c)


@inline
def _time_wait(s, c, now):
    t = s.tcb
    t.state[c] = TIME_WAIT
    t.t_rto[c] = 0
    t.t_end[c] = now + max(s.params[P_TIME_WAIT_US], 1)


@kernel
def tcp_shutdown(s, c):
    """The application has queued its last message: send FIN after it."""
    s.tcb.flags[c] |= F_FIN_QUEUED
    work_push(s, c)


# --- input ---------------------------------------------------------------

@kernel
def tcp_input(s, b, n, ihl, ip_len, now):
    """One TCP segment in frame b (IPv4 header already checked)."""
    o = net.ETH_LEN + ihl
    tcp_len = ip_len - ihl
    if tcp_len < net.TCP_LEN:
        s.counters[C_DROP_BAD_TCP] += 1
        return
    doff = (np.int64(b[o + 12]) >> 4) * 4
    if doff < net.TCP_LEN or doff > tcp_len:
        s.counters[C_DROP_BAD_TCP] += 1
        return
    src = net.get32(b, net.ETH_LEN + 12)
    dst = net.get32(b, net.ETH_LEN + 16)
    if net.fold(net.sum16(b, o, tcp_len, net.pseudo_sum(src, dst, net.PROTO_TCP, tcp_len))) != 0:
        s.counters[C_DROP_TCP_CHECKSUM] += 1
        return
    sport = net.get16(b, o)
    dport = net.get16(b, o + 2)
    seq = net.get32(b, o + 4)
    ack = net.get32(b, o + 8)
    flags = np.int64(b[o + 13])
    win = net.get16(b, o + 14)
    plen = tcp_len - doff
    s.counters[C_TCP_SEGS_IN] += 1
    s.counters[C_TCP_BYTES_IN] += plen
    k1, k2 = tuple_keys(src, sport, dst, dport)
    c = hash_find(s.hash, k1, k2)
    if c >= 0 and s.tcb.state[c] == TIME_WAIT and flags & net.SYN and not flags & net.ACK:
        release(s, c, END_CLOSED, now)      # the 4-tuple is reused: a new connection
        c = np.int64(-1)
    if c < 0:
        if flags & net.RST:
            s.counters[C_TCP_RESETS_IN] += 1
        elif (flags & (net.SYN | net.ACK | net.FIN)) == net.SYN and s.params[P_ROLE] == SERVER \
                and s.params[P_PORT_FIRST] <= dport <= s.params[P_PORT_LAST] and owns(s, dst):
            _accept(s, b, o, doff, src, sport, dst, dport, seq, win, now)
        else:
            s.counters[C_TCP_NO_LISTENER] += 1
            reply_rst(s, b, src, dst, sport, dport, seq, ack, flags, plen)
        return
    if s.tcb.state[c] == SYN_SENT:
        _syn_sent(s, c, b, o, doff, seq, ack, flags, win, now)
    else:
        _segment(s, c, b, o + doff, plen, seq, ack, flags, win, now)
    _rearm(s, c)


@inline
def _syn_sent(s, c, b, o, doff, seq, ack, flags, win, now):
    t = s.tcb
    if flags & net.ACK and ((ack - t.iss[c]) & M32) != 1:
        if not flags & net.RST:
            reply_rst(s, b, t.rip[c], t.lip[c], t.rport[c], t.lport[c], seq, ack, flags, 0)
        return
    if flags & net.RST:
        if flags & net.ACK:
            s.counters[C_TCP_RESETS_IN] += 1
            release(s, c, END_RESET, now)
        return
    if not (flags & net.SYN and flags & net.ACK):
        return                       # simultaneous open is not supported: wait for SYN-ACK
    t.irs[c] = seq
    t.rcv_nxt[c] = 1
    _syn_options(s, c, b, o, doff)
    t.snd_una[c] = 1
    t.snd_wnd[c] = win
    t.snd_wl1[c] = 1
    _rtt_sample(s, c, now)
    t.flags[c] &= ~F_RTT
    t.backoff[c] = 0
    t.t_rto[c] = 0
    t.state[c] = ESTABLISHED
    s.counters[C_CONN_OPENED] += 1
    t.flags[c] |= F_ACK_NOW
    _idle_deadline(s, c, now)
    app.app_established(s, c, now)
    work_push(s, c)


@inline
def _idle_deadline(s, c, now):
    if s.params[P_IDLE_US] > 0:
        s.tcb.t_end[c] = now + s.params[P_IDLE_US]


@inline
def _rtt_sample(s, c, now):
    """RFC 6298 estimator, microseconds."""
    t = s.tcb
    r = max(now - t.rtt_start[c], 1)
    if t.srtt[c] == 0:
        t.srtt[c] = r
        t.rttvar[c] = r // 2
    else:
        t.rttvar[c] = (3 * t.rttvar[c] + abs(t.srtt[c] - r)) // 4
        t.srtt[c] = (7 * t.srtt[c] + r) // 8
    t.rto[c] = min(max(t.srtt[c] + max(4 * t.rttvar[c], 1000), s.params[P_RTO_MIN_US]), s.params[P_RTO_MAX_US])


@inline
def _acked(s, c, ack_off, now):
    """New data acknowledged up to sequence offset ack_off."""
    t = s.tcb
    acked = ack_off - t.snd_una[c]
    syn = t.snd_una[c] == 0                     # the ACK of our SYN: no data, no window growth
    mss = t.mss[c]
    if t.flags[c] & F_RTT and ack_off > t.rtt_seq[c]:
        _rtt_sample(s, c, now)
        t.flags[c] &= ~F_RTT
    t.snd_una[c] = ack_off
    if t.snd_nxt[c] < ack_off:
        t.snd_nxt[c] = ack_off
    if t.flags[c] & F_RECOVERY:
        if ack_off >= t.recover[c]:
            t.flags[c] &= ~F_RECOVERY
            t.cwnd[c] = t.ssthresh[c]
        else:
            t.flags[c] |= F_RETRANSMIT          # partial ACK: the next hole
            t.cwnd[c] = max(t.cwnd[c] - acked + mss, mss)
    elif syn:
        pass
    elif t.cwnd[c] < t.ssthresh[c]:
        t.cwnd[c] += min(acked, mss)
    else:
        t.cwnd[c] += max(mss * mss // t.cwnd[c], 1)
    t.dupacks[c] = 0
    t.backoff[c] = 0
    while t.q_head[c] < t.q_tail[c]:
        k = t.q_head[c] % APPQ
        if ack_off < t.q_start[c, k] + t.q_len[c, k] + 1:
            break
        t.q_head[c] += 1
    t.t_rto[c] = now + t.rto[c] if ack_off < t.snd_max[c] else 0


@inline
def _fin_acked(t, c):
    return (t.flags[c] & F_FIN_QUEUED) != 0 and t.snd_una[c] > t.snd_end[c]


@inline
def _segment(s, c, b, p, plen, seq, ack, flags, win, now):
    """A segment for a synchronized connection; payload at b[p:p+plen]."""
    t = s.tcb
    st = t.state[c]
    seg = t.rcv_nxt[c] + net.seq_diff(seq, (t.irs[c] + t.rcv_nxt[c]) & M32)
    if flags & net.RST:
        if seg == t.rcv_nxt[c] or st == SYN_RCVD:
            s.counters[C_TCP_RESETS_IN] += 1
            release(s, c, END_RESET, now)
        elif t.rcv_nxt[c] < seg < t.rcv_nxt[c] + s.params[P_RCV_WND]:
            t.flags[c] |= F_ACK_NOW             # in the window, not exact: challenge ACK (RFC 9293 3.10.7.4)
            work_push(s, c)
        return
    if flags & net.SYN:
        if st == SYN_RCVD and seg == 0:
            emit(s, c, 0, 0, net.SYN | net.ACK, now)   # our SYN-ACK was lost
        else:
            t.flags[c] |= F_ACK_NOW                      # challenge ACK (RFC 5961)
            work_push(s, c)
        return
    if not flags & net.ACK:
        return
    ack_off = t.snd_una[c] + net.seq_diff(ack, (t.iss[c] + t.snd_una[c]) & M32)
    if st == SYN_RCVD:
        if ack_off < 1 or ack_off > t.snd_max[c]:
            reply_rst(s, b, t.rip[c], t.lip[c], t.rport[c], t.lport[c], seq, ack, flags, plen)
            return
        t.state[c] = ESTABLISHED
        st = ESTABLISHED
        s.counters[C_CONN_OPENED] += 1
        t.snd_wl1[c] = seg
        app.app_established(s, c, now)
    if ack_off > t.snd_max[c]:
        t.flags[c] |= F_ACK_NOW
        work_push(s, c)
        return
    wnd = win << t.snd_wscale[c]
    if ack_off > t.snd_una[c]:
        _acked(s, c, ack_off, now)
        work_push(s, c)
    elif ack_off == t.snd_una[c] and plen == 0 and not flags & net.FIN and t.snd_max[c] > t.snd_una[c] \
            and wnd == t.snd_wnd[c]:
        _dupack(s, c)
    if ack_off >= t.snd_una[c] and seg >= t.snd_wl1[c]:
        if wnd > t.snd_wnd[c]:
            work_push(s, c)
        t.snd_wnd[c] = wnd
        t.snd_wl1[c] = seg
        if wnd > 0 and t.flags[c] & F_PERSIST:   # the window opened: stop probing, forget its backoff
            t.flags[c] &= ~F_PERSIST
            t.t_rto[c] = 0
            t.backoff[c] = 0
    if _fin_acked(t, c):
        if st == FIN_WAIT_1:
            st = FIN_WAIT_2
            t.state[c] = FIN_WAIT_2
        elif st == CLOSING:
            _time_wait(s, c, now)
            return
        elif st == LAST_ACK:
            release(s, c, END_CLOSED, now)
            return
    if st == TIME_WAIT:
        if flags & net.FIN:
            t.flags[c] |= F_ACK_NOW
            _time_wait(s, c, now)
            work_push(s, c)
        return
    if plen > 0:
        _data(s, c, b, p, plen, seg, st, now)
    if flags & net.FIN and seg + plen == t.rcv_nxt[c]:
        _fin(s, c, st, now)
    if t.state[c] != TIME_WAIT:         # t_end is the TIME_WAIT deadline there, not the idle one
        _idle_deadline(s, c, now)


@inline
def _dupack(s, c):
    t = s.tcb
    s.counters[C_TCP_DUPACKS] += 1
    t.dupacks[c] += 1
    if t.dupacks[c] == 3 and not t.flags[c] & F_RECOVERY:
        flight = t.snd_max[c] - t.snd_una[c]
        t.ssthresh[c] = max(flight // 2, 2 * t.mss[c])
        t.cwnd[c] = t.ssthresh[c] + 3 * t.mss[c]
        t.recover[c] = t.snd_max[c]
        t.flags[c] |= F_RECOVERY | F_RETRANSMIT
        t.flags[c] &= ~F_RTT
        s.counters[C_TCP_FAST_RETRANSMITS] += 1
        work_push(s, c)
    elif t.flags[c] & F_RECOVERY:
        t.cwnd[c] += t.mss[c]
        work_push(s, c)


@inline
def _data(s, c, b, p, plen, seg, st, now):
    t = s.tcb
    if st != ESTABLISHED and st != FIN_WAIT_1 and st != FIN_WAIT_2:
        t.flags[c] |= F_ACK_NOW          # data after the peer's FIN: just acknowledge
        work_push(s, c)
        return
    rcv = t.rcv_nxt[c]
    if seg > rcv:
        s.counters[C_TCP_OUT_OF_ORDER] += 1
        t.flags[c] |= F_ACK_NOW
        work_push(s, c)
        return
    skip = rcv - seg
    if skip >= plen:
        s.counters[C_TCP_DUPLICATE_SEGS] += 1
        t.flags[c] |= F_ACK_NOW
        work_push(s, c)
        return
    want = plen - skip
    took = app.app_input(s, c, b, p + skip, want, now)
    t.rcv_nxt[c] = rcv + took
    if took < want or t.flags[c] & F_ACK_DELAYED:
        t.flags[c] |= F_ACK_NOW
    else:
        t.flags[c] |= F_ACK_DELAYED
        t.t_dack[c] = now + s.params[P_DACK_US]
    work_push(s, c)


@inline
def _fin(s, c, st, now):
    t = s.tcb
    t.rcv_nxt[c] += 1
    t.flags[c] |= F_ACK_NOW
    work_push(s, c)
    if st == ESTABLISHED:
        t.state[c] = CLOSE_WAIT
        app.app_peer_closed(s, c, now)
    elif st == FIN_WAIT_1:
        t.state[c] = CLOSING
    elif st == FIN_WAIT_2:
        _time_wait(s, c, now)


# --- output --------------------------------------------------------------

@kernel
def tcp_output(s, c, now):
    """Send what c may send now; False if frames ran out (c stays on the list)."""
    t = s.tcb
    st = t.state[c]
    if st == CLOSED or st == SYN_SENT or st == SYN_RCVD:
        return True
    if t.flags[c] & F_RETRANSMIT:
        una = t.snd_una[c]
        n = min(t.mss[c], t.snd_end[c] - una, t.snd_max[c] - una)   # resend only what was sent
        fl = net.ACK | (net.FIN if una + n == t.snd_end[c] and t.snd_max[c] > t.snd_end[c] else 0)
        if n > 0 or fl & net.FIN:
            if not emit(s, c, una, n, fl, now):
                return False
        t.flags[c] &= ~F_RETRANSMIT
    while True:
        nxt = t.snd_nxt[c]
        end = t.snd_end[c]
        usable = min(t.snd_wnd[c], t.cwnd[c]) - (nxt - t.snd_una[c])
        n = min(end - nxt, t.mss[c], max(usable, 0))
        fin = (t.flags[c] & F_FIN_QUEUED) != 0 and nxt + n == end and (n > 0 or usable >= 0) and nxt <= end
        if n <= 0 and not fin:
            break
        if not emit(s, c, nxt, n, net.ACK | (net.PSH if n > 0 else 0) | (net.FIN if fin else 0), now):
            return False
        if not t.flags[c] & F_RTT and nxt >= t.snd_max[c]:   # Karn: time new data only
            t.flags[c] |= F_RTT
            t.rtt_seq[c] = nxt
            t.rtt_start[c] = now
        nxt += n + (1 if fin else 0)
        t.snd_nxt[c] = nxt
        if nxt > t.snd_max[c]:
            t.snd_max[c] = nxt
        if t.t_rto[c] == 0:
            t.t_rto[c] = now + t.rto[c]
        if fin:
            if st == ESTABLISHED:
                t.state[c] = FIN_WAIT_1
            elif st == CLOSE_WAIT:
                t.state[c] = LAST_ACK
            break
    if t.flags[c] & F_ACK_NOW:
        if not emit(s, c, t.snd_nxt[c], 0, net.ACK, now):
            return False
    if t.snd_wnd[c] == 0 and t.snd_nxt[c] < t.snd_end[c] and t.snd_max[c] == t.snd_una[c] and t.t_rto[c] == 0:
        t.flags[c] |= F_PERSIST
        t.t_rto[c] = now + t.rto[c]
    _rearm(s, c)
    return True


@kernel
def work_run(s, now):
    """Output for every connection on the work list; False if frames ran out."""
    while s.var[V_WORK_HEAD] < s.var[V_WORK_TAIL]:
        c = s.work[s.var[V_WORK_HEAD] % s.work.shape[0]]
        if s.tcb.flags[c] & F_IN_WORK:
            if not tcp_output(s, c, now):
                return False
            s.tcb.flags[c] &= ~F_IN_WORK
        s.var[V_WORK_HEAD] += 1
    return True


# --- timers --------------------------------------------------------------

@kernel
def tcp_timer(s, c, now):
    """Connection c's tick came round: run whatever deadline has passed."""
    t = s.tcb
    if t.state[c] == CLOSED:
        return
    if t.t_end[c] and now >= t.t_end[c]:
        if t.state[c] == TIME_WAIT:
            release(s, c, END_CLOSED, now)
        else:
            _send_rst(s, c)
            release(s, c, END_IDLE, now)
        return
    if t.t_rto[c] and now >= t.t_rto[c]:
        t.t_rto[c] = 0
        if not _on_rto(s, c, now):
            return
    if t.t_dack[c] and now >= t.t_dack[c]:
        t.t_dack[c] = 0
        t.flags[c] |= F_ACK_NOW
        work_push(s, c)
    _rearm(s, c)


@inline
def _on_rto(s, c, now):
    """Retransmission (or persist) timeout; False if the connection was dropped."""
    t = s.tcb
    st = t.state[c]
    t.backoff[c] += 1
    t.flags[c] &= ~F_RTT                        # Karn: no RTT sample from retransmissions
    if st == SYN_SENT or st == SYN_RCVD:
        if t.backoff[c] > s.params[P_SYN_RETRIES]:
            s.counters[C_TCP_TIMEOUTS] += 1
            release(s, c, END_TIMEOUT, now)
            return False
        emit(s, c, 0, 0, net.SYN | (net.ACK if st == SYN_RCVD else 0), now)
    elif t.snd_wnd[c] == 0 and t.snd_una[c] == t.snd_max[c]:
        s.counters[C_TCP_WINDOW_PROBES] += 1    # zero window: probe, never give up
        t.backoff[c] = min(t.backoff[c], 10)
        emit(s, c, t.snd_una[c] - 1, 0, net.ACK, now)
    elif t.snd_max[c] > t.snd_una[c]:
        if t.backoff[c] > s.params[P_DATA_RETRIES]:
            s.counters[C_TCP_TIMEOUTS] += 1
            _send_rst(s, c)
            release(s, c, END_TIMEOUT, now)
            return False
        s.counters[C_TCP_TIMEOUTS] += 1
        t.ssthresh[c] = max((t.snd_max[c] - t.snd_una[c]) // 2, 2 * t.mss[c])
        t.cwnd[c] = t.mss[c]
        t.flags[c] &= ~F_RECOVERY
        t.dupacks[c] = 0
        t.snd_nxt[c] = t.snd_una[c]
        work_push(s, c)
    else:
        t.backoff[c] = 0
        return True
    t.t_rto[c] = now + _rto_after_backoff(s, c)
    return True
