#!/usr/bin/env bash
# Every test, on real DPDK: set up the machine, then pytest, layer by layer.
# tests/unit first (no root, no DPDK: a kernel bug fails in minutes), then tests/dpdk.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 -m unit tests "$@"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 -m dpdk tests "$@"
