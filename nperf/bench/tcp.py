"""`nperf bench tcp`: the server's TCP and HTTP kernels alone, one core, no I/O.

A client generator written as kernels (in this file) drives a server `Stack`
the way the worker's poll loop does, one burst at a time: build up to 32
client frames into NumPy-backed mbufs, hand each to `worker_loop.frame_input`,
then `run_timers`, then `tcp.work_run`, then read the server's frames out of
`s.txq` and put their mbufs back in `s.stash` (what the driver's transmit and
the pool refill do in a real worker). The generator is *reactive*: it learns
the server's random initial sequence number from the SYN-ACK and builds every
later segment from what the server actually sent, so any misbehaviour shows
up as a failed check, never as a better figure. Client frames are prebuilt
templates (one mbuf per burst position and frame kind) of which only the
addresses, ports, sequence numbers and checksums (incrementally) are patched.

Time: `now` is real time from the TSC, as in the worker, so timers (delayed
ACK, retransmission, TIME_WAIT) fire as they would in production. Every burst
reads the TSC around the server calls; "server kernels" figures count only
those cycles (frame_input over the burst + run_timers + work_run), the
"with the client generator" figures are wall-clock time of the whole loop
(generator, server, mbuf recycling). The tables are the production default
size (1,000,000 connections), so lookups miss the caches as they would.

(a) connections per second: Connection: close, the server closes first.
    Minimal form (the cheapest common real-world pattern, e.g. a client that
    piggybacks ACKs): SYN / SYN-ACK, ACK+GET / response+FIN, FIN-ACK / ACK,
    then TIME_WAIT (the bench's is short so the table does not fill) released
    by the timer wheel inside the measured loop: 3 client + 3 server frames.
    Linux-client form: the handshake ACK and the request are separate
    segments, and the response+FIN is ACKed before the client's FIN: 5 + 3.
(b) keep-alive requests per second on 1,000 established connections, each
    with one GET segment in flight: (1) every response is ACKed by a pure
    ACK before the next GET, (2) the ACK rides on the next GET (what a
    closed-loop client such as wrk does), (3) PIPELINE GETs per segment
    (10 at most, and no more than the APPQ responses a connection queues).
(c) memory per held connection: RSS growth (from /proc/self/statm) over
    building a 1,000,000-connection stack and filling it with keep-alive
    connections that served one request each and stay open, against the
    preallocated figure (`worker_stack.memory_per_connection`).

Stacks are built with the defaults of `nperf server` (1,000,000 connections,
60 s idle timeout, 10 ms delayed ACK) except TIME_WAIT in (a). The figures
come from a fresh process that loads the kernels from Numba's cache (see
`main`). Numba checks only a function's own file for a stale cache: after
editing kernel files, delete nperf's *.nbi/*.nbc files before benchmarking.
"""
import os
import statistics
import subprocess
import sys
import time
from collections import namedtuple

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from nperf import config, http_tables
from nperf.fake_mbufs import FakeMbufs
from nperf.data import SEED_TEST3
from nperf.kernels import http_server as hs
from nperf.kernels import mbuf, net, stack as st, tcp, worker_loop
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import V_NOW_US, V_STASH_N, V_TXQ_N
from nperf.kernels.tcp_table import APPQ
from nperf.worker_stack import STASH, StackOptions, build_stack, memory_per_connection, owned_range

CONFIG = os.path.join(SEED_TEST3, "s.json")
BURST = worker_loop.BURST
M32 = 0xFFFFFFFF
CLIENT_MAC = 0x020000000001
CLIENT_IP0 = 0x0A000000          # 10.0.0.0 + a slot's generation
PORT0 = 1024                     # client port = PORT0 + client slot
SLOTS = 16384                    # client connections in flight at most
TIME_WAIT_MS = 20                # (a): short, so the table holds only ~20 ms of connections
CHUNK_S = 0.05                   # timed runs are cut into chunks; figures are chunk medians
WARM_S = 0.3                     # untimed run before each timed one

# client frame kinds (one template each)
K_SYN, K_ACK, K_GET_CLOSE, K_GET_KA, K_GET_KA4, K_FIN, NK = range(7)
PIPELINE = min(APPQ, 10)

# generator modes
M_CLOSE, M_HOLD, M_KA = range(3)

# gp: generator parameters
(GP_MODE, GP_SEP_ACK, GP_SEP_FIN, GP_KEEP, GP_GET_KIND, GP_RESP_LEN, GP_NREQ, GP_TARGET, GP_MAX_INFLIGHT,
 GP_VERIFY_MASK, GP_SIP0, GP_SIP_N, GP_SPORT0, GP_SPORT_N, GP_TSC0, GP_STOP, N_GP) = range(17)

