#!/usr/bin/env bash
# Every test, on real DPDK: set up the machine, then pytest, layer by layer.
# tests/unit first (no root, no DPDK: a kernel bug fails in minutes), then tests/dpdk.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The unit layer is CPU work (mostly compiling kernels) in two processes, a module each at a
# time: the bounds-checked rerun (one test, the longest) runs in one while the other runs every
# other module. The rerun itself stays one process: two would compile the same kernels twice.
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 -n 2 --dist loadfile -m unit tests "$@"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 -m dpdk tests "$@"
