"""The client's scheduler: phases, the concurrency target, new connections, the rate limiter.

Called once per poll-loop turn. The phases run in order (prepare, ramp-up,
sustain, ramp-down, close); the target number of concurrent connections is
0 while preparing (peers are resolved by ARP then), ramps linearly to the
objective's value, holds, ramps down, and is 0 while closing. New
connections take the next (source IP, source port) and (destination IP,
destination port) from one cursor; a source pair still held by a
connection (open or in TIME-WAIT, see `lookup`) is skipped, never reused.
A destination whose address ARP (or, over IPv6, neighbour discovery) could
not resolve is skipped too (and counted once), so the others carry on.
Over IPv6 the source and destination ranges each keep one high word
(P_IP6_HI, K_DIP6_HI) and vary in the low one. A client of both families
(mixed) counts its IPv4 destinations first, then its IPv6 ones, and opens
each from a source of its family. With a rate limit, requests leave at
their scheduled times on whichever connection is idle. UDP_STREAM sends
datagrams on the same schedule instead.
"""
import numpy as np

from nperf.kernels import arp, client_app as ca, frame_out, lookup, mbuf, ndp, neighbours, net, stack, tcp
from nperf.kernels.jit import inline, kernel
from nperf.kernels.stack import (P_IP6_COUNT, P_IP6_FIRST, P_IP6_HI, P_IP_COUNT, P_IP_FIRST, P_PEER_TIME_WAIT_US,
                                 P_PORT_FIRST, P_PORT_LAST)
from nperf.kernels.tcp_table import (
    ESTABLISHED, T_APP_DONE, T_STATE, T_USER, tuple_keys)

OPEN_PER_TURN = 64
SCAN_PER_TURN = 256
UDP_HEADER = 8


@inline
def _phase(k, elapsed):
    for p in range(ca.PH_DONE):
        if elapsed < k[ca.K_PH_PREPARE + p]:
            return p
    return ca.PH_DONE


@inline
def _target(s, k, phase, elapsed):
    value = k[ca.K_VALUE]
    if k[ca.K_TYPE] == ca.O_TOTAL_CONNECTIONS:
        if phase == ca.PH_PREPARE or phase >= ca.PH_CLOSE:
            return np.int64(0)
        live = k[ca.K_ACTIVE] - k[ca.K_CLOSING]
        return live + min(k[ca.K_CONC_CAP] - live, value - k[ca.K_OPENED] + ca.retries_pending(s))
    if phase == ca.PH_RAMP_UP:
        start = k[ca.K_PH_PREPARE]
        span = max(k[ca.K_PH_RAMP_UP] - start, 1)
        return value * (elapsed - start) // span
    if phase == ca.PH_SUSTAIN:
        return value
    if phase == ca.PH_RAMP_DOWN:
        start = k[ca.K_PH_SUSTAIN]
        span = max(k[ca.K_PH_RAMP_DOWN] - start, 1)
        return value - value * (elapsed - start) // span
    return np.int64(0)


