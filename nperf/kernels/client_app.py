"""The HTTP client's side of a connection: requests out, responses in, failures by cause.

A client connection sends one request at a time (`requests_per_connection`
of them, the last with `Connection: close`), parses each response in place,
records its latency from the request's *intended* start (the rate limiter's
schedule, so a slow server cannot hide its queueing: no coordinated
omission), then sends the next request, waits for the rate limiter, or closes.
Per-connection words: T_USER = requests sent, T_APP_T = the outstanding
request's intended start, T_APP_DONE = CL_* bits.
"""
from nperf.kernels import http_client as hc
from nperf.kernels import latency
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import P_ROLE, client_counters, http_client_counters
from nperf.kernels.tcp_table import (
    APPQ, APP_WORDS, CLOSED, END_CLOSED, END_RESET, F_FIN_QUEUED, SYN_SENT, T_APP, T_APP_DONE, T_APP_T,
    T_FLAGS, T_Q_FLAGS, T_Q_KIND, T_Q_LEN, T_Q_START, T_Q_TAIL, T_RIP, T_RPORT, T_SND_END, T_STATE, T_USER)

# rows of s.app.hists
H_SECOND, H_SUSTAIN = 0, 1

# T_APP_DONE bits
CL_COUNTED = 1        # counted in K_ACTIVE
CL_REQ_OUT = 2        # a request is outstanding
CL_CLOSING = 4        # the scheduler is closing it (counted in K_CLOSING)
CL_LAST = 8           # the last request (Connection: close) was sent

# objective types
O_HTTP_REQUESTS, O_TCP_CONCURRENT, O_TOTAL_CONNECTIONS, O_UDP_STREAM = range(4)

# scheduler words
(K_TYPE, K_VALUE, K_RPC, K_INTERVAL_NS, K_NEXT_NS, K_START, K_PH_PREPARE, K_PH_RAMP_UP, K_PH_SUSTAIN,
 K_PH_RAMP_DOWN, K_PH_CLOSE, K_PHASE, K_TARGET, K_ACTIVE, K_CLOSING, K_OPENED, K_CURSOR, K_PATHS,
 K_PATH_NEXT, K_DIP_FIRST, K_DIP_COUNT, K_DPORT_FIRST, K_DPORT_COUNT, K_CONC_CAP, K_IDLE_HEAD, K_IDLE_TAIL,
 K_SCAN, K_FINISHED, N_SCHED) = range(29)
PH_PREPARE, PH_RAMP_UP, PH_SUSTAIN, PH_RAMP_DOWN, PH_CLOSE, PH_DONE = range(6)
PHASE_NAMES = ("prepare", "ramp-up", "sustain", "ramp-down", "close", "done")

CLIENT_COUNTER_NAMES = (
    "connections_opened", "requests_sent", "responses_ok", "responses_failed",
    "connect_timeout", "connect_refused", "reset", "response_timeout", "bad_status", "malformed",
    "closed_early", "arp_failed", "udp_sent", "no_source_pair",
)
(CC_OPENED, CC_REQUESTS, CC_OK, CC_FAILED, CC_CONNECT_TIMEOUT, CC_CONNECT_REFUSED, CC_RESET,
 CC_RESPONSE_TIMEOUT, CC_BAD_STATUS, CC_MALFORMED, CC_CLOSED_EARLY, CC_ARP_FAILED, CC_UDP_SENT,
 CC_NO_SOURCE_PAIR) = range(14)
N_CLIENT_COUNTERS = len(CLIENT_COUNTER_NAMES)
ERROR_FIRST = CC_CONNECT_TIMEOUT

CLIENT = 1


@inline
def _cc(s):
    return client_counters(s)


@kernel
def send_request(s, c, start):
    """Queue the connection's next request, timed from `start` (us)."""
    t = s.tcb
    k = s.app.sched
    paths = k[K_PATHS]
    path = k[K_PATH_NEXT] % paths
    k[K_PATH_NEXT] += 1
    n = t[c, T_USER] + 1
    last = k[K_RPC] <= 1 or n >= k[K_RPC]
    length = hc.request_length(s.app.requests, path, last, t[c, T_RIP], t[c, T_RPORT])
    q = t[c, T_Q_TAIL] % APPQ
    t[c, T_Q_KIND + q] = path
    t[c, T_Q_FLAGS + q] = 1 if last else 0
    t[c, T_Q_START + q] = t[c, T_SND_END] - 1
    t[c, T_Q_LEN + q] = length
    t[c, T_Q_TAIL] += 1
    t[c, T_SND_END] += length
    t[c, T_USER] = n
    t[c, T_APP_T] = start
    t[c, T_APP_DONE] |= CL_REQ_OUT | (CL_LAST if last else 0)
    _cc(s)[CC_REQUESTS] += 1


