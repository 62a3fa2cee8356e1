"""Everything a worker's stack kernels share, as one NamedTuple of arrays.

`Stack` groups the connection table, its hash, the timer wheel, the ARP
cache, the application tables (`App`), the burst scratch (free mbufs to
build frames in, frames to transmit, connections with output pending) and
the TIME-WAIT records (`tw`, see `nperf.kernels.time_wait`) and the
client's direct index of its source pairs (`pairs`, see `nperf.kernels.lookup`),
the out-of-order pool (`ooo`, `nperf.kernels.reassembly`) and the TLS
connections (`tls`, `nperf.kernels.tls_layer`).
Kernels take the whole `Stack` as one argument; Python builds it once
(`nperf.roles.worker_stack`). Numba passes it by value, member by member, to every
kernel that is not inlined, so it is kept to few arrays: one row table, one
hash array, one counters array with regions.

`params` are fixed at start (P_*, PARAM_WORDS), `var` holds the few mutable scalars (V_*, VAR_WORDS),
`counters` are the per-second statistics: the stack's (C_*, names in
COUNTER_NAMES), then the HTTP server's, the HTTP client's and the client
application's (regions from CS_*).
"""
from collections import namedtuple

from nperf.kernels import http_client, http_server
from nperf.kernels.bytes_util import xorshift64
from nperf.kernels.jit import inline, inline_view

Stack = namedtuple("Stack", (
    "tcb", "hash", "free", "wheel", "params", "var", "counters",
    "stash", "txq", "work", "neighbours", "fired", "app", "tw", "pairs", "ooo", "tls",
))
App = namedtuple("App", ("responses", "events", "requests", "sched", "hists", "idle", "retry", "payload", "memo"))

SERVER = 0
CLIENT = 1

PARAM_WORDS = (                 # fixed at start (nperf.roles.worker_stack)
    "role",             # SERVER or CLIENT
    "mac",              # the port's MAC address
    "ip_first",         # the first owned IPv4 address
    "ip_count",         #   and how many follow it (0: none)
    "port_first",       # the first local port (server: listen ports; client: source ports)
    "port_last",        #   and the last
    "mss",              # the MSS we announce and send at most
    "rcv_wnd",          # receive window (bytes, before scaling)
    "rcv_wscale",       # our window scale shift
    "time_wait_us",     # how long our TIME-WAIT records live
    "rto_min_us",       # retransmission timeout bounds (RFC 6298)
    "rto_max_us",
    "rto_init_us",      # the RTO before the first RTT sample
    "syn_retries",      # SYN (or SYN-ACK) retransmissions before giving up
    "data_retries",     # data retransmissions before giving up
    "idle_us",          # close a connection idle this long; 0: never
    "dack_us",          # delayed-ACK timeout; 0: ACK at once
    "loss_ppm",         # the test loss knob: frames dropped on output per million
    "init_cwnd",        # initial congestion window (segments)
    "arp_retry_us",     # ARP request interval
    "arp_tries",        #   and requests before a destination fails
    "direct",           # 1: connections found through the direct pairs index (nperf.kernels.lookup)
    "peer_time_wait_us",  # how long a peer is assumed to hold TIME-WAIT (the pair-reuse counter)
    "sack",             # 1: offer and accept SACK (RFC 2018); 0: neither
    "timestamps",       # 1: offer and accept timestamps (RFC 7323); 0: neither
    "ts_base_ms",       # the timestamp clock at now = 0: the host's monotonic clock (ms), so it only grows
    "port_checksums",   # 1: the port verifies received checksums, its mbufs' flags say what it found
    "ip6_hi",           # the owned IPv6 addresses' high 64 bits (0: the worker owns none; nperf.kernels.ndp)
    "ip6_first",        #   the first one's low 64 bits (signed; the config keeps a range within one /96)
    "ip6_last",         #   the last one's
    "ip6_count",        #   and how many (0: none)
)
(P_ROLE, P_MAC, P_IP_FIRST, P_IP_COUNT, P_PORT_FIRST, P_PORT_LAST, P_MSS, P_RCV_WND, P_RCV_WSCALE,
 P_TIME_WAIT_US, P_RTO_MIN_US, P_RTO_MAX_US, P_RTO_INIT_US, P_SYN_RETRIES, P_DATA_RETRIES, P_IDLE_US,
 P_DACK_US, P_LOSS_PPM, P_INIT_CWND, P_ARP_RETRY_US, P_ARP_TRIES, P_DIRECT, P_PEER_TIME_WAIT_US, P_SACK,
 P_TIMESTAMPS, P_TS_BASE_MS, P_PORT_CHECKSUMS, P_IP6_HI, P_IP6_FIRST, P_IP6_LAST, P_IP6_COUNT) = range(len(PARAM_WORDS))
