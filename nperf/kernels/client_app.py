"""The HTTP client's side of a connection: requests out, responses in, every outcome counted.

A client connection sends one request at a time (`requests_per_connection`
of them, the last with `Connection: close`), parses each response in place,
records its latency from the request's *intended* start (the rate limiter's
schedule, so a slow server cannot hide its queueing: no coordinated
omission), then sends the next request, waits for the rate limiter, or closes.
A response that ends the connection (`Connection: close`, HTTP/1.0 without
keep-alive, a body read until close) is a success: the connection sends
nothing more and the scheduler opens a new one.

Accounting (checked by the tests, shown in every report): every connection
the scheduler opens ends exactly once, as closed_ok or as one failure cause,
and every request sent ends exactly once, as ok, as one failure cause, or as
`retried` (RFC 9112 9.3.1: a request that a *reused* connection lost before
any byte of its response, because the server closed it just then, is sent
once more on a new connection, keeping its intended start time):

    connections_opened = connections_closed_ok + connections_failed + open_now
    requests_sent = responses_ok + responses_failed + retried + outstanding_now

Per-connection words: T_USER = requests sent, T_APP_T = the outstanding
request's intended start (while idle: the server's keep-alive deadline, or
0), T_APP_DONE = CF_* bits.
"""
import numpy as np

from nperf.kernels import http_client as hc
from nperf.kernels import latency, send_queue
from nperf.kernels.jit import inline, inline_view, kernel, step
from nperf.kernels.stack import C_RING_OVERFLOW, P_ROLE, client_counters, http_client_counters
from nperf.kernels.tcp_table import (
    APPQ, APP_WORDS, END_ABORT, END_CLOSED, END_RESET, END_TLS_FAILED, ESTABLISHED, F_FIN_QUEUED, SYN_SENT, T_APP,
    T_APP_DONE, T_APP_T, T_FLAGS, T_Q_FLAGS, T_Q_KIND, T_Q_TAIL, T_RIP, T_RIP_HI, T_RPORT, T_STATE, T_USER)

# rows of s.app.hists
HIST_SECOND, HIST_SUSTAIN = 0, 1

# T_APP_DONE bits
CF_COUNTED = 1        # counted in K_ACTIVE
CF_REQ_OUT = 2        # a request is outstanding
CF_CLOSING = 4        # the scheduler is closing it (counted in K_CLOSING)
CF_LAST = 8           # no further request on this connection (the last was sent, or the server closes)
CF_HEAD = 16          # the outstanding request is a HEAD request
CF_ANSWERED = 32      # a byte of the outstanding request's response has arrived

# objective types
O_HTTP_REQUESTS, O_TCP_CONCURRENT, O_TOTAL_CONNECTIONS, O_UDP_STREAM = range(4)

SCHED_WORDS = (                 # the scheduler's words (s.app.sched; built by nperf.roles.worker_stack)
    "type",             # the objective: O_* below
    "value",            # the objective's value (connections, requests/s, concurrency or datagrams/s)
    "rpc",              # requests per connection
    "interval_ns",      # between paced requests (or datagrams); 0: not paced
    "next_ns",          # when the next paced request is due
    "start",            # when the run began (us); -1: not yet
    "ph_prepare",       # when each phase ends, from the start (us): prepare,
    "ph_ramp_up",       #   ramp-up,
    "ph_sustain",       #   sustain,
    "ph_ramp_down",     #   ramp-down,
    "ph_close",         #   close
    "phase",            # the current phase: PH_* below
    "target",           # connections the current phase wants open
    "active",           # connections counted open (CF_COUNTED)
    "closing",          #   of which the scheduler is closing (CF_CLOSING)
    "opened",           # connections opened so far
    "cursor",           # the next destination / source pair to try
    "paths",            # configured request paths
    "path_next",        # the next path to request (round robin)
    "dip_first",        # the first destination address
    "dip_count",        #   and how many
    "dport_first",      # the first destination port
    "dport_count",      #   and how many
    "conc_cap",         # most connections open at once
    "idle_head",        # the ring of idle kept-alive connections: read position
    "idle_tail",        #   and write position
    "scan",             # the table row where the next scan for connections to close starts
    "finished",         # 1: the objective is met and every connection closed
    "outstanding",      # requests sent and not yet answered or failed
    "retry_on",         # 1: retry a request lost to a server's keep-alive close (http_config.retry_reused)
    "retry_head",       # the ring of requests to retry: read position
    "retry_tail",       #   and write position
    "dip6_hi",          # the IPv6 destinations (a client of both families has both kinds): high word
    "dip6_first",       #   the first one's low word
    "dip6_count",       #   and how many (the IPv4 ones: dip_first, dip_count)
)
(K_TYPE, K_VALUE, K_RPC, K_INTERVAL_NS, K_NEXT_NS, K_START, K_PH_PREPARE, K_PH_RAMP_UP, K_PH_SUSTAIN,
 K_PH_RAMP_DOWN, K_PH_CLOSE, K_PHASE, K_TARGET, K_ACTIVE, K_CLOSING, K_OPENED, K_CURSOR, K_PATHS,
 K_PATH_NEXT, K_DIP_FIRST, K_DIP_COUNT, K_DPORT_FIRST, K_DPORT_COUNT, K_CONC_CAP, K_IDLE_HEAD, K_IDLE_TAIL,
 K_SCAN, K_FINISHED, K_OUTSTANDING, K_RETRY_ON, K_RETRY_HEAD, K_RETRY_TAIL, K_DIP6_HI, K_DIP6_FIRST,
 K_DIP6_COUNT) = range(len(SCHED_WORDS))