# gv: generator variables and results
(GV_PEND_HEAD, GV_PEND_TAIL, GV_UID, GV_STARTED, GV_INFLIGHT, GV_DONE, GV_RESPONSES,
 GV_FRAMES_IN, GV_FRAMES_OUT, GV_VERIFIED, GV_EXTRA_ACKS, GV_BURSTS,
 GV_FAIL_SEQ, GV_FAIL_STRAY, GV_FAIL_RST, GV_FAIL_CSUM, GV_FAIL_STATUS, GV_FAIL_REUSE, GV_FAIL_QUEUE,
 GV_CYC_RX, GV_CYC_TIMERS, GV_CYC_WORK, GV_CYC_GEN, GV_NOW, N_GV) = range(25)
FAILS = {"out-of-sequence or unexpected segments": GV_FAIL_SEQ, "stray frames": GV_FAIL_STRAY,
         "resets": GV_FAIL_RST, "bad checksums": GV_FAIL_CSUM, "bad status lines": GV_FAIL_STATUS,
         "reused input mbufs": GV_FAIL_REUSE, "queue overflows": GV_FAIL_QUEUE}

# cl: client connection fields
CL_STATE, CL_GEN, CL_IP, CL_PORT, CL_SIP, CL_SPORT, CL_SND, CL_RCV, CL_GOT, CL_FIN, N_CL = range(11)
CS_FREE, CS_SYN_SENT, CS_WAIT, CS_FIN_SENT, CS_IDLE = range(5)

# tm: template metadata
TM_LEN, TM_SEQLEN, TM_IPSUM, TM_TCPSUM, N_TM = range(5)

Gen = namedtuple("Gen", ("gv", "gp", "cl", "pend", "cfree", "tm", "inb", "burst"))


