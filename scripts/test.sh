#!/usr/bin/env bash
# Run the test suite from nothing: sets up the environment (idempotent), checks style, runs pytest.
#   scripts/test.sh                 everything
#   scripts/test.sh -m "not slow"   extra arguments go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
VENV="${AVAG_VENV:-$ROOT/.venv}"
cd "$ROOT"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"
