"""Everything a worker's stack kernels share, as one NamedTuple of arrays.

`Stack` groups the connection table, its hash, the timer wheel, the ARP
cache, the application tables (`App`), the burst scratch (free mbufs to
build frames in, frames to transmit, connections with output pending) and
the TIME-WAIT records (`tw`, see `nperf.kernels.time_wait`) and the
client's direct index of its source pairs (`pairs`, see `nperf.kernels.lookup`).
Kernels take the whole `Stack` as one argument; Python builds it once
(`nperf.roles.worker_stack`). Numba passes it by value, member by member, to every
kernel that is not inlined, so it is kept to few arrays: one row table, one
hash array, one counters array with regions.

`params` are fixed at start (P_*), `var` holds the few mutable scalars (V_*),
`counters` are the per-second statistics: the stack's (C_*, names in
COUNTER_NAMES), then the HTTP server's, the HTTP client's and the client
application's (regions from CS_*).
"""
from collections import namedtuple

from nperf.kernels import http_client, http_server
from nperf.kernels.jit import inline

Stack = namedtuple("Stack", (
    "tcb", "hash", "free", "wheel", "params", "var", "counters",
    "stash", "txq", "work", "arp", "fired", "app", "tw", "pairs",
))
App = namedtuple("App", ("responses", "events", "requests", "sched", "hists", "idle", "retry", "payload"))

SERVER = 0
CLIENT = 1

# params
(P_ROLE, P_MAC, P_IP_FIRST, P_IP_COUNT, P_PORT_FIRST, P_PORT_LAST, P_MSS, P_RCV_WND, P_RCV_WSCALE,
 P_TIME_WAIT_US, P_RTO_MIN_US, P_RTO_MAX_US, P_RTO_INIT_US, P_SYN_RETRIES, P_DATA_RETRIES, P_IDLE_US,
 P_DACK_US, P_LOSS_PPM, P_INIT_CWND, P_ARP_RETRY_US, P_ARP_TRIES, P_DIRECT, P_PEER_TIME_WAIT_US,
 N_PARAMS) = range(24)

# var: mutable scalars
(V_RNG, V_IP_ID, V_STASH_N, V_TXQ_N, V_WORK_HEAD, V_WORK_TAIL, V_NOW_US, V_ARP_ANNOUNCED, V_TXQ_HELD,
 V_TW_HEAD, V_TW_TAIL, V_EVICT_AT, N_VAR) = range(13)

COUNTER_NAMES = (
    "rx_frames", "rx_bytes", "tx_frames", "tx_bytes",
    "drop_not_ours", "drop_bad_ip", "drop_ip_checksum", "drop_fragment", "drop_protocol",
    "drop_tcp_checksum", "drop_bad_tcp", "drop_no_mbuf", "drop_tx_full", "drop_test_loss",
    "arp_in", "arp_replies", "arp_requests", "icmp_echo",
    "tcp_segs_in", "tcp_segs_out", "tcp_bytes_in", "tcp_bytes_out", "tcp_retransmits",
    "tcp_fast_retransmits", "tcp_timeouts", "tcp_dupacks", "tcp_out_of_order", "tcp_duplicate_segs",
    "tcp_resets_in", "tcp_resets_out", "tcp_syns_in", "tcp_table_full", "tcp_no_listener",
    "conn_opened", "conn_closed", "conn_reset", "conn_timed_out", "conn_idle_closed",
    "tcp_window_probes", "udp_in", "udp_bytes_in", "conn_aborted",
    "tcp_time_wait", "tcp_time_wait_evicted", "tcp_syn_challenged",
    "drop_runt", "drop_bad_arp", "drop_bad_icmp", "drop_udp_checksum", "ring_overflow", "tcp_syn_evicted",
)
N_COUNTERS = len(COUNTER_NAMES)

C_RX_FRAMES = 0
C_RX_BYTES = 1
C_TX_FRAMES = 2
C_TX_BYTES = 3
C_DROP_NOT_OURS = 4
C_DROP_BAD_IP = 5
C_DROP_IP_CHECKSUM = 6
C_DROP_FRAGMENT = 7
C_DROP_PROTOCOL = 8
C_DROP_TCP_CHECKSUM = 9
C_DROP_BAD_TCP = 10
C_DROP_NO_MBUF = 11
C_DROP_TX_FULL = 12
C_DROP_TEST_LOSS = 13
C_ARP_IN = 14
C_ARP_REPLIES = 15
C_ARP_REQUESTS = 16
C_ICMP_ECHO = 17
C_TCP_SEGS_IN = 18
C_TCP_SEGS_OUT = 19
C_TCP_BYTES_IN = 20
C_TCP_BYTES_OUT = 21
C_TCP_RETRANSMITS = 22
C_TCP_FAST_RETRANSMITS = 23
C_TCP_TIMEOUTS = 24
C_TCP_DUPACKS = 25
C_TCP_OUT_OF_ORDER = 26
C_TCP_DUPLICATE_SEGS = 27
C_TCP_RESETS_IN = 28
C_TCP_RESETS_OUT = 29
C_TCP_SYNS_IN = 30
C_TCP_TABLE_FULL = 31
C_TCP_NO_LISTENER = 32
C_CONN_OPENED = 33
C_CONN_CLOSED = 34
C_CONN_RESET = 35
C_CONN_TIMED_OUT = 36
C_CONN_IDLE_CLOSED = 37
C_TCP_WINDOW_PROBES = 38
C_UDP_IN = 39
C_UDP_BYTES_IN = 40
C_CONN_ABORTED = 41
C_TCP_TIME_WAIT = 42
C_TCP_TIME_WAIT_EVICTED = 43
C_TCP_SYN_CHALLENGED = 44        # a SYN answered by an ACK of another connection (a peer's TIME-WAIT)
C_DROP_RUNT = 45                 # shorter than an Ethernet header
C_DROP_BAD_ARP = 46              # not an Ethernet/IPv4 ARP packet, or truncated
C_DROP_BAD_ICMP = 47             # an ICMP message too short, with a bad checksum, or after IP options
C_DROP_UDP_CHECKSUM = 48
C_RING_OVERFLOW = 49             # a work, idle or retry ring was full (sized never to be: see each push)
C_TCP_SYN_EVICTED = 50           # a half-open connection freed for a new SYN when the table was full
assert all(globals()["C_" + name.upper()] == i for i, name in enumerate(COUNTER_NAMES))

# counters regions after the stack's own
CS_HTTP_SERVER = N_COUNTERS
CS_HTTP_CLIENT = CS_HTTP_SERVER + http_server.N_COUNTERS
CS_CLIENT = CS_HTTP_CLIENT + http_client.N_COUNTERS      # then client_app.N_CLIENT_COUNTERS


@inline
def random64(s):
    """xorshift64 on V_RNG: initial sequence numbers and the loss knob need no cryptography."""
    x = s.var[V_RNG]
    x ^= (x << 13)
    x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
    x ^= (x << 17)
    s.var[V_RNG] = x
    return x


@inline
def http_server_counters(s):
    return s.counters[CS_HTTP_SERVER:CS_HTTP_CLIENT]


@inline
def http_client_counters(s):
    return s.counters[CS_HTTP_CLIENT:CS_CLIENT]


@inline
def client_counters(s):
    return s.counters[CS_CLIENT:]