@intrinsic
def rdtsc(typingctx):
    """The CPU's time-stamp counter (llvm.readcyclecounter)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])

    return sig, codegen


@kernel
def tsc_now():
    return rdtsc()


# --- the client generator ----------------------------------------------

@inline
def _queue(g, slot, kind, seq, ack):
    gv, pend = g.gv, g.pend
    tail = gv[GV_PEND_TAIL]
    if tail - gv[GV_PEND_HEAD] >= pend.shape[0]:
        gv[GV_FAIL_QUEUE] += 1
        return
    j = tail & (pend.shape[0] - 1)
    pend[j, 0] = slot
    pend[j, 1] = kind
    pend[j, 2] = seq
    pend[j, 3] = ack
    gv[GV_PEND_TAIL] = tail + 1


@inline
def _build(g, pos, slot, kind, seq, ack):
    """Patch template `kind` at burst position `pos` for client connection `slot`."""
    m = g.inb[pos * NK + kind]
    b = mbuf.data_view(m)
    cl = g.cl
    src = cl[slot, CL_IP]
    dst = cl[slot, CL_SIP]
    sport = cl[slot, CL_PORT]
    dport = cl[slot, CL_SPORT]
    net.put32(b, 26, src)
    net.put32(b, 30, dst)
    a = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
    net.put16(b, 24, net.fold(g.tm[kind, TM_IPSUM] + a))
    net.put16(b, 34, sport)
    net.put16(b, 36, dport)
    net.put32(b, 38, seq)
    net.put32(b, 42, ack)
    net.put16(b, 50, net.fold(g.tm[kind, TM_TCPSUM] + a + sport + dport + (seq >> 16) + (seq & 0xFFFF)
                              + (ack >> 16) + (ack & 0xFFFF)))
    g.burst[pos] = m


@inline
def _free_slot(g, slot):
    g.cl[slot, CL_STATE] = CS_FREE
    top = g.cfree[0] + 1
    g.cfree[top] = slot
    g.cfree[0] = top


@inline
def _fill(g):
    """The next burst: queued answers first, then SYNs of new connections."""
    gv, gp, cl, pend = g.gv, g.gp, g.cl, g.pend
    n = 0
    while n < BURST and gv[GV_PEND_HEAD] < gv[GV_PEND_TAIL]:
        j = gv[GV_PEND_HEAD] & (pend.shape[0] - 1)
        _build(g, n, pend[j, 0], pend[j, 1], pend[j, 2], pend[j, 3])
        gv[GV_PEND_HEAD] += 1
        n += 1
    while n < BURST and gv[GV_STARTED] < gp[GP_TARGET] and gv[GV_INFLIGHT] < gp[GP_MAX_INFLIGHT] \
            and g.cfree[0] > 0:
        top = g.cfree[0]
        slot = g.cfree[top]
        g.cfree[0] = top - 1
        uid = gv[GV_UID]
        gv[GV_UID] = uid + 1
        cl[slot, CL_GEN] += 1
        cl[slot, CL_IP] = CLIENT_IP0 + cl[slot, CL_GEN]
        cl[slot, CL_PORT] = PORT0 + slot
        cl[slot, CL_SIP] = gp[GP_SIP0] + uid % gp[GP_SIP_N]
        cl[slot, CL_SPORT] = gp[GP_SPORT0] + uid % gp[GP_SPORT_N]
        iss = (uid * 2654435761 + 0x7FFFF000) & M32
        cl[slot, CL_SND] = (iss + 1) & M32
        cl[slot, CL_RCV] = 0
        cl[slot, CL_GOT] = 0
        cl[slot, CL_FIN] = 0
        cl[slot, CL_STATE] = CS_SYN_SENT
        _build(g, n, slot, K_SYN, iss, 0)
        gv[GV_STARTED] += 1
        gv[GV_INFLIGHT] += 1
        n += 1
    gv[GV_FRAMES_IN] += n
    return n


@inline
def _checksums_ok(b, n):
    ip_len = net.get16(b, 16)
    if not net.ipv4_header_ok(b, net.ETH_LEN) or net.ETH_LEN + ip_len > n:
        return False
    tl = ip_len - net.IP_LEN
    return net.fold(net.sum16(b, 34, tl, net.pseudo_sum(net.get32(b, 26), net.get32(b, 30), net.PROTO_TCP, tl))) == 0


@inline
def _send_get(g, slot, kind, snd, rcv):
    _queue(g, slot, kind, snd, rcv)
    g.cl[slot, CL_SND] = (snd + g.tm[kind, TM_SEQLEN]) & M32


@inline
def _response_done(g, slot, snd, rcv):
    """A complete response (or PIPELINE of them) arrived on slot."""
    gv, gp, cl = g.gv, g.gp, g.cl
    mode = gp[GP_MODE]
    if mode == M_CLOSE:
        gv[GV_RESPONSES] += 1
        if gp[GP_SEP_FIN]:
            _queue(g, slot, K_ACK, snd, rcv)
        _queue(g, slot, K_FIN, snd, rcv)
        cl[slot, CL_SND] = (snd + 1) & M32
        cl[slot, CL_STATE] = CS_FIN_SENT
    elif mode == M_HOLD:
        gv[GV_RESPONSES] += 1
        _queue(g, slot, K_ACK, snd, rcv)
        gv[GV_DONE] += 1
        gv[GV_INFLIGHT] -= 1
        if gp[GP_KEEP]:
            cl[slot, CL_STATE] = CS_IDLE
        else:
            _free_slot(g, slot)
    else:
        gv[GV_RESPONSES] += gp[GP_NREQ]
        if gp[GP_SEP_ACK]:
            _queue(g, slot, K_ACK, snd, rcv)
        if gp[GP_STOP]:
            gv[GV_INFLIGHT] -= 1
            cl[slot, CL_STATE] = CS_IDLE
        else:
            _send_get(g, slot, gp[GP_GET_KIND], snd, rcv)


@inline
def _client_input(g, m):
    """One frame the server sent: find its client connection and react."""
    gv, gp, cl = g.gv, g.gp, g.cl
    b = mbuf.data_view(m)
    n = mbuf.data_len(m)
    gv[GV_FRAMES_OUT] += 1
    if n < 54 or net.get16(b, 12) != net.ETH_IPV4 or b[23] != net.PROTO_TCP or net.get_mac(b, 0) != CLIENT_MAC:
        gv[GV_FAIL_STRAY] += 1
        return
    if (gv[GV_FRAMES_OUT] & gp[GP_VERIFY_MASK]) == 0:
        gv[GV_VERIFIED] += 1
        if not _checksums_ok(b, n):
            gv[GV_FAIL_CSUM] += 1
            return
    slot = net.get16(b, 36) - PORT0
    if slot < 0 or slot >= cl.shape[0] or cl[slot, CL_STATE] == CS_FREE or cl[slot, CL_IP] != net.get32(b, 30) \
            or cl[slot, CL_SIP] != net.get32(b, 26) or cl[slot, CL_SPORT] != net.get16(b, 34):
        gv[GV_FAIL_STRAY] += 1
        return
    flags = np.int64(b[47])
    seq = net.get32(b, 38)
    ack = net.get32(b, 42)
    doff = (np.int64(b[46]) >> 4) * 4
    plen = net.get16(b, 16) - net.IP_LEN - doff
    cs = cl[slot, CL_STATE]
    if flags & net.RST:
        gv[GV_FAIL_RST] += 1
        gv[GV_INFLIGHT] -= 1
        _free_slot(g, slot)
        return
    snd = cl[slot, CL_SND]
    if cs == CS_SYN_SENT:
        if (flags & (net.SYN | net.ACK)) != (net.SYN | net.ACK) or ack != snd or plen != 0:
            gv[GV_FAIL_SEQ] += 1
            return
        rcv = (seq + 1) & M32
        cl[slot, CL_RCV] = rcv
        cl[slot, CL_STATE] = CS_WAIT
        if gp[GP_MODE] == M_CLOSE:
            if gp[GP_SEP_ACK]:
                _queue(g, slot, K_ACK, snd, rcv)
            _send_get(g, slot, K_GET_CLOSE, snd, rcv)
        else:
            _send_get(g, slot, K_GET_KA, snd, rcv)
        return
    if flags & net.SYN or not flags & net.ACK:
        gv[GV_FAIL_SEQ] += 1
        return
    if plen > 0 or flags & net.FIN:
        if cs != CS_WAIT or seq != cl[slot, CL_RCV] or ack != snd:
            gv[GV_FAIL_SEQ] += 1
            return
        if plen > 0 and cl[slot, CL_GOT] == 0:
            p = 34 + doff
            if plen < 12 or b[p + 9] != 50 or b[p + 10] != 48 or b[p + 11] != 48:     # "200"
                gv[GV_FAIL_STATUS] += 1
        got = cl[slot, CL_GOT] + plen
        rcv = (seq + plen + (1 if flags & net.FIN else 0)) & M32
        cl[slot, CL_RCV] = rcv
        if flags & net.FIN:
            cl[slot, CL_FIN] = 1
        want = gp[GP_RESP_LEN]
        if got > want or (cl[slot, CL_FIN] != 0 and (got < want or gp[GP_MODE] != M_CLOSE)):
            gv[GV_FAIL_SEQ] += 1
            cl[slot, CL_GOT] = got
            return
        if got < want or (gp[GP_MODE] == M_CLOSE and cl[slot, CL_FIN] == 0):
            cl[slot, CL_GOT] = got
            return
        cl[slot, CL_GOT] = 0
        _response_done(g, slot, snd, rcv)
        return
    if cs == CS_FIN_SENT and ack == snd:
        gv[GV_DONE] += 1
        gv[GV_INFLIGHT] -= 1
        _free_slot(g, slot)
    else:
        gv[GV_EXTRA_ACKS] += 1


@inline
def _consume(s, g):
    """Read the server's output and give its mbufs back to the stash."""
    for j in range(s.var[V_TXQ_N]):
        m = s.txq[j]
        _client_input(g, m)
        s.stash[s.var[V_STASH_N]] = m
        s.var[V_STASH_N] += 1
    s.var[V_TXQ_N] = 0