N_PARAMS = len(PARAM_WORDS)

VAR_WORDS = (                   # the few mutable scalars
    "rng",              # xorshift64 state (random64)
    "ip_id",            # the next IPv4 identification
    "stash_n",          # free mbufs in `stash`
    "txq_n",            # frames queued in `txq`
    "work_head",        # the work ring's read position (connections with output pending)
    "work_tail",        #   and its write position
    "now_us",           # this turn's clock
    "arp_announced",    # owned addresses announced by gratuitous ARP so far
    "txq_held",         # frames at the head of `txq` the port did not take last turn (flush)
    "tw_head",          # the TIME-WAIT ring's oldest record
    "tw_tail",          #   and the next free one
    "evict_at",         # where the next SYN-flood eviction scan starts (nperf.kernels.tcp)
    "ooo_free",         # the first free slot of the out-of-order pool (nperf.kernels.reassembly); -1: none
    "nd_announced",     # owned IPv6 addresses announced by unsolicited neighbour advertisements so far
)
(V_RNG, V_IP_ID, V_STASH_N, V_TXQ_N, V_WORK_HEAD, V_WORK_TAIL, V_NOW_US, V_ARP_ANNOUNCED, V_TXQ_HELD,
 V_TW_HEAD, V_TW_TAIL, V_EVICT_AT, V_OOO_FREE, V_ND_ANNOUNCED) = range(len(VAR_WORDS))
N_VAR = len(VAR_WORDS)