N_SCHED = len(SCHED_WORDS)
PH_PREPARE, PH_RAMP_UP, PH_SUSTAIN, PH_RAMP_DOWN, PH_CLOSE, PH_DONE = range(6)
PHASE_NAMES = ("prepare", "ramp-up", "sustain", "ramp-down", "close", "done")

RETRY_WORDS = (                 # s.app.retry: one row per request waiting for a new connection
    "kind",         # its request template (path index)
    "start",        # its intended start (us), from which its latency counts
)
RT_KIND, RT_START = range(len(RETRY_WORDS))

KA_MARGIN_US = 100_000    # an idle connection is not reused this close to the server's keep-alive timeout

CLIENT_COUNTER_NAMES = (
    "connections_opened", "requests_sent", "responses_ok", "responses_failed",
    # why requests failed (they add up to responses_failed)
    "bad_status", "malformed", "reset", "response_timeout", "closed_early", "aborted_at_exit",
    # how connections ended (opened = closed_ok + failed + open now)
    "connections_closed_ok", "connections_failed",
    # why connections failed (they add up to connections_failed)
    "connect_timeout", "connect_refused", "connection_reset", "connection_timeout", "connection_aborted",
    "tls_failed",       # the TLS handshake failed (its cause: the stack's tls_failed_* counters)
    # failures that are not a connection: a destination without ARP answer, a turn that found every
    # source pair it tried held (no_source_pair: the source space is too small for the load)
    "arp_failed", "no_source_pair",
    # not failures
    "retried", "unsolicited", "keepalive_closed", "udp_sent",
    # a source pair opened again sooner than the peer's TIME-WAIT (P_PEER_TIME_WAIT_US) after its last use
    "pair_reused_early",
    # a source pair skipped because a connection still held it (the next pair is taken)
    "source_pair_busy",
    # a connection that ended cleanly before it carried a request: established as the close phase
    # began, shed by the scheduler, or held on purpose (TCP_CONCURRENT)
    "closed_unused",
    # the share of IPv6 destinations in connections_opened, connections_failed, responses_ok and
    # responses_failed (the report's `families`; a request that failed waiting for a retry has none)
    "ipv6_connections_opened", "ipv6_connections_failed", "ipv6_responses_ok", "ipv6_responses_failed",
)
(CC_OPENED, CC_REQUESTS, CC_OK, CC_FAILED,
 CC_BAD_STATUS, CC_MALFORMED, CC_RESET, CC_RESPONSE_TIMEOUT, CC_CLOSED_EARLY, CC_ABORTED_AT_EXIT,
 CC_CLOSED_OK, CC_CONN_FAILED,
 CC_CONNECT_TIMEOUT, CC_CONNECT_REFUSED, CC_CONNECTION_RESET, CC_CONNECTION_TIMEOUT, CC_CONNECTION_ABORTED,
 CC_TLS_FAILED, CC_ARP_FAILED, CC_NO_SOURCE_PAIR,
 CC_RETRIED, CC_UNSOLICITED, CC_KEEPALIVE_CLOSED, CC_UDP_SENT, CC_PAIR_REUSED_EARLY, CC_SOURCE_PAIR_BUSY,
 CC_CLOSED_UNUSED, CC_V6_OPENED, CC_V6_CONN_FAILED, CC_V6_OK, CC_V6_FAILED) = range(len(CLIENT_COUNTER_NAMES))