@kernel
def run(s, g, nbursts, cycles_per_us):
    """Up to `nbursts` poll-loop turns; stops early once every connection asked for is finished."""
    gv, gp = g.gv, g.gp
    k = 0
    while k < nbursts:
        t0 = rdtsc()
        now = np.int64((t0 - gp[GP_TSC0]) / cycles_per_us)
        gv[GV_NOW] = now
        s.var[V_NOW_US] = now
        n = _fill(g)
        t1 = rdtsc()
        for i in range(n):
            if worker_loop.frame_input(s, g.burst[i], now):
                gv[GV_FAIL_REUSE] += 1
        t2 = rdtsc()
        worker_loop.run_timers(s, now)
        t3 = rdtsc()
        tcp.work_run(s, now)
        t4 = rdtsc()
        _consume(s, g)
        t5 = rdtsc()
        gv[GV_CYC_RX] += t2 - t1
        gv[GV_CYC_TIMERS] += t3 - t2
        gv[GV_CYC_WORK] += t4 - t3
        gv[GV_CYC_GEN] += (t1 - t0) + (t5 - t4)
        gv[GV_BURSTS] += 1
        k += 1
        if n == 0 and gv[GV_INFLIGHT] == 0 and gv[GV_STARTED] >= gp[GP_TARGET] \
                and gv[GV_PEND_HEAD] == gv[GV_PEND_TAIL]:
            break
    return k


@kernel
def drain_timers(s, g, now):
    """Run the timers at a given time (past the TIME_WAIT of every connection)."""
    s.var[V_NOW_US] = now
    worker_loop.run_timers(s, now)
    tcp.work_run(s, now)
    _consume(s, g)


@kernel
def start_requests(g):
    """M_KA: one GET on every idle client connection."""
    gv, gp, cl = g.gv, g.gp, g.cl
    for slot in range(cl.shape[0]):
        if cl[slot, CL_STATE] == CS_IDLE:
            cl[slot, CL_STATE] = CS_WAIT
            cl[slot, CL_GOT] = 0
            gv[GV_INFLIGHT] += 1
            _send_get(g, slot, gp[GP_GET_KIND], cl[slot, CL_SND], cl[slot, CL_RCV])


# --- Python side -------------------------------------------------------

def _sum16(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    return sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))


def _request(close: bool) -> bytes:
    return (b"GET /hello HTTP/1.1\r\nHost: 192.168.1.100:8000\r\nUser-Agent: perf_tool/1.0\r\nAccept: */*\r\n"
            + (b"Connection: close\r\n" if close else b"") + b"\r\n")


