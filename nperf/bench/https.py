"""`nperf bench https`: nperf's HTTPS against wrk -> nginx over https, on the same two CPUs.

nperf runs `nperf bench dperf`'s direct memif link (client on CPU 0, server
on CPU 1, no lb, 100-byte body) with `use_https: 1` on both sides; its peer
is wrk on CPU 0 against one nginx worker on CPU 1, over loopback, with the
same certificate. Both speak TLS 1.3 only, so both negotiate
TLS_AES_256_GCM_SHA384 over X25519 (OpenSSL's defaults); each round runs
for an ECDSA P-256 certificate (`nperf cert`) and for an RSA 2048 one
(openssl req). Three figures, alternating nperf and its peer `--rounds`
times:

(a) full-handshake connections/s: one request per connection; nperf's
    client offers no session, and nginx keeps none (no cache, no tickets)
    so that wrk, which resumes when it can, cannot;
(b) resumed-handshake connections/s: nperf's client resumes by ticket, and
    nginx issues tickets, which wrk takes;
(c) keep-alive HTTPS requests/s on 1,000 connections (wrk: -c1000).

The medians of the per-round ratios nperf / (wrk -> nginx) are printed per
certificate type, with the issue's targets (a: 1.5, c: 3). Each side
verifies differently: nperf's client does not check the certificate (as
wrk does not), both check every TLS record; nperf also sums every frame's
checksums in software.
"""
import json
import os
import shutil
import statistics
import subprocess
import tempfile

from nperf import tls
from nperf.bench import median_ratio
from nperf.bench.dperf import CLIENT_CPU, SERVER_CPU, nperf_rate
from nperf.bench.e2e import Nginx, wrk_rate

KINDS = {"full_cps": ("full-handshake connections/s", False, "off"),
         "resumed_cps": ("resumed-handshake connections/s", False, "tickets"),
         "rps": ("keep-alive requests/s", True, "off")}
TARGETS = {"full_cps": 1.5, "rps": 3.0}


def certificates(work: str) -> dict[str, tuple[str, str]]:
    """(certificate, key) files by type: ECDSA P-256 and RSA 2048, self-signed for 127.0.0.1."""
    ec = os.path.join(work, "ecdsa")
    rsa = os.path.join(work, "rsa")
    os.makedirs(rsa)
    out = {"ECDSA P-256": tls.self_signed(ec, ["127.0.0.1"])}
    cert, key = os.path.join(rsa, "server.crt"), os.path.join(rsa, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    out["RSA 2048"] = (cert, key)
    return out


def _https(cert: str, key: str, resumption: str):
    """nperf's roles over TLS 1.3 with this certificate (a tune for nperf_rate)."""
    def tune(cfg):
        h = cfg.http_config
        h.use_https, h.cert_path, h.key_path = 1, cert, key
        h.tls_versions, h.session_resumption = ["1.3"], resumption
    return tune


def main(args) -> int:
    secs = max(args.seconds, 5.0)
    print(f"nperf bench https: nperf over a direct memif link (client CPU {CLIENT_CPU}, server CPU {SERVER_CPU}) "
          f"against wrk -> nginx over loopback https (wrk CPU {CLIENT_CPU}, one nginx worker CPU {SERVER_CPU}); "
          f"TLS 1.3, TLS_AES_256_GCM_SHA384, X25519; {secs:g} s per run, {args.rounds} rounds", flush=True)
    work = tempfile.mkdtemp(prefix="nperf-bench-https-")
    rows = {}
    try:
        for cert_type, (cert, key) in certificates(work).items():
            for kind, (label, keepalive, resumption) in KINDS.items():
                ours, peer = rows.setdefault((cert_type, kind), ([], []))
                nginx = Nginx(tls=(cert, key, resumption != "off"), cpu=SERVER_CPU)
                try:
                    for r in range(1, args.rounds + 1):
                        value, note = nperf_rate(keepalive, secs, tune=_https(cert, key, resumption))
                        ours.append(value)
                        print(f"{cert_type} {label} round {r} nperf: {value:,.0f} ({note})", flush=True)
                        value, note = wrk_rate(nginx.port, keepalive, secs, https=True, cpu=CLIENT_CPU)
                        peer.append(value)
                        print(f"{cert_type} {label} round {r} wrk -> nginx: {value:,.0f} ({note})", flush=True)
                finally:
                    nginx.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for (cert_type, kind), (ours, peer) in rows.items():
        target = f" (target >= {TARGETS[kind]:g})" if kind in TARGETS else ""
        print(f"{cert_type} {KINDS[kind][0]}: nperf median {statistics.median(ours):,.0f}, wrk -> nginx median "
              f"{statistics.median(peer):,.0f}; median ratio {median_ratio(ours, peer):.2f}{target}")
    print(json.dumps({f"{cert_type} {kind}": {"nperf": ours, "wrk_nginx": peer}
                      for (cert_type, kind), (ours, peer) in rows.items()}))
    return 0
