#!/usr/bin/env bash
# The main job: `nperf run` of the seed's memif test3 topology (examples/memif/test3,
# the seed files unchanged: lb_s, lb_c, server, client as four processes), its
# phases fitted into ${DEMO_SECONDS:-30} seconds, after setting the machine up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/nperf run examples/memif/test3 --duration "${DEMO_SECONDS:-30}" "$@"
