#!/usr/bin/env bash
# Set up (if needed) and run the demo: synthetic scene bag -> real avag_node over DDS -> report.
#   scripts/demo.sh [--out DIR] [--scenes N] [--device cuda]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
VENV="${AVAG_VENV:-$ROOT/.venv}"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
exec "$VENV/bin/avag" demo "$@"
