#!/usr/bin/env bash
# The main job until `nperf run` lands: the memif test3 load balancers
# (examples/memif/test3, the seed's files unchanged) linked over memif for
# ${DEMO_SECONDS:-8} seconds, each printing its statistics line per second.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
NPERF=.venv/bin/nperf
DIR=examples/memif/test3
$NPERF check $DIR/*.json
$NPERF lb $DIR/lb_s.json & S=$!
sleep 1          # the memif master must own the socket before the slave connects
$NPERF lb $DIR/lb_c.json & C=$!
trap 'kill -INT $S $C 2>/dev/null || true; wait' EXIT
sleep "${DEMO_SECONDS:-8}"
