"""cffi (API mode) build of the DPDK extension `nperf.bindings._dpdk`, with OpenSSL 3.

API mode is required: `rte_eth_rx_burst`, ring bursts and mbuf bulk alloc are
`static inline` in DPDK 22.11, so they can only be reached through small C
wrappers compiled against the headers.

The per-burst wrappers share one C signature, `int64_t f(u64, u64, u64, u64)`,
so that one Numba intrinsic can call any of them through a function address
(see `nperf.bindings.intrinsics`); cached kernels cannot reference cffi
functions directly.

OpenSSL is compiled into the same extension (TLS_CDEF here, the C in
`tls.c`) so that kernels reach it by function address like the burst
wrappers.
"""
import os
import shlex
import subprocess
import sys

from cffi import FFI

MISSING_DPDK = (
    "nperf needs the DPDK and OpenSSL development files: run "
    "`apt-get install -y libdpdk-dev dpdk-dev libssl-dev pkg-config` and install nperf again."
)


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(["pkg-config", *args, "libdpdk", "openssl"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.stderr.write(MISSING_DPDK + "\n")
        raise SystemExit(MISSING_DPDK)
    return shlex.split(out)


CDEF = """
/* EAL */
int np_eal_init(int argc, char **argv);
int np_eal_cleanup(void);
int np_errno(void);
const char *np_strerror(int err);
int np_is_primary(void);

/* ports */
uint16_t np_port_count(void);
int np_port_name(uint16_t port, char *out, size_t len);
int np_port_setup(uint16_t port, uint16_t nb_rxd, uint16_t nb_txd, void *pool, int *rx_checksums);
int np_port_mac(uint16_t port, uint8_t *out6);
int np_port_link(uint16_t port, int *up, uint32_t *speed_mbps);
int np_port_stats(uint16_t port, uint64_t *out8);
int np_port_close(uint16_t port);

/* pools, rings, memzones */
void *np_pool_create(const char *name, unsigned n, unsigned cache, uint16_t data_room);
void *np_pool_lookup(const char *name);
unsigned np_pool_in_use(void *pool);
unsigned np_ring_free_all(void *ring);
void *np_ring_create(const char *name, unsigned count);
void *np_ring_lookup(const char *name);
void *np_memzone_reserve(const char *name, size_t len);
void *np_memzone_lookup(const char *name);

/* mbuf layout, checked against nperf.kernels.mbuf at import */
void np_mbuf_layout(uint64_t *out13);

/* per-burst calls: all int64_t f(uint64_t, uint64_t, uint64_t, uint64_t) */
int64_t np_rx_burst(uint64_t port, uint64_t queue, uint64_t mbufs, uint64_t n);
int64_t np_tx_burst(uint64_t port, uint64_t queue, uint64_t mbufs, uint64_t n);
int64_t np_ring_enqueue(uint64_t ring, uint64_t mbufs, uint64_t n, uint64_t unused);
int64_t np_ring_dequeue(uint64_t ring, uint64_t mbufs, uint64_t n, uint64_t unused);
int64_t np_mbuf_alloc(uint64_t pool, uint64_t mbufs, uint64_t n, uint64_t unused);
int64_t np_mbuf_free(uint64_t mbufs, uint64_t n, uint64_t unused1, uint64_t unused2);
int64_t np_tsc(uint64_t a, uint64_t b, uint64_t c, uint64_t d);
int64_t np_tsc_hz(uint64_t a, uint64_t b, uint64_t c, uint64_t d);
int64_t np_sleep_ns(uint64_t ns, uint64_t b, uint64_t c, uint64_t d);
int64_t np_yield(uint64_t a, uint64_t b, uint64_t c, uint64_t d);
"""

SOURCE = r"""
#include <sched.h>
#include <string.h>
#include <time.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_memzone.h>

int np_eal_init(int argc, char **argv) { return rte_eal_init(argc, argv); }
int np_eal_cleanup(void) { return rte_eal_cleanup(); }
int np_errno(void) { return rte_errno; }
const char *np_strerror(int err) { return rte_strerror(err); }
int np_is_primary(void) { return rte_eal_process_type() == RTE_PROC_PRIMARY; }

uint16_t np_port_count(void) { return rte_eth_dev_count_avail(); }
int np_port_name(uint16_t port, char *out, size_t len) {
    char name[RTE_ETH_NAME_MAX_LEN];
    int rc = rte_eth_dev_get_name_by_port(port, name);
    if (rc == 0) { strncpy(out, name, len - 1); out[len - 1] = 0; }
    return rc;
}

/* Sets *rx_checksums to 1 when the port verifies IPv4, TCP and UDP checksums on receive (RX offload,
   all three or none): its mbufs' RTE_MBUF_F_RX_*_CKSUM_* flags then say what it found. */
int np_port_setup(uint16_t port, uint16_t nb_rxd, uint16_t nb_txd, void *pool, int *rx_checksums) {
    const uint64_t checksums = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM
        | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    memset(&conf, 0, sizeof(conf));
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc < 0) return rc;
    *rx_checksums = (info.rx_offload_capa & checksums) == checksums;
    if (*rx_checksums) conf.rxmode.offloads = checksums;
    rc = rte_eth_dev_configure(port, 1, 1, &conf);
    if (rc < 0) return rc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
    if (rc < 0) return rc;
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0) socket = 0;
    rc = rte_eth_rx_queue_setup(port, 0, nb_rxd, socket, NULL, (struct rte_mempool *)pool);
    if (rc < 0) return rc;
    rc = rte_eth_tx_queue_setup(port, 0, nb_txd, socket, NULL);
    if (rc < 0) return rc;
    rc = rte_eth_dev_start(port);
    if (rc < 0) return rc;
    rte_eth_promiscuous_enable(port);   /* not every PMD supports it; not an error */
    return 0;
}

int np_port_mac(uint16_t port, uint8_t *out6) {
    struct rte_ether_addr a;
    int rc = rte_eth_macaddr_get(port, &a);
    if (rc == 0) memcpy(out6, a.addr_bytes, 6);
    return rc;
}

int np_port_link(uint16_t port, int *up, uint32_t *speed_mbps) {
    struct rte_eth_link link;
    memset(&link, 0, sizeof(link));
    int rc = rte_eth_link_get_nowait(port, &link);
    *up = link.link_status;
    *speed_mbps = link.link_speed;
    return rc;
}

int np_port_stats(uint16_t port, uint64_t *out8) {
    struct rte_eth_stats s;
    int rc = rte_eth_stats_get(port, &s);
    if (rc < 0) return rc;
    out8[0] = s.ipackets; out8[1] = s.opackets; out8[2] = s.ibytes; out8[3] = s.obytes;
    out8[4] = s.imissed; out8[5] = s.ierrors; out8[6] = s.oerrors; out8[7] = s.rx_nombuf;
    return 0;
}

int np_port_close(uint16_t port) {
    int rc = rte_eth_dev_stop(port);
    int rc2 = rte_eth_dev_close(port);
    return rc < 0 ? rc : rc2;
}

void *np_pool_create(const char *name, unsigned n, unsigned cache, uint16_t data_room) {
    return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, rte_socket_id());
}
void *np_pool_lookup(const char *name) { return rte_mempool_lookup(name); }
/* Buffers taken from the pool: allocated, in rings, in descriptors (every lcore's cache counts as free). */
unsigned np_pool_in_use(void *pool) { return rte_mempool_in_use_count((struct rte_mempool *)pool); }

void *np_ring_create(const char *name, unsigned count) {
    return rte_ring_create(name, count, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
}
void *np_ring_lookup(const char *name) { return rte_ring_lookup(name); }
/* Free every mbuf still in a ring (its reader is gone); returns how many. */
unsigned np_ring_free_all(void *ring) {
    void *burst[64];
    unsigned n, total = 0;
    while ((n = rte_ring_dequeue_burst((struct rte_ring *)ring, burst, 64, NULL)) > 0) {
        rte_pktmbuf_free_bulk((struct rte_mbuf **)burst, n);
        total += n;
    }
    return total;
}

void *np_memzone_reserve(const char *name, size_t len) {
    const struct rte_memzone *mz = rte_memzone_reserve(name, len, rte_socket_id(), 0);
    if (mz == NULL) return NULL;
    memset(mz->addr, 0, len);
    return mz->addr;
}
void *np_memzone_lookup(const char *name) {
    const struct rte_memzone *mz = rte_memzone_lookup(name);
    return mz == NULL ? NULL : mz->addr;
}

void np_mbuf_layout(uint64_t *out13) {
    out13[0] = offsetof(struct rte_mbuf, buf_addr);
    out13[1] = offsetof(struct rte_mbuf, data_off);
    out13[2] = offsetof(struct rte_mbuf, pkt_len);
    out13[3] = offsetof(struct rte_mbuf, data_len);
    out13[4] = offsetof(struct rte_mbuf, nb_segs);
    out13[5] = offsetof(struct rte_mbuf, buf_len);
    out13[6] = RTE_PKTMBUF_HEADROOM;
    out13[7] = offsetof(struct rte_mbuf, next);
    out13[8] = offsetof(struct rte_mbuf, ol_flags);
    out13[9] = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    out13[10] = RTE_MBUF_F_RX_IP_CKSUM_BAD;
    out13[11] = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    out13[12] = RTE_MBUF_F_RX_L4_CKSUM_BAD;
}

int64_t np_rx_burst(uint64_t port, uint64_t queue, uint64_t mbufs, uint64_t n) {
    return rte_eth_rx_burst((uint16_t)port, (uint16_t)queue, (struct rte_mbuf **)mbufs, (uint16_t)n);
}
int64_t np_tx_burst(uint64_t port, uint64_t queue, uint64_t mbufs, uint64_t n) {
    return rte_eth_tx_burst((uint16_t)port, (uint16_t)queue, (struct rte_mbuf **)mbufs, (uint16_t)n);
}
int64_t np_ring_enqueue(uint64_t ring, uint64_t mbufs, uint64_t n, uint64_t unused) {
    (void)unused;
    return rte_ring_enqueue_burst((struct rte_ring *)ring, (void * const *)mbufs, (unsigned)n, NULL);
}
int64_t np_ring_dequeue(uint64_t ring, uint64_t mbufs, uint64_t n, uint64_t unused) {
    (void)unused;
    return rte_ring_dequeue_burst((struct rte_ring *)ring, (void **)mbufs, (unsigned)n, NULL);
}
int64_t np_mbuf_alloc(uint64_t pool, uint64_t mbufs, uint64_t n, uint64_t unused) {
    (void)unused;
    int rc = rte_pktmbuf_alloc_bulk((struct rte_mempool *)pool, (struct rte_mbuf **)mbufs, (unsigned)n);
    return rc == 0 ? (int64_t)n : 0;
}
int64_t np_mbuf_free(uint64_t mbufs, uint64_t n, uint64_t unused1, uint64_t unused2) {
    (void)unused1; (void)unused2;
    rte_pktmbuf_free_bulk((struct rte_mbuf **)mbufs, (unsigned)n);
    return 0;
}
int64_t np_tsc(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    (void)a; (void)b; (void)c; (void)d;
    return (int64_t)rte_rdtsc();
}
int64_t np_tsc_hz(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    (void)a; (void)b; (void)c; (void)d;
    return (int64_t)rte_get_tsc_hz();
}
int64_t np_sleep_ns(uint64_t ns, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    return nanosleep(&ts, NULL);
}
int64_t np_yield(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    (void)a; (void)b; (void)c; (void)d;
    return sched_yield();
}
"""

TLS_CDEF = """
/* TLS (OpenSSL 3): one SSL_CTX per role and process */
#define TLS1_2_VERSION ...
#define TLS1_3_VERSION ...
void *np_tls_ctx_new(int server, int min_version, int max_version, int resume);
int np_tls_ctx_credentials(void *ctx, const char *cert, const char *key);
int np_tls_ctx_algorithms(void *ctx, const char *ciphers, const char *suites, const char *groups);
void np_tls_ctx_free(void *ctx);
void np_tls_error(char *out, size_t len);
int np_tls_self_signed(const char *cert, const char *key, const char *cn, const char *san, int days);

/* per connection (by address from kernels: int64_t f(u64, u64, u64, u64)) */
#define NP_TLS_CLOSED ...
#define NP_TLS_FAILED ...
#define NP_TLS_CERT_FAILED ...
int64_t np_tls_new(uint64_t ctx, uint64_t server, uint64_t sni, uint64_t session);
int64_t np_tls_input(uint64_t ssl, uint64_t data, uint64_t len, uint64_t unused);
int64_t np_tls_read(uint64_t ssl, uint64_t out, uint64_t cap, uint64_t peek);
int64_t np_tls_write(uint64_t ssl, uint64_t data, uint64_t len, uint64_t unused);
int64_t np_tls_output(uint64_t ssl, uint64_t out, uint64_t cap, uint64_t unused);
int64_t np_tls_pending(uint64_t ssl, uint64_t received, uint64_t c, uint64_t d);
int64_t np_tls_state(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d);
int64_t np_tls_session(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d);
int64_t np_tls_session_free(uint64_t session, uint64_t b, uint64_t c, uint64_t d);
int64_t np_tls_close(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d);
int64_t np_tls_free(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d);
"""


ffibuilder = FFI()
ffibuilder.cdef(CDEF + TLS_CDEF)


def _tls_source() -> str:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls.c")) as f:
        return f.read()


def _configure() -> None:
    cflags = _pkg_config("--cflags")
    libs = _pkg_config("--libs")
    ffibuilder.set_source(
        "nperf.bindings._dpdk", SOURCE + _tls_source(),
        extra_compile_args=[f for f in cflags] + ["-O2", "-Wno-deprecated-declarations"],
        extra_link_args=libs,
    )


_configure()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
