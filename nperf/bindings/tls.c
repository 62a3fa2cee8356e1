/* nperf's TLS through OpenSSL 3, compiled into the DPDK extension by _build.py
   (declarations: TLS_CDEF there). */
#include <stdint.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static const unsigned char ALPN[] = "\x08http/1.1";

/* The server picks http/1.1 when the client offers it, and goes on without ALPN otherwise. */
static int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    (void)s; (void)arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ALPN, sizeof ALPN - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A role's context: versions min..max, ALPN http/1.1, and session resumption
   (`resume`: 0 off, 1 session tickets, 2 session IDs). A server resumes
   either way a client asks; a client offers what `resume` says (TLS 1.3 has
   no session IDs: there a client resumes by ticket either way). */
void *np_tls_ctx_new(int server, int min_version, int max_version, int resume) {
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c == NULL) return NULL;
    int ok = SSL_CTX_set_min_proto_version(c, min_version) && SSL_CTX_set_max_proto_version(c, max_version);
    if (server) {
        SSL_CTX_set_alpn_select_cb(c, select_alpn, NULL);
        ok = ok && SSL_CTX_set_session_id_context(c, (const unsigned char *)"nperf", 5);
    } else {
        ok = ok && SSL_CTX_set_alpn_protos(c, ALPN, sizeof ALPN - 1) == 0;
        SSL_CTX_set_session_cache_mode(c, resume ? SSL_SESS_CACHE_CLIENT : SSL_SESS_CACHE_OFF);
        if (resume != 1) SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    }
    if (!ok) {
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

/* One connection: an SSL between two memory BIOs, ciphertext in from TCP
   (np_tls_input) and out to TCP (np_tls_output), plaintext through
   np_tls_read and np_tls_write. Every call has the burst wrappers' signature,
   int64_t f(u64, u64, u64, u64), so a kernel makes it by address, once per
   connection event. Results below 0 are these NP_TLS_* codes: */

#define NP_TLS_CLOSED (-1)        /* the peer's close_notify */
#define NP_TLS_FAILED (-2)        /* a protocol error or an alert: the connection is dead */
#define NP_TLS_CERT_FAILED (-3)   /* dead over a certificate: ours refused by the peer, or the peer's */

/* Whether the error at the queue's end is about a certificate: the peer's alert refusing ours, or
   the peer's failing our verification. */
static int certificate_error(SSL *s) {
    if (SSL_get_verify_result(s) != X509_V_OK) return 1;
    switch (ERR_GET_REASON(ERR_peek_last_error())) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return 1;
    default:
        return 0;
    }
}

