"""Build a worker's `Stack` (all arrays, preallocated) from its config.

This is the only place that decides sizes and protocol constants; the
kernels read them from `params`. Times are microseconds.
"""
import ipaddress
import os
import time

import msgspec
import numpy as np

from nperf import config
from nperf.roles import http_tables
from nperf.kernels import (client_app, head_memo, http_client, http_server, latency, lookup, neighbours, net, reassembly,
                           stack, tables, tcp_table, time_wait, timers, tls_layer)
from nperf.kernels.stack import (CLIENT, N_PARAMS, N_VAR, P_ARP_RETRY_US, P_ARP_TRIES, P_DACK_US,
                                 P_DATA_RETRIES, P_DIRECT, P_IDLE_US, P_INIT_CWND, P_IP6_COUNT, P_IP6_FIRST,
                                 P_IP6_HI, P_IP6_LAST, P_IP_COUNT, P_IP_FIRST, P_LOSS_PPM, P_MAC, P_MSS, P_PEER_TIME_WAIT_US, P_PORT_CHECKSUMS, P_PORT_FIRST, P_PORT_LAST,
                                 P_RCV_WND, P_RCV_WSCALE, P_ROLE, P_RTO_INIT_US, P_RTO_MAX_US, P_RTO_MIN_US, P_SACK,
                                 P_SYN_RETRIES, P_TIME_WAIT_US, P_TIMESTAMPS, P_TS_BASE_MS,
                                 SERVER, V_RNG)

STASH = 256
TXQ = 512
FIRED = 256


class StackOptions(msgspec.Struct, kw_only=True):
    """Tunables a user may change on the command line (defaults in brackets there)."""
    max_conns: int = 1_000_000
    time_wait_ms: int = 1000
    peer_time_wait_s: float = 60.0   # client: how long peers hold TIME_WAIT (Linux: 60 s), for reuse warnings
    idle_timeout_s: float = 60.0
    rto_min_ms: int = 200
    rto_max_ms: int = 10_000
    syn_retries: int = 5
    data_retries: int = 8
    delayed_ack_ms: int = 10
    sack: bool = True          # offer and accept SACK (RFC 2018)
    timestamps: bool = True    # offer and accept timestamps (RFC 7323)
    loss: float = 0.0          # test knob: fraction of frames dropped at random, each way
    duration_s: float = 0.0    # client: fit ramp-up, sustain and ramp-down into this run length (0 = as configured)
    concurrency: int = 0       # client, TOTAL_CONNECTIONS: connections open at once (0 = min(value, 1000))


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def owned_ranges(cfg, role: str) -> list[tuple[Address, int]]:
    """(first address, count) of each range this role owns (server) or uses (client): the l3
    range, and l3.ipv6's for a worker of both families (mixed).

    An IPv6 range must lie within one /96: kernels test ownership with one
    high word and two signed compares (nperf.kernels.ndp.owns6), and key a
    local address by its last 32 bits (tcp_table.tuple_keys). Addresses in
    ::/64 (unspecified, loopback, IPv4-mapped) are no on-link unicast.
    """
    side = "dst" if role == "server" else "src"
    out = []
    for r in filter(None, (cfg.network.l3, cfg.network.l3.ipv6)):
        first, last = getattr(r, f"{side}_ip_start"), getattr(r, f"{side}_ip_end")
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if a.version == 6:
            if int(a) >> 64 == 0:
                raise ValueError(f"{role} addresses {first}..{last}: ::/64 holds no unicast address for a port")
            if int(a) >> 32 != int(b) >> 32 or b < a:
                raise ValueError(f"{role} addresses {first}..{last}: an IPv6 range must lie within one /96 "
                                 f"(only its last 32 bits may vary)")
        out.append((a, int(b) - int(a) + 1))
    return out


def owned_ports(cfg, role: str) -> tuple[int, int]:
    """(first, last) port this role listens on (server) or opens from (client)."""
    l4 = cfg.network.l4
    return (l4.dst_port_start, l4.dst_port_end) if role == "server" else (l4.src_port_start, l4.src_port_end)


def ip_version(cfg, role: str) -> int:
    """6 if the role has an IPv6 range (its MSS is IPv6's), else 4."""
    return max(a.version for a, _ in owned_ranges(cfg, role))


