"""The HTTP server's side of a connection: requests in, responses queued in order.

Every complete request parsed (`http_server.server_parse`, at most as many
as the send queue has room for: a pipelining client waits for TCP to free
entries) queues one response; a request that asks to close, or a request
the server cannot parse, also queues our FIN after its response. Response
bytes come from the response table (`nperf.roles.http_tables`), never
copied per connection. The server also sinks UDP_STREAM datagrams.
"""
from nperf.kernels import http_server as hs
from nperf.kernels import net, send_queue
from nperf.kernels.jit import inline, kernel, step
from nperf.kernels.stack import C_DROP_PROTOCOL, C_DROP_UDP_CHECKSUM, C_UDP_BYTES_IN, C_UDP_IN, P_PORT_FIRST, \
    P_PORT_LAST, P_ROLE, SERVER, http_server_counters
from nperf.kernels.tcp_table import APP_WORDS, F_FIN_QUEUED, T_APP, T_FLAGS, T_Q_FLAGS, T_Q_KIND


@step
def server_input(s, c, b, start, n, now):
    """In-order request bytes b[start:start+n] arrived on c; returns how many were taken."""
    t = s.tcb
    room = send_queue.room(t, c)
    if room == 0:
        return 0
    table = s.app.responses
    events = s.app.events
    end, nev = hs.server_parse_memo(s.app.memo, t[c, T_APP:T_APP + APP_WORDS], b, start, start + n, table,
                                    events[:room], http_server_counters(s))
    for e in range(nev):
        kind = events[e, hs.E_RESPONSE]
        flags = events[e, hs.E_FLAGS]
        send_queue.push(t, c, kind, flags, hs.response_length(table, kind, flags))
        if flags & hs.FLAG_CLOSE:
            t[c, T_FLAGS] |= F_FIN_QUEUED
    return end - start


@inline
def message_copy(s, c, j, offset, out, pos, n):
    """Bytes [offset, offset+n) of queued response j of c into out[pos:]."""
    t = s.tcb
    hs.response_copy(s.app.responses, t[c, T_Q_KIND + j], t[c, T_Q_FLAGS + j], offset, out, pos, n)


@kernel
def udp_input(s, b, o, ulen, src_hi, src, dst_hi, dst, l4_csum, now):
    """A server counts the datagrams of UDP_STREAM sent to its ports: b[o:o+ulen] from (src_hi, src)
    to (dst_hi, dst), high words 0 for IPv4. The checksum is verified, by the port when l4_csum says
    so; a checksum of 0 is none over IPv4 (RFC 768) and a bad one over IPv6 (RFC 8200 8.1)."""
    if s.params[P_ROLE] != SERVER or ulen < net.UDP_LEN or net.get16(b, o + net.UDP_LENGTH) != ulen:
        s.counters[C_DROP_PROTOCOL] += 1
        return
    if (net.get16(b, o + net.UDP_CHECKSUM) != 0 or dst_hi != 0) and net.checksum_bad(
            l4_csum, b, o, ulen, net.pseudo_sum(src_hi, src, dst_hi, dst, net.PROTO_UDP, ulen)):
        s.counters[C_DROP_UDP_CHECKSUM] += 1
        return
    if not s.params[P_PORT_FIRST] <= net.get16(b, o + net.UDP_DPORT) <= s.params[P_PORT_LAST]:
        s.counters[C_DROP_PROTOCOL] += 1
        return
    s.counters[C_UDP_IN] += 1
    s.counters[C_UDP_BYTES_IN] += ulen - net.UDP_LEN
