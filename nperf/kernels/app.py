"""The application side of a connection: the hooks TCP calls, sent to the role's application.

TCP calls these hooks; they keep no message bytes. The server's side is
`server_app`, the client's `client_app`; both queue what they send through
`send_queue`, and TCP asks for any byte range of the stream through
`app_copy`, which regenerates it from the queued messages.

`s.app` is a `stack.App`: the response table and an events scratch for
the server, the request table, schedule, histograms, idle list and UDP
payload for the client (see `nperf.roles.worker_stack`).
"""
from nperf.kernels import client_app, server_app
from nperf.kernels.jit import inline, step
from nperf.kernels.stack import P_ROLE, SERVER
from nperf.kernels.tcp_table import APPQ, F_FIN_QUEUED, T_FLAGS, T_Q_HEAD, T_Q_LEN, T_Q_START, T_Q_TAIL


@step
def app_input(s, c, b, start, n, now):
    """In-order bytes b[start:start+n] arrived on c; returns how many were taken."""
    if s.params[P_ROLE] != SERVER:
        return client_app.client_input(s, c, b, start, n, now)
    return server_app.server_input(s, c, b, start, n, now)


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
    if s.params[P_ROLE] != SERVER:
        client_app.message_copy(s, c, j, offset, out, pos, n)
    else:
        server_app.message_copy(s, c, j, offset, out, pos, n)


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