def check_addresses(cfg, role: str, name: str) -> None:
    """A ConfigError (the user's one line) if this role cannot use the file's addresses (owned_ranges;
    nperf.config already keeps each range pair to one family)."""
    try:
        owned_ranges(cfg, role)
        if role == "client":
            owned_ranges(cfg, "server")
    except ValueError as e:
        raise config.ConfigError(name, "$.network.l3", str(e)) from None


def build_stack(cfg, role: str, mac: bytes, opts: StackOptions, port_checksums: bool = False,
                tls: tls_layer.Tls | None = None) -> stack.Stack:
    """The stack of a worker with these files and options; `port_checksums`: its port verifies received
    checksums (`dpdk.Port.setup`), so the kernels read the mbufs' flags instead of summing; `tls`: its
    TLS layer (`nperf.tls.Context.layer`) when it runs HTTPS."""
    ranges = owned_ranges(cfg, role)
    port_first, port_last = owned_ports(cfg, role)
    p = np.zeros(N_PARAMS, np.int64)
    p[P_ROLE] = SERVER if role == "server" else CLIENT
    p[P_DIRECT] = role != "server"          # see nperf.kernels.lookup
    p[P_MAC] = int.from_bytes(mac, "big")
    for first, count in ranges:
        if first.version == 4:
            p[P_IP_FIRST], p[P_IP_COUNT] = int(first), count
        else:
            p[P_IP6_HI], p[P_IP6_FIRST] = net.ipv6_words(first)
            p[P_IP6_LAST], p[P_IP6_COUNT] = p[P_IP6_FIRST] + count - 1, count
    p[P_PORT_FIRST], p[P_PORT_LAST] = port_first, port_last
    p[P_MSS] = mss(cfg, ip_version(cfg, role))
    p[P_RCV_WND], p[P_RCV_WSCALE] = 1 << 20, 5
    p[P_TIME_WAIT_US] = opts.time_wait_ms * 1000
    p[P_PEER_TIME_WAIT_US] = int(opts.peer_time_wait_s * 1e6)
    p[P_RTO_MIN_US], p[P_RTO_MAX_US], p[P_RTO_INIT_US] = opts.rto_min_ms * 1000, opts.rto_max_ms * 1000, 1_000_000
    p[P_SYN_RETRIES], p[P_DATA_RETRIES] = opts.syn_retries, opts.data_retries
    p[P_IDLE_US] = int(opts.idle_timeout_s * 1e6)
    p[P_DACK_US] = opts.delayed_ack_ms * 1000
    p[P_LOSS_PPM] = int(round(opts.loss * 1e6))
    p[P_INIT_CWND] = 10
    p[P_SACK] = opts.sack
    p[P_TIMESTAMPS] = opts.timestamps
    p[P_TS_BASE_MS] = time.monotonic_ns() // 1_000_000
    p[P_PORT_CHECKSUMS] = port_checksums
    p[P_ARP_RETRY_US], p[P_ARP_TRIES] = 1_000_000, 5
    var = np.zeros(N_VAR, np.int64)
    var[V_RNG] = int.from_bytes(os.urandom(8), "little") & 0x7FFFFFFFFFFFFFFF | 1
    cap = opts.max_conns
    assert max(http_server.HS_WORDS, http_client.HC_WORDS) <= tcp_table.APP_WORDS
    app = stack.App(
        responses=http_tables.build_response_table(cfg.http_config).arrays(),
        events=np.zeros((tcp_table.APPQ, len(http_server.EVENT_WORDS)), np.int64),
        requests=http_tables.build_request_table(cfg.http_config).arrays(),
        sched=client_schedule(cfg, opts),
        hists=np.zeros((2, latency.BUCKETS), np.int64),
        idle=tables.zeros(2 * cap + 64),
        retry=tables.zeros((cap + 64, len(client_app.RETRY_WORDS))),
        payload=udp_payload(cfg),
        memo=head_memo.new_memo())
    return stack.Stack(
        tcb=tcp_table.new_tcb(cap), hash=tcp_table.new_hash(1 if p[P_DIRECT] else cap + cap),
        free=tcp_table.new_free_stack(cap),
        wheel=timers.new_wheel(), params=p, var=var,
        counters=np.zeros(stack.CS_CLIENT + client_app.N_CLIENT_COUNTERS, np.int64),
        stash=np.zeros(STASH, np.int64), txq=np.zeros(TXQ, np.int64), work=tables.zeros(2 * cap + 64),
        neighbours=neighbours.new_cache(), fired=np.zeros(FIRED, np.int64), app=app, tw=time_wait.new_ring(cap),
        pairs=lookup.new_pairs(sum(n for _, n in ranges), port_last - port_first + 1) if p[P_DIRECT]
        else lookup.new_pairs(1, 1),
        ooo=reassembly.new_pool(), tls=tls or tls_layer.new_layer(0))