N_CLIENT_COUNTERS = len(CLIENT_COUNTER_NAMES)
REQUEST_CAUSES = (CC_BAD_STATUS, CC_ABORTED_AT_EXIT + 1)          # [first, end) of request failure causes
CONNECTION_CAUSES = (CC_CONNECT_TIMEOUT, CC_TLS_FAILED + 1)
# "fail" as the per-second line and the headline count it: failed requests, and attempts that never
# carried one (a connection lost while established usually failed its request too: counted once)
FAILURES = (CC_FAILED, CC_CONNECT_TIMEOUT, CC_CONNECT_REFUSED, CC_ARP_FAILED, CC_NO_SOURCE_PAIR)
FAILED_AT_ALL = (CC_FAILED, CC_CONN_FAILED, CC_ARP_FAILED, CC_NO_SOURCE_PAIR)     # any makes the run fail

CLIENT = 1


@inline_view
def _cc(s):
    return client_counters(s)


@inline
def _send(s, c, path, start):
    """Queue request `path` on c, timed from `start` (us)."""
    t = s.tcb
    k = s.app.sched
    n = t[c, T_USER] + 1
    last = k[K_RPC] <= 1 or n >= k[K_RPC]
    length = hc.request_length(s.app.requests, path, last, t[c, T_RIP_HI], t[c, T_RIP], t[c, T_RPORT])
    send_queue.push(t, c, path, 1 if last else 0, length)
    t[c, T_USER] = n
    t[c, T_APP_T] = start
    t[c, T_APP_DONE] = (t[c, T_APP_DONE] & ~(CF_HEAD | CF_ANSWERED)) | CF_REQ_OUT | (CF_LAST if last else 0) \
        | (CF_HEAD if hc.request_is_head(s.app.requests, path) else 0)
    k[K_OUTSTANDING] += 1
    _cc(s)[CC_REQUESTS] += 1


@inline
def message_copy(s, c, j, offset, out, pos, n):
    """Bytes [offset, offset+n) of queued request j of c into out[pos:]."""
    t = s.tcb
    hc.request_copy(s.app.requests, t[c, T_Q_KIND + j], t[c, T_Q_FLAGS + j], t[c, T_RIP_HI], t[c, T_RIP],
                    t[c, T_RPORT], offset, out, pos, n)


@step
def send_request(s, c, start):
    """Queue the connection's next request (the paths in turn), timed from `start` (us)."""
    k = s.app.sched
    path = k[K_PATH_NEXT] % k[K_PATHS]
    k[K_PATH_NEXT] += 1
    _send(s, c, path, start)


@inline
def retries_pending(s):
    k = s.app.sched
    return k[K_RETRY_TAIL] - k[K_RETRY_HEAD]


@inline
def _retry_later(s, c):
    """Keep c's outstanding request (path, intended start) for the next new connection."""
    t = s.tcb
    k = s.app.sched
    ring = s.app.retry
    j = k[K_RETRY_TAIL] % ring.shape[0]
    ring[j, RT_KIND] = t[c, T_Q_KIND + (t[c, T_Q_TAIL] - 1) % APPQ]
    ring[j, RT_START] = t[c, T_APP_T]
    k[K_RETRY_TAIL] += 1


@inline
def _send_retry(s, c):
    """Send the oldest request waiting for a retry on c (it is settled as `retried`)."""
    k = s.app.sched
    ring = s.app.retry
    j = k[K_RETRY_HEAD] % ring.shape[0]
    k[K_RETRY_HEAD] += 1
    k[K_OUTSTANDING] -= 1
    _cc(s)[CC_RETRIED] += 1
    _send(s, c, ring[j, RT_KIND], ring[j, RT_START])


@kernel
def drop_retries(s):
    """At exit: requests still waiting for a retry failed (aborted_at_exit); returns how many."""
    k = s.app.sched
    cc = _cc(s)
    n = retries_pending(s)
    k[K_RETRY_HEAD] = k[K_RETRY_TAIL]
    k[K_OUTSTANDING] -= n
    cc[CC_FAILED] += n
    cc[CC_ABORTED_AT_EXIT] += n
    return n


