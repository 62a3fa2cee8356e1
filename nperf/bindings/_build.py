"""cffi (API mode) build of the DPDK extension `nperf.bindings._dpdk`, with OpenSSL 3.

API mode is required: `rte_eth_rx_burst`, ring bursts and mbuf bulk alloc are
`static inline` in DPDK 22.11, so they can only be reached through small C
wrappers compiled against the headers.

The per-burst wrappers share one C signature, `int64_t f(u64, u64, u64, u64)`,
so that one Numba intrinsic can call any of them through a function address
(see `nperf.bindings.intrinsics`); cached kernels cannot reference cffi
functions directly.

OpenSSL is compiled into the same extension (TLS_CDEF, TLS_SOURCE) so that
kernels can later reach it by function address like the burst wrappers; for
now it checks a role's TLS settings and writes test certificates.
"""
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
int np_port_setup(uint16_t port, uint16_t nb_rxd, uint16_t nb_txd, void *pool);
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
void np_mbuf_layout(uint64_t *out8);

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

int np_port_setup(uint16_t port, uint16_t nb_rxd, uint16_t nb_txd, void *pool) {
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    int rc = rte_eth_dev_configure(port, 1, 1, &conf);
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

void np_mbuf_layout(uint64_t *out8) {
    out8[0] = offsetof(struct rte_mbuf, buf_addr);
    out8[1] = offsetof(struct rte_mbuf, data_off);
    out8[2] = offsetof(struct rte_mbuf, pkt_len);
    out8[3] = offsetof(struct rte_mbuf, data_len);
    out8[4] = offsetof(struct rte_mbuf, nb_segs);
    out8[5] = offsetof(struct rte_mbuf, buf_len);
    out8[6] = RTE_PKTMBUF_HEADROOM;
    out8[7] = offsetof(struct rte_mbuf, next);
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
void *np_tls_ctx_new(int server, int min_version, int max_version);
int np_tls_ctx_credentials(void *ctx, const char *cert, const char *key);
int np_tls_ctx_algorithms(void *ctx, const char *ciphers, const char *suites, const char *groups);
void np_tls_ctx_free(void *ctx);
void np_tls_error(char *out, size_t len);
int np_tls_self_signed(const char *cert, const char *key, const char *cn, const char *san, int days);
"""

TLS_SOURCE = r"""
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

void *np_tls_ctx_new(int server, int min_version, int max_version) {
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c == NULL) return NULL;
    if (!SSL_CTX_set_min_proto_version(c, min_version) || !SSL_CTX_set_max_proto_version(c, max_version)) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

/* 0: loaded; 1: the certificate file holds no PEM certificate; 2: the key file
   holds no PEM private key; 3: the key is not the certificate's. */
int np_tls_ctx_credentials(void *ctx, const char *cert, const char *key) {
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) return 1;
    BIO *b = BIO_new_file(key, "r");
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k == NULL) return 2;
    int ok = SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(k);
    return ok ? 0 : 3;
}

/* 0: set; 1, 2, 3: OpenSSL refused the TLS 1.2 ciphers, the TLS 1.3 suites or the groups.
   An empty string keeps OpenSSL's default. */
int np_tls_ctx_algorithms(void *ctx, const char *ciphers, const char *suites, const char *groups) {
    ERR_clear_error();
    if (*ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) return 1;
    if (*suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1) return 2;
    if (*groups && SSL_CTX_set1_groups_list(ctx, groups) != 1) return 3;
    return 0;
}

void np_tls_ctx_free(void *ctx) { SSL_CTX_free(ctx); }

/* The reason of the last queued OpenSSL error ("" if none), and the queue cleared. */
void np_tls_error(char *out, size_t len) {
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, len, "%s", why ? why : "");
    ERR_clear_error();
}

static int add_ext(X509 *x, int nid, const char *value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A P-256 key and a self-signed certificate for `cn` with subjectAltName `san`
   ("DNS:host,IP:addr"), valid `days`, written as PEM. 0 or -1. */
int np_tls_self_signed(const char *cert, const char *key, const char *cn, const char *san, int days) {
    ERR_clear_error();
    int ok = 0;
    unsigned char serial[16];
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    BIO *out = NULL;
    if (k == NULL || x == NULL || RAND_bytes(serial, sizeof serial) != 1) goto done;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *name = X509_get_subject_name(x);
    ok = bn != NULL && X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL
        && X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400)
        && X509_set_pubkey(x, k)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
        && X509_set_issuer_name(x, name)
        && add_ext(x, NID_basic_constraints, "critical,CA:TRUE")
        && add_ext(x, NID_subject_key_identifier, "hash")
        && add_ext(x, NID_subject_alt_name, san)
        && X509_sign(x, k, EVP_sha256()) > 0;
    if (!ok) goto done;
    out = BIO_new_file(key, "w");
    ok = out != NULL && PEM_write_bio_PrivateKey(out, k, NULL, NULL, 0, NULL, NULL);
    BIO_free(out);
    if (!ok) goto done;
    out = BIO_new_file(cert, "w");
    ok = out != NULL && PEM_write_bio_X509(out, x);
    BIO_free(out);
done:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF + TLS_CDEF)


def _configure() -> None:
    cflags = _pkg_config("--cflags")
    libs = _pkg_config("--libs")
    ffibuilder.set_source(
        "nperf.bindings._dpdk", SOURCE + TLS_SOURCE,
        extra_compile_args=[f for f in cflags] + ["-O2", "-Wno-deprecated-declarations"],
        extra_link_args=libs,
    )


_configure()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