IP_HEADER = {4: 20, 6: 40}   # IPv4 without options, IPv6 without extension headers
HEADERS = 14 + 20            # Ethernet, TCP (timestamps take 12 bytes of the MSS, not more frame)


def mss(cfg, version: int = 4, max_frame: int = 2048) -> int:
    """The MSS from interface.mtu, kept small enough that a segment fits one packet buffer
    (nperf.bindings.dpdk.MAX_FRAME bytes)."""
    ip = IP_HEADER[version]
    return min(cfg.interface.mtu - ip - 20, max_frame - HEADERS - ip)


OBJECTIVES = {"HTTP_REQUESTS": client_app.O_HTTP_REQUESTS, "TCP_CONCURRENT": client_app.O_TCP_CONCURRENT,
              "TOTAL_CONNECTIONS": client_app.O_TOTAL_CONNECTIONS, "UDP_STREAM": client_app.O_UDP_STREAM}


def phase_lengths(cfg, duration_s: float) -> list[float]:
    """Seconds of prepare, ramp-up, sustain, ramp-down, close; the middle three fitted to
    `duration_s` (with prepare and close kept) when it is given."""
    sc = cfg.scheduler
    lengths = [sc.prepare_duration_sec, sc.ramp_up_duration_sec, sc.sustain_duration_sec,
               sc.ramp_down_duration_sec, sc.close_duration_sec]
    middle = sum(lengths[1:4])
    if duration_s > 0 and middle > 0:
        factor = max(duration_s - lengths[0] - lengths[4], 1.0) / middle
        lengths[1:4] = [x * factor for x in lengths[1:4]]
    return lengths


def client_schedule(cfg, opts: StackOptions) -> np.ndarray:
    """The scheduler words (client_app.K_*) from the objective, phases and destinations."""
    ca = client_app
    k = np.zeros(ca.N_SCHED, np.int64)
    ob = cfg.objective
    k[ca.K_TYPE] = OBJECTIVES[ob.type]
    k[ca.K_VALUE] = ob.value
    k[ca.K_RPC] = max(ob.requests_per_connection, 1)
    rate = ob.value if ob.type == "UDP_STREAM" else (ob.requests_per_second or 0)
    k[ca.K_INTERVAL_NS] = int(1e9 / rate) if rate else 0
    k[ca.K_START] = -1
    at = 0.0
    for i, secs in enumerate(phase_lengths(cfg, opts.duration_s)):
        at += secs
        k[ca.K_PH_PREPARE + i] = int(at * 1e6)
    for first, count in owned_ranges(cfg, "server"):
        if first.version == 4:
            k[ca.K_DIP_FIRST], k[ca.K_DIP_COUNT] = int(first), count
        else:
            k[ca.K_DIP6_HI], k[ca.K_DIP6_FIRST] = net.ipv6_words(first)
            k[ca.K_DIP6_COUNT] = count
    port_first, port_last = owned_ports(cfg, "server")
    k[ca.K_DPORT_FIRST], k[ca.K_DPORT_COUNT] = port_first, port_last - port_first + 1
    k[ca.K_PATHS] = len(cfg.http_config.paths)
    k[ca.K_CONC_CAP] = opts.concurrency or min(max(ob.value, 1), 1000)
    k[ca.K_RETRY_ON] = cfg.http_config.retry_reused
    return k


def udp_payload(cfg) -> np.ndarray:
    """UDP_STREAM datagram bytes: client_payload.data repeated to client_payload.size."""
    p = cfg.client_payload
    data = p.data.encode() if p and p.data else b"nperf"
    size = p.size if p and p.size else len(data)
    return np.frombuffer((data * (size // len(data) + 1))[:size], np.uint8).copy()


def memory_per_connection() -> int:
    """Bytes of preallocated state per connection slot (table, hash, free stack, work, idle and retry
    lists) and per TIME-WAIT record (as many as slots), with their hash rows."""
    return tcp_table.bytes_per_connection() + 8 + 16 + 16 + 16 + 8 * time_wait.N_TW_WORDS \
        + tcp_table.HASH_BYTES_PER_CONN