COUNTER_NAMES = (
    "rx_frames",              # frames received
    "rx_bytes",
    "tx_frames",              # frames the port or ring took
    "tx_bytes",
    "drop_not_ours",          # drops: a frame for another MAC address, an ARP, IP packet or neighbour
                              #   solicitation for another address
    "drop_bad_ip",            #   not IPv4 version 4 or IPv6 version 6, shorter than its header, or an
                              #   IPv6 extension header or option past the payload (nperf.kernels.ipv6)
    "drop_ip_checksum",       #   a bad IPv4 header checksum
    "drop_fragment",          #   an IPv4 or IPv6 fragment (not reassembled)
    "drop_protocol",          #   an ethertype, IP protocol, ICMP or ICMPv6 type or UDP port nperf does not
                              #   serve; an IPv6 header or option it must not skip; UDP over IPv6 (yet)
    "drop_tcp_checksum",      #   a bad TCP checksum
    "drop_bad_tcp",           #   a TCP header shorter than 20 bytes or than its data offset
    "drop_no_mbuf",           #   no free mbuf to answer with
    "drop_tx_full",           #   no room in the transmit queue to answer in place
    "drop_test_loss",         #   dropped on purpose by the loss knob (P_LOSS_PPM)
    "arp_in",                 # ARP packets received
    "arp_replies",            # ARP replies sent
    "arp_requests",           # ARP requests sent
    "icmp_echo",              # echo requests answered
    "tcp_segs_in",            # TCP segments received
    "tcp_segs_out",           #   and sent
    "tcp_bytes_in",           # TCP payload bytes received
    "tcp_bytes_out",          #   and sent (retransmissions included)
    "tcp_retransmits",        # segments retransmitted
    "tcp_fast_retransmits",   #   of which after three duplicate ACKs
    "tcp_timeouts",           # retransmission timeouts
    "tcp_dupacks",            # duplicate ACKs received
    "tcp_out_of_order",       # segments beyond rcv_nxt (kept if they can be, answered by an ACK)
    "tcp_duplicate_segs",     # segments wholly before rcv_nxt, or wholly in a kept one
    "tcp_resets_in",          # RSTs accepted (in the window: RFC 5961)
    "tcp_resets_out",         # RSTs sent
    "tcp_syns_in",            # SYNs received
    "tcp_table_full",         # SYNs dropped: the table was full of established connections
    "tcp_no_listener",        # segments of no connection, and no SYN to a listening port
    "conn_opened",            # connections established
    "conn_closed",            # connections ended: cleanly
    "conn_reset",             #   by a reset
    "conn_timed_out",         #   by retransmission or connect timeout
    "conn_idle_closed",       #   by the idle timeout
    "tcp_window_probes",      # zero-window probes sent
    "udp_in",                 # UDP datagrams received (UDP_STREAM)
    "udp_bytes_in",           #   and their payload bytes
    "conn_aborted",           # connections still open at exit
    "tcp_time_wait",          # connections that entered TIME-WAIT
    "tcp_time_wait_evicted",  # TIME-WAIT records reused early (the ring was full)
    "tcp_syn_challenged",     # a SYN answered by an ACK of another connection (a peer's TIME-WAIT)
    "drop_runt",              # shorter than an Ethernet header
    "drop_bad_arp",           # not an Ethernet/IPv4 ARP packet, or truncated
    "drop_bad_icmp",          # an ICMP or ICMPv6 message too short, with a bad checksum, or after IP options
    "drop_udp_checksum",      # a bad UDP checksum
    "ring_overflow",          # a work, idle or retry ring was full (sized never to be: see each push)
    "tcp_syn_evicted",        # a half-open connection freed for a new SYN when the table was full
    "tcp_ooo_kept",           # out-of-order segments kept (nperf.kernels.reassembly)
    "tcp_ooo_not_kept",       #   not kept: the connection's share or the pool was full (the peer resends)
    "tcp_ooo_bytes",          #   bytes of kept segments given to the application, in order
    "tcp_ooo_discarded",      #   kept segments forgotten: their connection ended first
    "tcp_retransmit_bytes",   # payload bytes sent again (tcp_retransmits counts the segments)
    "tcp_sack_blocks_out",    # SACK blocks sent (nperf.kernels.sack)
    "tcp_sack_blocks_in",     #   and taken in (blocks outside what is in flight are ignored)
    "tcp_sack_retransmits",   # segments sent again to fill a hole the peer's SACK blocks showed
    "tcp_dsacks_in",          #   D-SACK blocks taken in: data the peer got twice (a needless resend)
    "tcp_paws_dropped",       # segments with text or FIN and a timestamp older than the last (RFC 7323 PAWS)
    "rx_csum_by_port",        # IPv4 frames, and TCP segments over IPv6, whose checksums the port had verified
                              #   (RX offload): not summed again
    "tcp_loss_probes",        # tail loss probes sent (RFC 8985 7): a segment when an ACK is overdue
    "nd_in",                  # IPv6 neighbour solicitations and advertisements received for owned addresses
    "nd_adverts",             # neighbour advertisements sent (answers, and the unsolicited ones at start)
    "nd_solicits",            # neighbour solicitations sent (a client resolving a destination)
    "drop_bad_nd",            # a neighbour discovery message that fails RFC 4861's checks (hop limit, length)
    "tls_full",               # TLS handshakes completed in full (nperf.kernels.tls_layer)
    "tls_resumed",            #   and by resuming a session
    "tls_handshake_us",       #   their time summed, from TCP's open to the handshake's end
    "tls_failed_alert",       # TLS handshakes failed: a protocol error or the peer's alert
    "tls_failed_certificate", #   a certificate refused (ours by the peer, or the peer's)
    "tls_failed_timeout",     #   the connection timed out first
    "tls_failed_peer_closed", #   the peer closed or reset first
    "tls_no_slot",            # connections reset: no TLS slot (or OpenSSL memory) left for them
    "tls_record_errors",      # TLS connections that failed after their handshake (a bad record)
    "tls_bytes_encrypted",    # plaintext bytes encrypted
    "tls_bytes_decrypted",    #   and decrypted
)
(C_RX_FRAMES, C_RX_BYTES, C_TX_FRAMES, C_TX_BYTES, C_DROP_NOT_OURS, C_DROP_BAD_IP, C_DROP_IP_CHECKSUM,
 C_DROP_FRAGMENT, C_DROP_PROTOCOL, C_DROP_TCP_CHECKSUM, C_DROP_BAD_TCP, C_DROP_NO_MBUF, C_DROP_TX_FULL,
 C_DROP_TEST_LOSS, C_ARP_IN, C_ARP_REPLIES, C_ARP_REQUESTS, C_ICMP_ECHO, C_TCP_SEGS_IN, C_TCP_SEGS_OUT,
 C_TCP_BYTES_IN, C_TCP_BYTES_OUT, C_TCP_RETRANSMITS, C_TCP_FAST_RETRANSMITS, C_TCP_TIMEOUTS, C_TCP_DUPACKS,
 C_TCP_OUT_OF_ORDER, C_TCP_DUPLICATE_SEGS, C_TCP_RESETS_IN, C_TCP_RESETS_OUT, C_TCP_SYNS_IN,
 C_TCP_TABLE_FULL, C_TCP_NO_LISTENER, C_CONN_OPENED, C_CONN_CLOSED, C_CONN_RESET, C_CONN_TIMED_OUT,
 C_CONN_IDLE_CLOSED, C_TCP_WINDOW_PROBES, C_UDP_IN, C_UDP_BYTES_IN, C_CONN_ABORTED, C_TCP_TIME_WAIT,
 C_TCP_TIME_WAIT_EVICTED, C_TCP_SYN_CHALLENGED, C_DROP_RUNT, C_DROP_BAD_ARP, C_DROP_BAD_ICMP,
 C_DROP_UDP_CHECKSUM, C_RING_OVERFLOW, C_TCP_SYN_EVICTED, C_TCP_OOO_KEPT, C_TCP_OOO_NOT_KEPT, C_TCP_OOO_BYTES,
 C_TCP_OOO_DISCARDED, C_TCP_RETRANSMIT_BYTES, C_TCP_SACK_BLOCKS_OUT, C_TCP_SACK_BLOCKS_IN,
 C_TCP_SACK_RETRANSMITS, C_TCP_DSACKS_IN, C_TCP_PAWS_DROPPED, C_RX_CSUM_BY_PORT, C_TCP_LOSS_PROBES, C_ND_IN,
 C_ND_ADVERTS, C_ND_SOLICITS, C_DROP_BAD_ND, C_TLS_FULL, C_TLS_RESUMED, C_TLS_HANDSHAKE_US, C_TLS_FAILED_ALERT,
 C_TLS_FAILED_CERTIFICATE, C_TLS_FAILED_TIMEOUT, C_TLS_FAILED_PEER_CLOSED, C_TLS_NO_SLOT, C_TLS_RECORD_ERRORS,
 C_TLS_BYTES_ENCRYPTED, C_TLS_BYTES_DECRYPTED) = range(len(COUNTER_NAMES))
N_COUNTERS = len(COUNTER_NAMES)

# counters regions after the stack's own
CS_HTTP_SERVER = N_COUNTERS
CS_HTTP_CLIENT = CS_HTTP_SERVER + http_server.N_COUNTERS
CS_CLIENT = CS_HTTP_CLIENT + http_client.N_COUNTERS      # then client_app.N_CLIENT_COUNTERS


@inline
def random64(s):
    """The stack's random numbers: xorshift64 on V_RNG."""
    x = xorshift64(s.var[V_RNG])
    s.var[V_RNG] = x
    return x


@inline_view
def http_server_counters(s):
    return s.counters[CS_HTTP_SERVER:CS_HTTP_CLIENT]


@inline_view
def http_client_counters(s):
    return s.counters[CS_HTTP_CLIENT:CS_CLIENT]


@inline_view
def client_counters(s):
    return s.counters[CS_CLIENT:]