def _templates(server_mac: int) -> list[tuple[bytes, int, int, int]]:
    """(frame, sequence space, IP base sum, TCP base sum) per kind; variable fields zero."""
    syn_opts = bytes([2, 4, 5, 0xB4, 4, 2, 8, 10]) + b"\0" * 8 + bytes([1, 3, 3, 7])   # Linux: MSS SACK TS NOP WS
    kinds = {K_SYN: (net.SYN, syn_opts, b"", 64240), K_ACK: (net.ACK, b"", b"", 502),
             K_GET_CLOSE: (net.ACK | net.PSH, b"", _request(True), 502),
             K_GET_KA: (net.ACK | net.PSH, b"", _request(False), 502),
             K_GET_KA4: (net.ACK | net.PSH, b"", _request(False) * PIPELINE, 502),
             K_FIN: (net.ACK | net.FIN, b"", b"", 502)}
    out = []
    for k in range(NK):
        flags, opts, payload, win = kinds[k]
        tcp_h = bytes(12) + bytes([(20 + len(opts)) // 4 << 4, flags]) + win.to_bytes(2, "big") + bytes(4)
        seg = tcp_h + opts + payload
        ip_h = bytes([0x45, 0]) + (20 + len(seg)).to_bytes(2, "big") + bytes([0, 0, 0x40, 0, 64, 6]) + bytes(10)
        eth = server_mac.to_bytes(6, "big") + CLIENT_MAC.to_bytes(6, "big") + b"\x08\x00"
        seqlen = len(payload) + (1 if flags & (net.SYN | net.FIN) else 0)
        out.append((eth + ip_h + seg, seqlen, _sum16(ip_h), _sum16(seg) + net.PROTO_TCP + len(seg)))
    return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Rig:
    """A server stack, its mbufs, and the generator's arrays (kept together: the mbufs' memory must live)."""

    def __init__(self, cfg, max_conns: int, time_wait_ms: int, tsc0: int):
        self.cfg = cfg
        mac = config.parse_mac(cfg.network.l2.mac_address)
        temps = _templates(int.from_bytes(mac, "big"))
        self.inb = FakeMbufs(BURST * NK)
        tm = np.zeros((NK, N_TM), np.int64)
        for k, (frame, seqlen, ipsum, tcpsum) in enumerate(temps):
            for pos in range(BURST):
                self.inb.fill(pos * NK + k, frame)
            tm[k] = (len(frame), seqlen, ipsum, tcpsum)
        ip_first, ip_count, port_first, port_last = owned_range(cfg, "server")
        gp = np.zeros(N_GP, np.int64)
        gp[GP_SIP0], gp[GP_SIP_N] = ip_first, ip_count
        gp[GP_SPORT0], gp[GP_SPORT_N] = port_first, port_last - port_first + 1
        gp[GP_MAX_INFLIGHT] = SLOTS
        gp[GP_TSC0] = tsc0
        cfree = np.empty(SLOTS + 1, np.int64)
        cfree[0] = SLOTS
        cfree[1:] = np.arange(SLOTS - 1, -1, -1)
        self.g = Gen(gv=np.zeros(N_GV, np.int64), gp=gp, cl=np.ones((SLOTS, N_CL), np.int64),
                     pend=np.ones((4 * SLOTS, 4), np.int64), cfree=cfree, tm=tm, inb=self.inb.addrs,
                     burst=np.zeros(BURST, np.int64))
        self.g.cl[:] = 0                     # (ones, then zeros: the pages are resident before the RSS readings)
        self.out = FakeMbufs(STASH)
        table = http_tables.build_response_table(cfg.http_config).arrays()
        self.resp_ka = int(hs.response_length(table, 0, 0))
        self.resp_close = int(hs.response_length(table, 0, hs.FLAG_CLOSE))
        self.rss_before = _rss()
        self.s = build_stack(cfg, "server", mac, StackOptions(max_conns=max_conns, time_wait_ms=time_wait_ms))
        self.rss_built = _rss()
        self.s.stash[:] = self.out.addrs
        self.s.var[V_STASH_N] = self.s.stash.shape[0]

    def set(self, **kw):
        for k, v in kw.items():
            self.g.gp[globals()["GP_" + k.upper()]] = v

    def active(self) -> int:
        return int(self.s.tcb.shape[0] - self.s.free[0])


class Clock:
    """TSC frequency (against perf_counter) and the TSC at time 0 of the stacks' clock."""

    def __init__(self, calibrate_s: float = 0.2):
        self.tsc0 = int(tsc_now())
        t0, c0 = time.perf_counter(), tsc_now()
        time.sleep(calibrate_s)
        t1, c1 = time.perf_counter(), tsc_now()
        self.hz = (c1 - c0) / (t1 - t0)
        self.cycles_per_us = self.hz / 1e6


def _timed(rig: Rig, clock: Clock, seconds: float, what: int) -> tuple[list[tuple[float, np.ndarray]], bool]:
    """Run chunks for `seconds`: per chunk (wall seconds, gv increments), and whether it stalled.

    `what` is the gv index counted; a chunk that completes none ends the run (stalled): the
    generator does not retransmit, so one lost frame leaves its connection hanging.
    """
    g = rig.g
    nb = 64
    end = time.perf_counter() + WARM_S          # reach the steady state (TIME_WAIT population, timers) first
    while time.perf_counter() < end:
        run(rig.s, g, nb, clock.cycles_per_us)
    while True:                                  # size a chunk to about CHUNK_S
        t0 = time.perf_counter()
        run(rig.s, g, nb, clock.cycles_per_us)
        dt = time.perf_counter() - t0
        if dt > CHUNK_S / 4 or nb > 1 << 22:
            nb = max(int(nb * CHUNK_S / dt), 16)
            break
        nb *= 4
    rows = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        before = g.gv.copy()
        t0 = time.perf_counter()
        run(rig.s, g, nb, clock.cycles_per_us)
        dt = time.perf_counter() - t0
        d = g.gv - before
        if d[what] == 0:
            return rows, True
        rows.append((dt, d))
    return rows, False


def _figures(rows, clock: Clock, what: int) -> dict:
    """Chunk medians: units/s of the server kernels alone and of the whole loop, ns per unit by part."""
    def med(f):
        return statistics.median(f(dt, d) for dt, d in rows)
    if not rows:
        return dict.fromkeys(("server", "total", "rx", "timers", "work", "gen", "chunks", "units", "frames"), 0)
    hz = clock.hz
    server = med(lambda dt, d: d[what] / ((d[GV_CYC_RX] + d[GV_CYC_TIMERS] + d[GV_CYC_WORK]) / hz))
    return {"server": server, "total": med(lambda dt, d: d[what] / dt),
            "rx": med(lambda dt, d: d[GV_CYC_RX] / hz / d[what] * 1e9),
            "timers": med(lambda dt, d: d[GV_CYC_TIMERS] / hz / d[what] * 1e9),
            "work": med(lambda dt, d: d[GV_CYC_WORK] / hz / d[what] * 1e9),
            "gen": med(lambda dt, d: d[GV_CYC_GEN] / hz / d[what] * 1e9),
            "chunks": len(rows), "units": int(sum(d[what] for _, d in rows)),
            "frames": sum(d[GV_FRAMES_IN] + d[GV_FRAMES_OUT] for _, d in rows) / sum(d[what] for _, d in rows)}


def _open_all(rig: Rig, clock: Clock, conns: int, stall_s: float = 2.0) -> None:
    """Run until `conns` connections are done, or nothing has finished for `stall_s`."""
    g = rig.g
    last, t_last = -1, time.perf_counter()
    while g.gv[GV_DONE] < conns and time.perf_counter() - t_last < stall_s:
        run(rig.s, g, 4096, clock.cycles_per_us)
        if g.gv[GV_DONE] != last:
            last, t_last = int(g.gv[GV_DONE]), time.perf_counter()


def _finish(rig: Rig, clock: Clock, limit_s: float = 5.0) -> int:
    """Open no more connections and let every started one end; returns how many did not."""
    g = rig.g
    g.gp[GP_TARGET] = g.gv[GV_STARTED]
    g.gp[GP_STOP] = 1
    end = time.perf_counter() + limit_s
    while (g.gv[GV_INFLIGHT] > 0 or g.gv[GV_PEND_HEAD] < g.gv[GV_PEND_TAIL]) and time.perf_counter() < end:
        run(rig.s, g, 1000, clock.cycles_per_us)
    return int(g.gv[GV_INFLIGHT])


def _server_faults(s) -> dict:
    c = s.counters
    names = st.COUNTER_NAMES
    bad = {n: int(c[i]) for i, n in enumerate(names) if n.startswith("drop_") and c[i]}
    for n in ("tcp_retransmits", "tcp_fast_retransmits", "tcp_timeouts", "tcp_dupacks", "tcp_out_of_order",
              "tcp_duplicate_segs", "tcp_resets_in", "tcp_resets_out", "tcp_table_full", "tcp_no_listener",
              "conn_reset", "conn_timed_out", "conn_idle_closed", "tcp_window_probes"):
        if n in names and c[names.index(n)]:
            bad[n] = int(c[names.index(n)])
    h = _http(s)
    for n, i in (("http_400", hs.CNT_BAD_REQUEST), ("http_404", hs.CNT_NOT_FOUND),
                 ("http_too_large", hs.CNT_TOO_LARGE), ("http_501", hs.CNT_NOT_IMPLEMENTED)):
        if h[i]:
            bad[n] = int(h[i])
    return bad


def _http(s):
    """The server's HTTP counters (a region of s.counters)."""
    return s.counters[st.CS_HTTP_SERVER:st.CS_HTTP_CLIENT]


def _client_faults(g) -> dict:
    return {n: int(g.gv[i]) for n, i in FAILS.items() if g.gv[i]}


def _verdict(problems: list[str]) -> str:
    return "ok" if not problems else "FAILED: " + "; ".join(problems)


def _faults(rig: Rig) -> list[str]:
    out = []
    for who, d in (("server", _server_faults(rig.s)), ("client", _client_faults(rig.g))):
        if d:
            out.append(f"{who} " + ", ".join(f"{k} {v:,}" for k, v in d.items()))
    return out


def _run_problems(stalled: bool, unfinished: int) -> list[str]:
    out = []
    if stalled:
        out.append(f"stalled: a {CHUNK_S * 1000:.0f} ms chunk completed nothing")
    if unfinished:
        out.append(f"{unfinished:,} client connections never finished")
    return out


def _verify_mask(seconds: float) -> int:
    """Checksums of every server frame in short runs, of 1 in 16 in long ones."""
    return 0 if seconds <= 0.2 else 15


# --- (a) connections ---------------------------------------------------

def bench_connections(cfg, clock: Clock, seconds: float, linux: bool) -> tuple[dict, list[str]]:
    rig = Rig(cfg, 1_000_000, TIME_WAIT_MS, clock.tsc0)
    rig.set(mode=M_CLOSE, sep_ack=int(linux), sep_fin=int(linux), resp_len=rig.resp_close, target=1 << 62,
            max_inflight=1024, verify_mask=_verify_mask(seconds))
    rows, stalled = _timed(rig, clock, seconds, GV_DONE)
    unfinished = _finish(rig, clock)
    g, s = rig.g, rig.s
    tw_peak = int(s.counters[st.C_CONN_OPENED] - s.counters[st.C_CONN_CLOSED])
    drain_timers(s, g, int(g.gv[GV_NOW]) + TIME_WAIT_MS * 1000 + 5000)
    c = s.counters
    n = int(g.gv[GV_STARTED])
    problems = _run_problems(stalled, unfinished) + _faults(rig)
    checks = {"started": n, "completed": int(g.gv[GV_DONE]), "opened by the server": int(c[st.C_CONN_OPENED]),
              "closed by the server": int(c[st.C_CONN_CLOSED]), "responses": int(g.gv[GV_RESPONSES]),
              "requests parsed by the server": int(_http(s)[hs.CNT_REQUESTS])}
    if len(set(checks.values())) != 1:
        problems.append("counts differ: " + ", ".join(f"{k} {v:,}" for k, v in checks.items()))
    if rig.active():
        problems.append(f"{rig.active():,} connections still in the server's table after TIME_WAIT")
    if g.gv[GV_EXTRA_ACKS]:
        problems.append(f"{g.gv[GV_EXTRA_ACKS]:,} unexpected pure ACKs")
    fig = _figures(rows, clock, GV_DONE)
    fig.update(n=n, tw_peak=tw_peak, verified=int(g.gv[GV_VERIFIED]))
    return fig, problems


# --- (b) keep-alive ----------------------------------------------------

def bench_keepalive(cfg, clock: Clock, seconds: float, conns: int, sep_ack: bool, pipeline: bool):
    rig = Rig(cfg, 1_000_000, 1000, clock.tsc0)
    rig.set(mode=M_HOLD, keep=1, resp_len=rig.resp_ka, target=conns, max_inflight=conns, verify_mask=0)
    _open_all(rig, clock, conns)
    g, s = rig.g, rig.s
    problems = []
    if g.gv[GV_DONE] != conns or rig.active() != conns:
        problems.append(f"only {int(g.gv[GV_DONE]):,} of {conns:,} connections opened")
    setup_requests = int(_http(s)[hs.CNT_REQUESTS])
    setup_responses = int(g.gv[GV_RESPONSES])
    nreq = PIPELINE if pipeline else 1
    rig.set(mode=M_KA, sep_ack=int(sep_ack), get_kind=K_GET_KA4 if pipeline else K_GET_KA,
            resp_len=rig.resp_ka * nreq, nreq=nreq, verify_mask=_verify_mask(seconds))
    start_requests(g)
    rows, stalled = _timed(rig, clock, seconds, GV_RESPONSES)
    problems += _run_problems(stalled, _finish(rig, clock)) + _faults(rig)
    served = int(_http(s)[hs.CNT_REQUESTS]) - setup_requests
    got = int(g.gv[GV_RESPONSES]) - setup_responses
    if served != got:
        problems.append(f"server parsed {served:,} requests, client got {got:,} responses")
    if rig.active() != conns:
        problems.append(f"{rig.active():,} connections open, not {conns:,}")
    if g.gv[GV_EXTRA_ACKS]:
        problems.append(f"{g.gv[GV_EXTRA_ACKS]:,} unexpected pure ACKs")
    fig = _figures(rows, clock, GV_RESPONSES)
    fig.update(n=got, verified=int(g.gv[GV_VERIFIED]))
    return fig, problems


# --- (c) memory --------------------------------------------------------

def bench_memory(cfg, clock: Clock, conns: int) -> tuple[dict, list[str]]:
    rig = Rig(cfg, conns, 1000, clock.tsc0)
    r0, r1 = rig.rss_before, rig.rss_built
    rig.set(mode=M_HOLD, keep=0, resp_len=rig.resp_ka, target=conns, max_inflight=1024, verify_mask=15)
    t0 = time.perf_counter()
    _open_all(rig, clock, conns)
    dt = time.perf_counter() - t0
    r2 = _rss()
    g = rig.g
    problems = _faults(rig)
    if g.gv[GV_DONE] != conns or rig.active() != conns:
        problems.append(f"{int(g.gv[GV_DONE]):,} of {conns:,} connections opened, {rig.active():,} held")
    if g.gv[GV_EXTRA_ACKS]:
        problems.append(f"{g.gv[GV_EXTRA_ACKS]:,} unexpected pure ACKs")
    fig = {"n": conns, "built": r1 - r0, "grown": r2 - r1, "total": r2 - r0, "seconds": dt,
           "rate": conns / dt}
    del rig
    return fig, problems


def _warm_up(cfg, clock: Clock) -> None:
    """Compile (or load) every kernel the measurements call, on a small stack."""
    rig = Rig(cfg, 4096, 1, clock.tsc0)
    rig.set(mode=M_CLOSE, resp_len=rig.resp_close, target=200, max_inflight=64)
    run(rig.s, rig.g, 10_000, clock.cycles_per_us)
    drain_timers(rig.s, rig.g, int(rig.g.gv[GV_NOW]) + 10_000)
    rig = Rig(cfg, 4096, 1, clock.tsc0)
    rig.set(mode=M_HOLD, keep=1, resp_len=rig.resp_ka, target=10, max_inflight=10)
    run(rig.s, rig.g, 10_000, clock.cycles_per_us)
    rig.set(mode=M_KA, get_kind=K_GET_KA, nreq=1)
    start_requests(rig.g)
    run(rig.s, rig.g, 100, clock.cycles_per_us)


def _ns(x: float) -> str:
    return f"{x:,.0f}"


def _per(x: float) -> str:
    """ns per unit at x units/s."""
    return _ns(1e9 / x if x else 0)


def main(args) -> int:
    """Compile the kernels here, measure in a fresh process that loads them from Numba's cache.

    A process that has just compiled the kernels ran the input path about 2x slower than one
    that loaded the same kernels from the cache (measured on the development machine, cause
    unknown), and a worker normally starts from the cache: so the figures come from the latter.
    """
    t0 = time.perf_counter()
    cfg, _ = config.load_worker(CONFIG)
    _warm_up(cfg, Clock(0.02))
    ready = time.perf_counter() - t0
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    code = "import sys; from nperf.bench.tcp import measure; sys.exit(measure(float(sys.argv[1]), float(sys.argv[2])))"
    return subprocess.run([sys.executable, "-c", code, str(args.seconds), str(ready)], env=env).returncode


def measure(secs: float, ready: float) -> int:
    cfg, _ = config.load_worker(CONFIG)
    clock = Clock()
    _warm_up(cfg, clock)
    print(f"nperf bench tcp: server kernels on one core, no I/O; TSC {clock.hz / 1e9:.2f} GHz; "
          f"figures are medians of {CHUNK_S * 1000:.0f} ms chunks over {secs:g} s per line "
          f"(kernels compiled or loaded in {ready:.1f} s)", flush=True)
    ok = True

    for linux in (False, True):
        fig, problems = bench_connections(cfg, clock, secs, linux)
        ok &= not problems
        form = ("Linux-client form: 5 client + 3 server frames" if linux else
                "minimal form: 3 client + 3 server frames")
        print(f"(a) connections, {form}: {fig['server']:,.0f} conn/s server kernels "
              f"({_per(fig['server'])} ns/conn: input {_ns(fig['rx'])}, timers {_ns(fig['timers'])}, "
              f"output {_ns(fig['work'])}); {fig['total']:,.0f} conn/s with the client generator "
              f"(generator {_ns(fig['gen'])} ns/conn); {fig['n']:,} connections, "
              f"{fig['frames']:.2f} frames/conn, ~{fig['tw_peak']:,} in TIME_WAIT "
              f"({TIME_WAIT_MS} ms) at the end; {fig['verified']:,} server frames checksum-verified; "
              f"checks {_verdict(problems)}", flush=True)

    for label, sep_ack, pipeline in (("1 GET per segment, a pure ACK for each response", True, False),
                                     ("1 GET per segment, the ACK rides on the next GET", False, False),
                                     (f"{PIPELINE} pipelined GETs per segment, ACK on the next", False, True)):
        fig, problems = bench_keepalive(cfg, clock, secs, 1000, sep_ack, pipeline)
        ok &= not problems
        print(f"(b) keep-alive, 1,000 connections, {label}: {fig['server']:,.0f} req/s server kernels "
              f"({_per(fig['server'])} ns/req: input {_ns(fig['rx'])}, timers {_ns(fig['timers'])}, "
              f"output {_ns(fig['work'])}); {fig['total']:,.0f} req/s with the client generator "
              f"(generator {_ns(fig['gen'])} ns/req); {fig['n']:,} requests, {fig['frames']:.2f} frames/req; "
              f"checks {_verdict(problems)}", flush=True)

    n = 1_000_000
    fig, problems = bench_memory(cfg, clock, n)
    ok &= not problems
    mib = 1 << 20
    print(f"(c) memory: {memory_per_connection():,} bytes/connection preallocated "
          f"({memory_per_connection() * n / mib:,.0f} MiB for {n:,}); measured RSS growth "
          f"{fig['total'] / n:,.0f} bytes/connection with {n:,} keep-alive connections held "
          f"(after one request each): {fig['total'] / mib:,.0f} MiB "
          f"({fig['built'] / mib:,.0f} MiB at build, {fig['grown'] / mib:,.0f} MiB as they opened, "
          f"in {fig['seconds']:.1f} s, {fig['rate']:,.0f} conn/s with the generator); "
          f"checks {_verdict(problems)}", flush=True)
    return 0 if ok else 1