static int64_t outcome(SSL *s, int rc) {
    int64_t r;
    switch (SSL_get_error(s, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: r = 0; break;
    case SSL_ERROR_ZERO_RETURN: r = NP_TLS_CLOSED; break;
    default: r = certificate_error(s) ? NP_TLS_CERT_FAILED : NP_TLS_FAILED;
    }
    ERR_clear_error();      /* SSL_get_error needs an empty queue before the next call */
    return r;
}

/* A new connection's SSL (0 if OpenSSL has no memory): `sni` a C string or 0,
   `session` a client's SSL_SESSION to resume or 0. */
int64_t np_tls_new(uint64_t ctx, uint64_t server, uint64_t sni, uint64_t session) {
    SSL *s = SSL_new((SSL_CTX *)ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (s == NULL || r == NULL || w == NULL) {
        BIO_free(r);
        BIO_free(w);
        SSL_free(s);
        ERR_clear_error();
        return 0;
    }
    BIO_set_mem_eof_return(r, -1);      /* an empty read BIO means "more later", not EOF */
    SSL_set_bio(s, r, w);
    if (server) {
        SSL_set_accept_state(s);
    } else {
        SSL_set_connect_state(s);
        if ((sni && !SSL_set_tlsext_host_name(s, (const char *)sni))
            || (session && !SSL_set_session(s, (SSL_SESSION *)session))) {
            SSL_free(s);
            ERR_clear_error();
            return 0;
        }
    }
    return (int64_t)(uintptr_t)s;
}

/* Ciphertext received from TCP, `len` bytes at `data`: bytes taken (all) or NP_TLS_FAILED. */
int64_t np_tls_input(uint64_t ssl, uint64_t data, uint64_t len, uint64_t unused) {
    (void)unused;
    if (len == 0) return 0;
    int n = BIO_write(SSL_get_rbio((SSL *)ssl), (const void *)(uintptr_t)data, (int)len);
    return n == (int)len ? n : NP_TLS_FAILED;
}

/* The handshake driven as far as the input allows, then plaintext read into
   out[0..cap): bytes read, 0 when more ciphertext is needed, or NP_TLS_*.
   With `peek` the bytes stay to be read again: the caller reads only what
   its application took. */
int64_t np_tls_read(uint64_t ssl, uint64_t out, uint64_t cap, uint64_t peek) {
    SSL *s = (SSL *)ssl;
    int rc;
    if (!SSL_is_init_finished(s) && (rc = SSL_do_handshake(s)) != 1) return outcome(s, rc);
    size_t n = 0;
    rc = peek ? SSL_peek_ex(s, (void *)(uintptr_t)out, (size_t)cap, &n)
              : SSL_read_ex(s, (void *)(uintptr_t)out, (size_t)cap, &n);
    return rc == 1 ? (int64_t)n : outcome(s, rc);
}

/* Plaintext to send: bytes taken (all of them: the memory BIO never pushes
   back), 0 while the handshake is not done, or NP_TLS_*. */
int64_t np_tls_write(uint64_t ssl, uint64_t data, uint64_t len, uint64_t unused) {
    (void)unused;
    SSL *s = (SSL *)ssl;
    if (!SSL_is_init_finished(s)) return 0;
    size_t n = 0;
    int rc = SSL_write_ex(s, (const void *)(uintptr_t)data, (size_t)len, &n);
    return rc == 1 ? (int64_t)n : outcome(s, rc);
}

/* Ciphertext to send to TCP: up to `cap` bytes moved to `out`; the count. */
int64_t np_tls_output(uint64_t ssl, uint64_t out, uint64_t cap, uint64_t unused) {
    (void)unused;
    int n = BIO_read(SSL_get_wbio((SSL *)ssl), (void *)(uintptr_t)out, (int)cap);
    return n > 0 ? n : 0;
}

/* Ciphertext bytes waiting for np_tls_output, or with `received`, received
   ciphertext not yet read into a record. */
int64_t np_tls_pending(uint64_t ssl, uint64_t received, uint64_t c, uint64_t d) {
    (void)c; (void)d;
    SSL *s = (SSL *)ssl;
    return (int64_t)BIO_ctrl_pending(received ? SSL_get_rbio(s) : SSL_get_wbio(s));
}

/* Bit 0: the handshake is done; bit 1: it resumed a session; bit 2: ALPN
   agreed on http/1.1; bits 8-23: the protocol version (0x0303 TLS 1.2, 0x0304 TLS 1.3). */
int64_t np_tls_state(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    SSL *s = (SSL *)ssl;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(s, &alpn, &alpn_len);
    int64_t st = SSL_is_init_finished(s) ? 1 : 0;
    if (SSL_session_reused(s)) st |= 2;
    if (alpn_len == sizeof ALPN - 2 && memcmp(alpn, ALPN + 1, alpn_len) == 0) st |= 4;
    return st | ((int64_t)SSL_version(s) << 8);
}

/* A client's session to resume later (a new reference, 0 if none yet: in TLS
   1.3 it arrives after the handshake, with the first records read). */
int64_t np_tls_session(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    SSL_SESSION *sess = SSL_get1_session((SSL *)ssl);
    if (sess != NULL && !SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(sess);
        sess = NULL;
    }
    return (int64_t)(uintptr_t)sess;
}

int64_t np_tls_session_free(uint64_t session, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    SSL_SESSION_free((SSL_SESSION *)session);
    return 0;
}

/* Our close_notify, into the output. */
int64_t np_tls_close(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    int rc = SSL_shutdown((SSL *)ssl);
    ERR_clear_error();
    return rc < 0 ? NP_TLS_FAILED : 0;
}

int64_t np_tls_free(uint64_t ssl, uint64_t b, uint64_t c, uint64_t d) {
    (void)b; (void)c; (void)d;
    SSL_free((SSL *)ssl);
    return 0;
}
