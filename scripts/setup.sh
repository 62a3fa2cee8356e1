#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine, run as root: DPDK and the kernel-side
# test peers from apt, 2 MB hugepages, and nperf in a virtual environment
# (.venv, reusing the system's packages) built from this checkout, its kernels
# compiled (--no-warmup: the caller compiles them itself, when it suits it).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libdpdk-dev dpdk-dev libssl-dev openssl pkg-config iputils-ping curl wrk nginx haproxy apache2 lighttpd h2o caddy iproute2 coreutils tcpdump"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
systemctl disable --now nginx >/dev/null 2>&1 || true   # tests start their own nginx

if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then echo 1024 > /proc/sys/vm/nr_hugepages; fi
mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }

if [ ! -x .venv/bin/python ]; then python3 -m venv --system-site-packages .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
if [ "${1:-}" != "--no-warmup" ]; then
    .venv/bin/python -m nperf.warmup        # compile every kernel once (cached under nperf/)
fi