@inline
def _idle_push(s, c):
    k = s.app.sched
    fifo = s.app.idle
    fifo[k[K_IDLE_TAIL] % fifo.shape[0]] = c
    k[K_IDLE_TAIL] += 1


@inline
def _close(s, c):
    """Close c from our side (FIN after what is queued); TCP's caller schedules output."""
    t = s.tcb
    if not t[c, T_APP_DONE] & CL_CLOSING:
        t[c, T_APP_DONE] |= CL_CLOSING
        s.app.sched[K_CLOSING] += 1
    t[c, T_FLAGS] |= F_FIN_QUEUED


@inline
def _excess(s):
    k = s.app.sched
    return k[K_ACTIVE] - k[K_CLOSING] > k[K_TARGET]


@kernel
def next_step(s, c, now):
    """After the handshake or a response: the next request, a wait for the rate limiter, or close."""
    t = s.tcb
    k = s.app.sched
    if k[K_TYPE] == O_TCP_CONCURRENT:
        return
    if t[c, T_APP_DONE] & (CL_LAST | CL_CLOSING):
        return                      # the server closes after the last response; or we are closing
    if _excess(s) or k[K_PHASE] >= PH_CLOSE:
        _close(s, c)
    elif k[K_INTERVAL_NS] > 0:
        _idle_push(s, c)
    else:
        send_request(s, c, now)


@inline
def _response(s, c, ev, now):
    t = s.tcb
    k = s.app.sched
    cc = _cc(s)
    v = now - t[c, T_APP_T]
    latency.record(s.app.hists[H_SECOND], v)
    if k[K_PHASE] == PH_SUSTAIN:
        latency.record(s.app.hists[H_SUSTAIN], v)
    t[c, T_APP_DONE] &= ~CL_REQ_OUT
    if ev == hc.EV_OK:
        cc[CC_OK] += 1
    else:
        cc[CC_FAILED] += 1
        cc[CC_BAD_STATUS if ev == hc.EV_BAD_STATUS else CC_MALFORMED] += 1


@kernel
def client_input(s, c, b, start, n, now):
    """Response bytes b[start:start+n] of c: parse them all (nothing is kept)."""
    t = s.tcb
    i = start
    end = start + n
    while i < end:
        i, ev = hc.client_parse(t[c, T_APP:T_APP + APP_WORDS], b, i, end, http_client_counters(s))
        if ev == hc.EV_NONE:
            break
        if not t[c, T_APP_DONE] & CL_REQ_OUT:
            _cc(s)[CC_MALFORMED] += 1       # a response nobody asked for
            _close(s, c)
            return n
        _response(s, c, ev, now)
        if ev == hc.EV_MALFORMED:
            _close(s, c)
            return n
        next_step(s, c, now)
    return n


@kernel
def client_peer_closed(s, c, now):
    """The server closed: a response delimited by the close is complete; we close too."""
    t = s.tcb
    if t[c, T_APP_DONE] & CL_REQ_OUT:
        ev = hc.client_eof(t[c, T_APP:T_APP + APP_WORDS], http_client_counters(s))
        if ev != hc.EV_NONE:
            _response(s, c, ev, now)
    _close(s, c)


@kernel
def client_closed(s, c, how, now):
    """c is gone (how: tcp_table.END_*): settle its counts and failures."""
    t = s.tcb
    k = s.app.sched
    cc = _cc(s)
    d = t[c, T_APP_DONE]
    if d & CL_COUNTED:
        k[K_ACTIVE] -= 1
    if d & CL_CLOSING:
        k[K_CLOSING] -= 1
    if t[c, T_STATE] == SYN_SENT:
        cc[CC_CONNECT_REFUSED if how == END_RESET else CC_CONNECT_TIMEOUT] += 1
    elif d & CL_REQ_OUT:
        cc[CC_FAILED] += 1
        if how == END_RESET:
            cc[CC_RESET] += 1
        elif how == END_CLOSED:
            cc[CC_CLOSED_EARLY] += 1
        else:
            cc[CC_RESPONSE_TIMEOUT] += 1
    t[c, T_APP_DONE] = 0


@kernel
def settle_unfinished(s):
    """At the end of a run: requests still without a response are response timeouts."""
    t = s.tcb
    cc = _cc(s)
    n = 0
    for c in range(t.shape[0]):
        if t[c, T_STATE] != CLOSED and t[c, T_APP_DONE] & CL_REQ_OUT:
            t[c, T_APP_DONE] &= ~CL_REQ_OUT
            cc[CC_FAILED] += 1
            cc[CC_RESPONSE_TIMEOUT] += 1
            n += 1
    return n


@kernel
def is_client(s):
    return s.params[P_ROLE] == CLIENT
