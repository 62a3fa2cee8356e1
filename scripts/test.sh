#!/usr/bin/env bash
# Every test, on real DPDK: set up the machine, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 tests "$@"
