"""The role's application behind a connection: the HTTP server's or the client's, by P_ROLE.

`app` calls these for a plain connection, and `tls_layer` calls them with
the plaintext of a TLS one, so neither knows which role runs.
"""
from nperf.kernels import client_app, server_app
from nperf.kernels.jit import inline, step
from nperf.kernels.stack import P_ROLE, SERVER
from nperf.kernels.tcp_table import F_FIN_QUEUED, T_FLAGS


@step
def role_input(s, c, b, start, n, now):
    """In-order bytes b[start:start+n] for c's application; returns how many it took."""
    if s.params[P_ROLE] != SERVER:
        return client_app.client_input(s, c, b, start, n, now)
    return server_app.server_input(s, c, b, start, n, now)


@inline
def role_message_copy(s, c, j, offset, out, pos, n):
    """Bytes [offset, offset+n) of c's queued message j into out[pos:]."""
    if s.params[P_ROLE] != SERVER:
        client_app.message_copy(s, c, j, offset, out, pos, n)
    else:
        server_app.message_copy(s, c, j, offset, out, pos, n)


@inline
def role_established(s, c, now):
    """c can carry the application's bytes now: a client starts its first request."""
    if s.params[P_ROLE] != SERVER:
        client_app.next_step(s, c, now)


@inline
def role_peer_closed(s, c, now):
    """The peer has no more to send: close too, after what is still owed."""
    if s.params[P_ROLE] != SERVER:
        client_app.client_peer_closed(s, c, now)
    else:
        s.tcb[c, T_FLAGS] |= F_FIN_QUEUED


@inline
def role_closed(s, c, how, now):
    """c is gone (how: tcp_table.END_*)."""
    if s.params[P_ROLE] != SERVER:
        client_app.client_closed(s, c, how, now)


@inline
def role_idle(s, c):
    """c has been idle for P_IDLE_US: True to abort it (a client may keep it)."""
    if s.params[P_ROLE] != SERVER:
        return client_app.client_idle(s, c)
    return True
