"""Numba kernels: every per-packet and per-connection instruction of nperf.

Every word-indexed array is declared one way: a tuple of word names with
a one-line comment each, then its index constants unpacked from
`range(len(names))` (a missing or extra name fails at import), and its size
`len(names)`. Python code (roles, reports, tests) takes the names from
there. A prefix has one meaning across the kernels:

    C_   stack counters (stack.COUNTER_NAMES)     CC_  client application counters
    P_   stack params (stack.PARAM_WORDS)         V_   stack mutable scalars (VAR_WORDS)
    T_   connection row words (tcp_table.FIELDS)  F_   TCP flag bits of T_FLAGS
    HASH_ 4-tuple hash row words                  TW_  TIME-WAIT record words
    K_   client scheduler words (SCHED_WORDS)     CF_  client connection bits (T_APP_DONE)
    W_   HTTP parser row words (PARSER_WORDS)     ST_  shared parser stages
    RQ_  request parser stages (server)           RS_  response parser stages (client)
    MF_  HTTP message flag bits (W_FLAGS)         CNT_ HTTP parser counters
    H_   FNV hashes of header names and tokens    CL_  byte classes (bytes_util)
    REQ_ request template columns                 RESP_ response table columns
    AR_  ARP cache row words (A_: their states)   IO_  a worker's I/O words
    Q_   queue words (io)                         PS_  poll-state words (poll, lb_loop)
    WC_  the lb's per-worker counters             M_   capture metadata words
    OFF_ rte_mbuf field offsets                   HOST_ Host cache row words (http_client)
    MK_  head memo key words (head_memo)          MR_  head memo result words
    MV_  head memo variable words                 and in net: one prefix per header
"""