@inline
def _idle_push(s, c):
    """Queue idle c for the rate limiter. An idle connection is queued once (it is queued again only
    after it sent a request, which takes it off); entries of connections closed meanwhile stay
    behind until the limiter skips them. Were the ring (2 x rows + 64) ever full, the oldest entry
    goes (counted): a closed one, or an idle connection that then waits for its keep-alive timer."""
    k = s.app.sched
    fifo = s.app.idle
    if k[K_IDLE_TAIL] - k[K_IDLE_HEAD] == fifo.shape[0]:
        s.counters[C_RING_OVERFLOW] += 1
        k[K_IDLE_HEAD] += 1
    fifo[k[K_IDLE_TAIL] % fifo.shape[0]] = c
    k[K_IDLE_TAIL] += 1


@inline
def _closing(s, c):
    """The scheduler counts c as going away (a replacement may open); nothing more is sent on it."""
    t = s.tcb
    t[c, T_APP_DONE] |= CF_LAST
    if not t[c, T_APP_DONE] & CF_CLOSING:
        t[c, T_APP_DONE] |= CF_CLOSING
        s.app.sched[K_CLOSING] += 1


@inline
def _close(s, c):
    """Close c from our side (FIN after what is queued); TCP's caller schedules output."""
    _closing(s, c)
    s.tcb[c, T_FLAGS] |= F_FIN_QUEUED


@inline
def _excess(s):
    k = s.app.sched
    return k[K_ACTIVE] - k[K_CLOSING] > k[K_TARGET]


@step
def next_step(s, c, now):
    """After the handshake or a response: a retry, the next request, a wait for the rate limiter, or close."""
    t = s.tcb
    k = s.app.sched
    if k[K_TYPE] == O_TCP_CONCURRENT:
        return
    if t[c, T_APP_DONE] & (CF_LAST | CF_CLOSING):
        return                      # the server closes after the last response; or we are closing
    if retries_pending(s) > 0 and k[K_PHASE] < PH_CLOSE:
        _send_retry(s, c)
    elif _excess(s) or k[K_PHASE] >= PH_CLOSE:
        _close(s, c)
    elif k[K_INTERVAL_NS] > 0:
        _idle_push(s, c)
    else:
        send_request(s, c, now)


@inline
def _response(s, c, ev, now):
    """The outstanding request of c is settled by a response event (hc.EV_*)."""
    t = s.tcb
    k = s.app.sched
    cc = _cc(s)
    v = now - t[c, T_APP_T]
    latency.record(s.app.hists[HIST_SECOND], v)
    if k[K_PHASE] == PH_SUSTAIN:
        latency.record(s.app.hists[HIST_SUSTAIN], v)
    t[c, T_APP_DONE] &= ~CF_REQ_OUT
    k[K_OUTSTANDING] -= 1
    v6 = np.int64(t[c, T_RIP_HI] != 0)
    if ev == hc.EV_OK:
        cc[CC_OK] += 1
        cc[CC_V6_OK] += v6
    else:
        cc[CC_FAILED] += 1
        cc[CC_V6_FAILED] += v6
        if ev == hc.EV_BAD_STATUS:
            cc[CC_BAD_STATUS] += 1
        elif ev == hc.EV_TRUNCATED:
            cc[CC_CLOSED_EARLY] += 1
        else:
            cc[CC_MALFORMED] += 1
    ka = hc.client_keepalive_timeout(t[c, T_APP:T_APP + APP_WORDS])
    t[c, T_APP_T] = now + ka * 1_000_000 - KA_MARGIN_US if ka > 0 else 0


@step
def client_input(s, c, b, start, n, now):
    """Response bytes b[start:start+n] of c: parse them all (nothing is kept)."""
    t = s.tcb
    i = start
    end = start + n
    t[c, T_APP_DONE] |= CF_ANSWERED
    while i < end:
        head = (t[c, T_APP_DONE] & CF_HEAD) != 0
        i, ev = hc.client_parse_memo(s.app.memo, t[c, T_APP:T_APP + APP_WORDS], b, i, end,
                                     http_client_counters(s), head)
        if ev == hc.EV_NONE:
            break
        if not t[c, T_APP_DONE] & CF_REQ_OUT:
            _cc(s)[CC_UNSOLICITED] += 1     # a response nobody asked for: not ours to count as a result
            _close(s, c)
            return n
        _response(s, c, ev, now)
        if ev == hc.EV_MALFORMED:
            _close(s, c)
            return n
        if hc.client_close_requested(t[c, T_APP:T_APP + APP_WORDS]):
            _closing(s, c)                  # the server closes: wait for its FIN, send nothing more
            return n
        next_step(s, c, now)
    return n


