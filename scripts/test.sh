#!/usr/bin/env bash
# Every test, on real DPDK: set up the machine, then pytest, layer by layer.
# tests/unit first (no root, no DPDK: a kernel bug fails in minutes), then tests/dpdk.
#
# The unit layer is CPU work, mostly compiling kernels, on this machine's two cores. One
# runs the bounds-checked rerun of the unit tests (test_with_bounds_checks: its own kernels)
# from the start; the other compiles the roles' kernels (the warm-up the DPDK layer needs)
# and then runs every other unit test, which load the warm-up's worker_turn from the cache.
# The DPDK layer runs alone after both:
# its processes poll and measure, and a compile beside them would starve them. The slowest
# tests are listed at the end of each layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-warmup
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 --durations=15)
RERUN=tests/unit/test_with_bounds_checks.py::test_unit_tests_pass_with_bounds_checks
log=$(mktemp)
setsid -w "${PYTEST[@]}" "$RERUN" >"$log" 2>&1 &
rerun=$!
trap 'kill -- -$rerun 2>/dev/null || kill $rerun 2>/dev/null || true; rm -f "$log"' EXIT
.venv/bin/python -m nperf.warmup
"${PYTEST[@]}" -m unit tests --deselect "$RERUN" "$@"
status=0
wait "$rerun" || status=$?
echo "bounds-checked rerun of the unit tests:"
cat "$log"
[ "$status" -eq 0 ]
"${PYTEST[@]}" -m dpdk tests "$@"
