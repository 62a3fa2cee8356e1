"""A worker's TLS settings checked through OpenSSL 3, and self-signed test certificates.

HTTPS runs one OpenSSL `SSL_CTX` per role and process. Building it is where
every mistake in `http_config`'s TLS keys shows, so a role builds it before
anything else starts and turns each failure into a `ConfigError` that names
the file and the key: a missing or unreadable certificate or key, a key that
is not the certificate's, a cipher list, suite list or group list that
OpenSSL refuses. Certificate and key paths are relative to the directory of
the config file that names them, as in the seed configs.

Each connection has its own `SSL` from this context, driven by the kernels
(`nperf.kernels.tls_layer`) through the per-connection calls of
`nperf/bindings/tls.c`; `layer` gives them the context and those calls'
addresses.
"""
from __future__ import annotations

import ipaddress
import os

import numpy as np

from nperf.bindings.dpdk import ffi, lib
from nperf.config import ConfigError, HttpConfig
from nperf.kernels import tls_layer

SLOTS = 16384          # TLS connections open at once per worker, at most: 1 GiB of rings reserved
VERSIONS = {"1.2": lib.TLS1_2_VERSION, "1.3": lib.TLS1_3_VERSION}
RESUMPTION = {"off": 0, "tickets": 1, "ids": 2}     # np_tls_ctx_new's `resume`

# np_tls_ctx_credentials' and np_tls_ctx_algorithms' failures: (key, what OpenSSL refused)
_CREDENTIALS = {1: ("cert_path", "holds no PEM certificate"), 2: ("key_path", "holds no PEM private key"),
                3: ("key_path", "is not the private key of the certificate")}
_ALGORITHMS = {1: "tls_ciphers", 2: "tls_ciphersuites", 3: "tls_groups"}


def _openssl_reason() -> str:
    out = ffi.new("char[256]")
    lib.np_tls_error(out, 256)
    why = ffi.string(out).decode(errors="replace")
    return f" (OpenSSL: {why})" if why else ""


def resolve(path: str, config_file: str) -> str:
    """`path` as the config file means it: relative to that file's directory."""
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_file)), path))


class Context:
    """One role's `SSL_CTX`, built from a worker file's `http_config` (raises ConfigError)."""

    def __init__(self, http: HttpConfig, role: str, config_file: str):
        self.file = config_file
        self.server = role == "server"
        self.resume = http.session_resumption != "off"
        self.sni = ffi.new("char[]", http.sni.encode()) if http.sni and not self.server else ffi.NULL
        versions = sorted(VERSIONS[v] for v in http.tls_versions)
        self.ctx = lib.np_tls_ctx_new(int(role == "server"), versions[0], versions[-1],
                                      RESUMPTION[http.session_resumption])
        if self.ctx == ffi.NULL:
            raise ConfigError(config_file, "$.http_config.tls_versions",
                              f"OpenSSL cannot make a TLS context{_openssl_reason()}")
        try:
            rc = lib.np_tls_ctx_algorithms(self.ctx, http.tls_ciphers.encode(), http.tls_ciphersuites.encode(),
                                           http.tls_groups.encode())
            if rc:
                key = _ALGORITHMS[rc]
                raise ConfigError(config_file, f"$.http_config.{key}",
                                  f"OpenSSL accepts none of {getattr(http, key)!r}{_openssl_reason()}")
            if role == "server":
                self._credentials(http)
        except BaseException:
            self.close()
            raise

    def _credentials(self, http: HttpConfig) -> None:
        paths = {}
        for key in ("cert_path", "key_path"):
            if not getattr(http, key):
                raise ConfigError(self.file, f"$.http_config.{key}", "use_https is 1, so the server needs this file")
            paths[key] = path = resolve(getattr(http, key), self.file)
            try:
                with open(path, "rb"):
                    pass
            except OSError as e:
                raise ConfigError(self.file, f"$.http_config.{key}", f"cannot read {path}: {e.strerror}") from None
        rc = lib.np_tls_ctx_credentials(self.ctx, paths["cert_path"].encode(), paths["key_path"].encode())
        if rc:
            key, what = _CREDENTIALS[rc]
            raise ConfigError(self.file, f"$.http_config.{key}", f"{paths[key]} {what}{_openssl_reason()}")

    def layer(self, max_conns: int) -> tls_layer.Tls:
        """The kernels' TLS layer on this context: a slot pool for up to `max_conns` connections open at
        once, at most SLOTS (each slot's ciphertext ring is reserved, and touched only when used)."""
        conf = np.zeros(len(tls_layer.CONF_WORDS), np.int64)
        conf[tls_layer.TC_ON] = 1
        conf[tls_layer.TC_CTX] = int(ffi.cast("uintptr_t", self.ctx))
        conf[tls_layer.TC_SERVER] = int(self.server)
        conf[tls_layer.TC_SNI] = int(ffi.cast("uintptr_t", self.sni))
        conf[tls_layer.TC_RESUME] = int(self.resume)
        for i, name in enumerate(tls_layer.FN_NAMES):
            conf[tls_layer.TC_NEW + i] = int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
        return tls_layer.new_layer(min(max_conns, SLOTS), conf)

    def close(self) -> None:
        if self.ctx != ffi.NULL:
            lib.np_tls_ctx_free(self.ctx)
            self.ctx = ffi.NULL


class CertError(Exception):
    """`nperf cert` could not write its files; the message says why."""


def self_signed(directory: str, names: list[str], days: int = 825, force: bool = False) -> tuple[str, str]:
    """Write `server.crt` and `server.key` (P-256, mode 0600) into `directory` for test servers.

    The certificate is its own issuer, for `curl --cacert`: its subject CN is
    the first name, and every name (host name or IP address) is in its
    subjectAltName, which is what clients check.
    """
    if not names:
        raise CertError("at least one host name or address is needed")
    san = ",".join(("IP:" if _is_address(n) else "DNS:") + n for n in names)
    cert, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    if not force:
        for path in (cert, key):
            if os.path.exists(path):
                raise CertError(f"{path} exists (--force replaces it)")
    try:
        os.makedirs(directory, exist_ok=True)
        os.close(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))   # the key is born private
        os.chmod(key, 0o600)
    except OSError as e:
        raise CertError(f"cannot write into {directory}: {e.strerror}") from None
    if lib.np_tls_self_signed(cert.encode(), key.encode(), names[0].encode(), san.encode(), days) != 0:
        raise CertError(f"OpenSSL could not make the certificate for {san}{_openssl_reason()}")
    return cert, key


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