@step
def keepalive_expired(s, c, now):
    """An idle connection about to be reused: True (and closed) if the server's keep-alive ran out."""
    t = s.tcb
    if t[c, T_APP_T] == 0 or now < t[c, T_APP_T]:
        return False
    _cc(s)[CC_KEEPALIVE_CLOSED] += 1
    _close(s, c)
    return True


@step
def client_peer_closed(s, c, now):
    """The server closed: a response delimited by the close is complete; we close too."""
    t = s.tcb
    if t[c, T_APP_DONE] & CF_REQ_OUT:
        ev = hc.client_eof(t[c, T_APP:T_APP + APP_WORDS], http_client_counters(s))
        if ev != hc.EV_NONE:
            _response(s, c, ev, now)
    _close(s, c)


@inline
def _retry_allowed(s, c):
    """The keep-alive race: a reused connection lost the request before any byte of its response."""
    t = s.tcb
    if retries_pending(s) == s.app.retry.shape[0]:
        # never expected: each established connection sends a waiting retry before anything else,
        # so at most one is waiting per connection row (the ring has rows + 64); counted, and failed
        s.counters[C_RING_OVERFLOW] += 1
        return False
    return s.app.sched[K_RETRY_ON] != 0 and t[c, T_USER] > 1 and not t[c, T_APP_DONE] & CF_ANSWERED


@step
def client_closed(s, c, how, now):
    """c is gone (how: tcp_table.END_*): settle the connection and its outstanding request, once each."""
    t = s.tcb
    k = s.app.sched
    cc = _cc(s)
    d = t[c, T_APP_DONE]
    if d & CF_COUNTED:
        k[K_ACTIVE] -= 1
    if d & CF_CLOSING:
        k[K_CLOSING] -= 1
    t[c, T_APP_DONE] = 0
    if not d & CF_COUNTED:
        return
    v6 = np.int64(t[c, T_RIP_HI] != 0)
    if t[c, T_STATE] == SYN_SENT:
        cc[CC_CONN_FAILED] += 1
        cc[CC_V6_CONN_FAILED] += v6
        cc[CC_CONNECT_REFUSED if how == END_RESET else CC_CONNECTION_ABORTED if how == END_ABORT
           else CC_CONNECT_TIMEOUT] += 1
        return
    failed = False
    if d & CF_REQ_OUT:
        if (how == END_RESET or how == END_CLOSED) and _retry_allowed(s, c):
            _retry_later(s, c)            # still outstanding until it is sent again
        else:
            k[K_OUTSTANDING] -= 1
            cc[CC_FAILED] += 1
            cc[CC_V6_FAILED] += v6
            cc[CC_RESET if how == END_RESET else CC_CLOSED_EARLY if how == END_CLOSED
               else CC_ABORTED_AT_EXIT if how == END_ABORT else CC_RESPONSE_TIMEOUT] += 1
            failed = how != END_CLOSED
    elif how == END_RESET or how == END_ABORT:
        failed = how == END_RESET and not d & CF_CLOSING    # a reset of a connection we were done with is no failure
    elif how != END_CLOSED:
        failed = True
    if failed:
        cc[CC_CONN_FAILED] += 1
        cc[CC_V6_CONN_FAILED] += v6
        cc[CC_CONNECTION_RESET if how == END_RESET else CC_CONNECTION_ABORTED if how == END_ABORT
           else CC_TLS_FAILED if how == END_TLS_FAILED else CC_CONNECTION_TIMEOUT] += 1
    else:
        cc[CC_CLOSED_OK] += 1
        if t[c, T_USER] == 0:
            cc[CC_CLOSED_UNUSED] += 1


@step
def client_idle(s, c):
    """The TCP idle timer ran out on c: True to abort it. A client keeps an established connection
    that owes and awaits nothing (TCP_CONCURRENT holds them on purpose); anything else has timed out."""
    t = s.tcb
    return t[c, T_STATE] != ESTABLISHED or (t[c, T_APP_DONE] & (CF_REQ_OUT | CF_CLOSING)) != 0


@step
def is_client(s):
    return s.params[P_ROLE] == CLIENT