@inline
def _destination(s, k, i):
    """(address's high word, its low word, port) of destination number i (high 0: IPv4)."""
    n4 = k[ca.K_DIP_COUNT]
    n = n4 + k[ca.K_DIP6_COUNT]
    j = i % n
    port = k[ca.K_DPORT_FIRST] + (i // n) % k[ca.K_DPORT_COUNT]
    if j < n4:
        return np.int64(0), k[ca.K_DIP_FIRST] + j, port
    return k[ca.K_DIP6_HI], k[ca.K_DIP6_FIRST] + j - n4, port


@inline
def _sources(s, v6):
    """How many source addresses the client has of a family."""
    return s.params[P_IP6_COUNT] if v6 else s.params[P_IP_COUNT]


@inline
def _source(s, i, v6):
    """(high word, low word) of source address number i of a family (IPv4: high 0)."""
    if v6:
        return s.params[P_IP6_HI], s.params[P_IP6_FIRST] + i % s.params[P_IP6_COUNT]
    return np.int64(0), s.params[P_IP_FIRST] + i % s.params[P_IP_COUNT]


@inline
def _resolve(s, hi, lo, now):
    """The MAC of (hi, lo), or neighbours.PENDING or FAILED: asks (ARP, or a neighbour solicitation)
    when a try is due, and counts a destination that failed (once, when it fails)."""
    mac, row = neighbours.due(s, neighbours.key(hi, lo), now)
    if row >= 0 and (arp.arp_request(s, lo) if hi == 0 else ndp.solicit(s, hi, lo)):
        neighbours.asked(s, row, now)
    if mac == neighbours.JUST_FAILED:
        stack.client_counters(s)[ca.CC_ARP_FAILED] += 1
        return np.int64(neighbours.FAILED)
    return mac


@kernel
def _resolve_all(s, k, now):
    """Resolve every destination during the prepare phase."""
    for i in range(k[ca.K_DIP_COUNT] + k[ca.K_DIP6_COUNT]):
        hi, lo, _ = _destination(s, k, i)
        _resolve(s, hi, lo, now)


@inline
def _open(s, k, want, now):
    """Open up to `want` connections; returns how many were started."""
    nsport = s.params[P_PORT_LAST] - s.params[P_PORT_FIRST] + 1
    opened = 0
    tries = 0
    busy = 0
    while opened < want and tries < 4 * want and frame_out.can_send(s, 2):
        tries += 1
        cur = k[ca.K_CURSOR]
        k[ca.K_CURSOR] = cur + 1
        rip_hi, rip, rport = _destination(s, k, cur)
        nsip = _sources(s, rip_hi != 0)
        src = cur % (nsip * nsport)
        lip_hi, lip = _source(s, src, rip_hi != 0)
        lport = s.params[P_PORT_FIRST] + src // nsip
        k1, k2 = tuple_keys(rip, rport, lip, lport, rip_hi, lip_hi)
        if not lookup.pair_free(s, k2):     # held (open, or in this client's TIME-WAIT): the next one
            busy += 1
            stack.client_counters(s)[ca.CC_SOURCE_PAIR_BUSY] += 1
            continue
        freed = s.pairs[lookup.pair_index(s, k2), lookup.PFREED]
        if freed > 0 and now - freed < s.params[P_PEER_TIME_WAIT_US]:
            stack.client_counters(s)[ca.CC_PAIR_REUSED_EARLY] += 1
        mac = _resolve(s, rip_hi, rip, now)
        if mac == neighbours.FAILED:
            continue                    # skip a destination that never answered
        if mac < 0:
            k[ca.K_CURSOR] = cur        # wait for this destination's address
            break
        c = tcp.tcp_connect(s, lip_hi, lip, lport, rip_hi, rip, rport, mac, now)
        if c < 0:
            break
        s.tcb[c, T_APP_DONE] = ca.CF_COUNTED
        s.tcb[c, T_USER] = 0
        k[ca.K_ACTIVE] += 1
        k[ca.K_OPENED] += 1
        stack.client_counters(s)[ca.CC_OPENED] += 1
        stack.client_counters(s)[ca.CC_V6_OPENED] += np.int64(rip_hi != 0)
        opened += 1
    if busy == tries == 4 * want:        # every pair tried was held: the source space is full
        stack.client_counters(s)[ca.CC_NO_SOURCE_PAIR] += 1
    return opened


@kernel
def _close_excess(s, k, excess):
    """Close up to `excess` established connections, scanning the table from a cursor."""
    t = s.tcb
    cap = t.shape[0]
    closed = 0
    for _ in range(min(SCAN_PER_TURN, cap)):
        if closed >= excess:
            break
        c = k[ca.K_SCAN] % cap
        k[ca.K_SCAN] = c + 1
        # one awaiting a response is left to next_step, which closes it once answered (never abandoned)
        if t[c, T_STATE] == ESTABLISHED and t[c, T_APP_DONE] & ca.CF_COUNTED and \
                not t[c, T_APP_DONE] & (ca.CF_CLOSING | ca.CF_REQ_OUT):
            ca._close(s, c)
            tcp.work_push(s, c)
            closed += 1
    return closed


@kernel
def _paced_requests(s, k, now):
    """Requests whose scheduled time has come, on idle connections (oldest first)."""
    fifo = s.app.idle
    sent = 0
    while k[ca.K_NEXT_NS] <= now * 1000 and k[ca.K_IDLE_HEAD] < k[ca.K_IDLE_TAIL]:
        c = fifo[k[ca.K_IDLE_HEAD] % fifo.shape[0]]
        k[ca.K_IDLE_HEAD] += 1
        t = s.tcb
        if t[c, T_STATE] != ESTABLISHED or t[c, T_APP_DONE] & (ca.CF_CLOSING | ca.CF_REQ_OUT | ca.CF_LAST) or \
                not t[c, T_APP_DONE] & ca.CF_COUNTED:
            continue
        if ca.keepalive_expired(s, c, now):
            tcp.work_push(s, c)
            continue
        ca.send_request(s, c, k[ca.K_NEXT_NS] // 1000)
        tcp.work_push(s, c)
        k[ca.K_NEXT_NS] += k[ca.K_INTERVAL_NS]
        sent += 1
    return sent


@kernel
def _udp_stream(s, k, now):
    """Datagrams whose scheduled time has come (the client_payload, to rotating destinations)."""
    sent = 0
    payload = s.app.payload
    plen = payload.shape[0]
    turns = 0
    while k[ca.K_NEXT_NS] <= now * 1000 and frame_out.can_send(s, 1) and turns < SCAN_PER_TURN:
        turns += 1
        cur = k[ca.K_CURSOR]
        rip_hi, rip, rport = _destination(s, k, cur)
        mac = _resolve(s, rip_hi, rip, now)
        if mac == neighbours.PENDING:
            break
        k[ca.K_CURSOR] = cur + 1
        if mac < 0:
            k[ca.K_NEXT_NS] += k[ca.K_INTERVAL_NS]      # a destination without ARP answer: skipped
            continue
        m = frame_out.take_mbuf(s)
        b = mbuf.buffer_view(m)
        lip_hi, lip = _source(s, cur, rip_hi != 0)
        lport = s.params[P_PORT_FIRST] + cur % (s.params[P_PORT_LAST] - s.params[P_PORT_FIRST] + 1)
        frame_out.put_ip(s, b, mac, lip_hi, lip, rip_hi, rip, net.PROTO_UDP, UDP_HEADER + plen)
        o = frame_out.l4_offset(rip_hi)
        net.put16(b, o, lport)
        net.put16(b, o + 2, rport)
        net.put16(b, o + 4, UDP_HEADER + plen)
        net.put16(b, o + 6, 0)
        for j in range(plen):
            b[o + UDP_HEADER + j] = payload[j]
        ulen = UDP_HEADER + plen
        csum = net.fold(net.sum16(b, o, ulen, net.pseudo_sum(lip_hi, lip, rip_hi, rip, net.PROTO_UDP, ulen)))
        net.put16(b, o + 6, csum if csum != 0 else 0xFFFF)
        frame_out.send(s, m, o + UDP_HEADER + plen)
        stack.client_counters(s)[ca.CC_UDP_SENT] += 1
        k[ca.K_NEXT_NS] += k[ca.K_INTERVAL_NS]
        sent += 1
    return sent


@inline
def tick(s, now):
    """One scheduler step; True if it started anything."""
    if not ca.is_client(s):
        return False
    k = s.app.sched
    if k[ca.K_START] < 0:
        k[ca.K_START] = now
        k[ca.K_NEXT_NS] = now * 1000
    elapsed = now - k[ca.K_START]
    phase = _phase(k, elapsed)
    k[ca.K_PHASE] = phase
    if phase == ca.PH_DONE:
        k[ca.K_FINISHED] = 1
        return False
    if phase == ca.PH_PREPARE:
        _resolve_all(s, k, now)
        k[ca.K_NEXT_NS] = now * 1000        # the request / datagram schedule starts with the load
        return False
    if k[ca.K_TYPE] == ca.O_UDP_STREAM:
        if phase >= ca.PH_CLOSE:
            return False
        return _udp_stream(s, k, now) > 0
    target = _target(s, k, phase, elapsed)
    k[ca.K_TARGET] = target
    busy = 0
    live = k[ca.K_ACTIVE] - k[ca.K_CLOSING]
    if live < target:
        busy += _open(s, k, min(target - live, OPEN_PER_TURN), now)
    elif live > target:
        busy += _close_excess(s, k, live - target)
    if k[ca.K_INTERVAL_NS] > 0:
        busy += _paced_requests(s, k, now)
    if k[ca.K_TYPE] == ca.O_TOTAL_CONNECTIONS and k[ca.K_OPENED] >= k[ca.K_VALUE] and k[ca.K_ACTIVE] == 0:
        k[ca.K_FINISHED] = 1
    return busy > 0


@inline
def finished(s):
    return ca.is_client(s) and s.app.sched[ca.K_FINISHED] != 0
