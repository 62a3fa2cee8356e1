"""Indices into the table of C function addresses that kernels call.

`nperf.bindings.dpdk.function_table()` builds the uint64 array in this order;
kernels call them through the named helpers of `nperf.kernels.io`. Keeping the order here (a module
without DPDK) lets kernels compile and cache without the extension.
"""
RX_BURST = 0
TX_BURST = 1
RING_ENQUEUE = 2
RING_DEQUEUE = 3
MBUF_ALLOC = 4
MBUF_FREE = 5
TSC = 6
TSC_HZ = 7
SLEEP_NS = 8
YIELD = 9

CFN_NAMES = ("np_rx_burst", "np_tx_burst", "np_ring_enqueue", "np_ring_dequeue",
           "np_mbuf_alloc", "np_mbuf_free", "np_tsc", "np_tsc_hz", "np_sleep_ns",
           "np_yield")
