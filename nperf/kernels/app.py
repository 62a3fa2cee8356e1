"""The application side of a connection: HTTP over the TCP kernels.

TCP calls these hooks; they keep no message bytes. Each connection has a
queue of at most APPQ messages it sends (`q_kind`, `q_flags`, `q_start`
stream offset, `q_len`): the server's responses in request order, or the
client's requests (`client_app`). TCP frees a queue entry once the peer has
acknowledged all of it, and asks for any byte range of the stream through
`app_copy`.

`s.app` is a `stack.App`: the response table and an events scratch for
the server, the request table, schedule, histograms, idle list and UDP
payload for the client (see `nperf.worker_stack`).
"""
from nperf.kernels import client_app, net
from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs
from nperf.kernels.jit import inline, kernel, step
from nperf.kernels.stack import C_DROP_PROTOCOL, C_DROP_UDP_CHECKSUM, C_UDP_BYTES_IN, C_UDP_IN, P_PORT_FIRST, \
    P_PORT_LAST, P_ROLE, SERVER, http_server_counters
from nperf.kernels.tcp_table import (
    APPQ, APP_WORDS, F_FIN_QUEUED, T_APP, T_FLAGS, T_Q_FLAGS, T_Q_HEAD, T_Q_KIND, T_Q_LEN, T_Q_START,
    T_Q_TAIL, T_RIP, T_RPORT, T_SND_END)



@inline
def _enqueue(s, c, kind, flags, length):
    t = s.tcb
    k = t[c, T_Q_TAIL] % APPQ
    t[c, T_Q_KIND + k] = kind
    t[c, T_Q_FLAGS + k] = flags
    t[c, T_Q_START + k] = t[c, T_SND_END] - 1
    t[c, T_Q_LEN + k] = length
    t[c, T_Q_TAIL] += 1
    t[c, T_SND_END] += length


@step
def app_input(s, c, b, start, n, now):
    """In-order bytes b[start:start+n] arrived on c; returns how many were taken."""
    t = s.tcb
    if s.params[P_ROLE] != SERVER:
        return client_app.client_input(s, c, b, start, n, now)
    room = APPQ - (t[c, T_Q_TAIL] - t[c, T_Q_HEAD])
    if room == 0:
        return 0
    table = s.app.responses
    events = s.app.events
    end, nev = hs.server_parse(t[c, T_APP:T_APP + APP_WORDS], b, start, start + n, table, events[:room],
                               http_server_counters(s))
    for e in range(nev):
        kind = events[e, 0]
        flags = events[e, 1]
        _enqueue(s, c, kind, flags, hs.response_length(table, kind, flags))
        if flags & hs.FLAG_CLOSE:
            t[c, T_FLAGS] |= F_FIN_QUEUED
    return end - start


@step
def app_copy(s, c, off, out, pos, n):
    """Stream bytes [off, off+n) of c into out[pos:]: its queued messages, regenerated."""
    t = s.tcb
    k = t[c, T_Q_HEAD]
    while n > 0 and k < t[c, T_Q_TAIL]:
        j = k % APPQ
        first = t[c, T_Q_START + j]
        length = t[c, T_Q_LEN + j]
        if off < first + length:
            take = min(n, first + length - off)
            _message_copy(s, c, j, off - first, out, pos, take)
            pos += take
            off += take
            n -= take
        k += 1


@inline
def _message_copy(s, c, j, offset, out, pos, n):
    """Bytes of queued message j: a response (server) or a request (client) template."""
    t = s.tcb
    if s.params[P_ROLE] == SERVER:
        hs.response_copy(s.app.responses, t[c, T_Q_KIND + j], t[c, T_Q_FLAGS + j], offset, out, pos, n)
    else:
        hc.request_copy(s.app.requests, t[c, T_Q_KIND + j], t[c, T_Q_FLAGS + j], t[c, T_RIP], t[c, T_RPORT],
                        offset, out, pos, n)


@inline
def app_established(s, c, now):
    """The handshake completed: a client starts its first request."""
    if s.params[P_ROLE] != SERVER:
        client_app.next_step(s, c, now)


@inline
def app_peer_closed(s, c, now):
    """The peer sent FIN: close too, after what is still owed."""
    if s.params[P_ROLE] != SERVER:
        client_app.client_peer_closed(s, c, now)
    else:
        s.tcb[c, T_FLAGS] |= F_FIN_QUEUED


@inline
def app_closed(s, c, how, now):
    """c is gone (how: tcp_table.END_*)."""
    if s.params[P_ROLE] != SERVER:
        client_app.client_closed(s, c, how, now)


@inline
def app_idle(s, c):
    """c has been idle for P_IDLE_US: True to abort it (a client may keep it)."""
    if s.params[P_ROLE] != SERVER:
        return client_app.client_idle(s, c)
    return True


@kernel
def udp_input(s, b, n, ihl, ip_len, now):
    """A server counts the datagrams of UDP_STREAM sent to its ports (checksum verified)."""
    o = net.ETH_LEN + ihl
    ulen = ip_len - ihl
    if s.params[P_ROLE] != SERVER or ulen < 8 or net.get16(b, o + 4) != ulen:
        s.counters[C_DROP_PROTOCOL] += 1
        return
    if net.get16(b, o + 6) != 0 and net.fold(net.sum16(b, o, ulen, net.pseudo_sum(
            net.get32(b, net.ETH_LEN + 12), net.get32(b, net.ETH_LEN + 16), net.PROTO_UDP, ulen))) != 0:
        s.counters[C_DROP_UDP_CHECKSUM] += 1
        return
    if not s.params[P_PORT_FIRST] <= net.get16(b, o + 2) <= s.params[P_PORT_LAST]:
        s.counters[C_DROP_PROTOCOL] += 1
        return
    s.counters[C_UDP_IN] += 1
    s.counters[C_UDP_BYTES_IN] += ulen - 8

