"""The application side of a connection: the hooks TCP calls.

A plain connection goes straight to its role's application (`role_app`:
the HTTP server's `server_app` or the client's `client_app`); a TLS one
(`T_TLS` set, see `tls_layer`) goes through OpenSSL first. Neither keeps
message bytes of a plain connection: both queue what they send through
`send_queue`, and TCP asks for any byte range of the stream through
`app_copy`, which regenerates it from the queued messages (or, over TLS,
copies it from the connection's ciphertext ring).

`s.app` is a `stack.App`: the response table and an events scratch for
the server, the request table, schedule, histograms, idle list and UDP
payload for the client (see `nperf.roles.worker_stack`).
"""
from nperf.kernels import send_queue, tls_layer
from nperf.kernels.jit import inline, step
from nperf.kernels.role_app import (role_closed, role_established, role_idle, role_input, role_message_copy,
                                    role_peer_closed)
from nperf.kernels.tcp_table import APPQ, END_TLS_FAILED, T_Q_HEAD, T_Q_LEN, T_Q_START, T_Q_TAIL, T_TLS


@step
def app_input(s, c, b, start, n, now):
    """In-order bytes b[start:start+n] arrived on c; returns how many were taken."""
    if s.tcb[c, T_TLS] != 0:
        return tls_layer.tls_input(s, c, b, start, n, now)
    return role_input(s, c, b, start, n, now)


@step
def app_copy(s, c, off, out, pos, n):
    """Stream bytes [off, off+n) of c into out[pos:]: its queued messages, regenerated."""
    t = s.tcb
    if t[c, T_TLS] != 0:
        tls_layer.tls_copy(s, c, off, out, pos, n)
        return
    k = t[c, T_Q_HEAD]
    while n > 0 and k < t[c, T_Q_TAIL]:
        j = k % APPQ
        first = t[c, T_Q_START + j]
        length = t[c, T_Q_LEN + j]
        if off < first + length:
            take = min(n, first + length - off)
            role_message_copy(s, c, j, off - first, out, pos, take)
            pos += take
            off += take
            n -= take
        k += 1


@inline
def app_established(s, c, now):
    """The handshake completed; False if c cannot be served (no TLS slot: TCP resets it)."""
    if s.tls.conf[tls_layer.TC_ON] != 0:
        return tls_layer.tls_open(s, c, now)
    role_established(s, c, now)
    return True


@inline
def app_acked(s, c, ack_off):
    """The peer acknowledged c's stream up to sequence offset ack_off (over TLS the ring's bytes, freed
    by the offset alone)."""
    if s.tcb[c, T_TLS] == 0:
        send_queue.acked(s.tcb, c, ack_off)


@inline
def app_output(s, c, now):
    """TCP is about to send on c: over TLS, the application's bytes are encrypted now."""
    if s.tcb[c, T_TLS] != 0:
        tls_layer.tls_output(s, c, now)


@inline
def app_peer_closed(s, c, now):
    """The peer sent FIN: close too, after what is still owed."""
    if s.tcb[c, T_TLS] != 0:
        tls_layer.tls_peer_closed(s, c, now)
    else:
        role_peer_closed(s, c, now)


@inline
def app_closed(s, c, how, now):
    """c is gone (how: tcp_table.END_*); the role hears END_TLS_FAILED for a TLS handshake that failed."""
    if s.tcb[c, T_TLS] != 0 and tls_layer.tls_closed(s, c, how, now):
        how = END_TLS_FAILED
    role_closed(s, c, how, now)


@inline
def app_idle(s, c):
    """c has been idle for P_IDLE_US: True to abort it (a client may keep it)."""
    return role_idle(s, c)
