#!/usr/bin/env bash
# One-command setup of a development / CI environment for avag.
#
#   scripts/setup.sh            Debian packages (if missing) + .venv with pinned PyTorch and the
#                               PyPI ROS 2 Kilted wheels + the avag interfaces built from msg/
#                               + avag installed in editable mode.
#   scripts/setup.sh --system   For a machine that already has torch (e.g. JetPack) and/or ROS 2
#                               (apt, sourced): the venv sees system site-packages and nothing
#                               already importable there is installed again. The venv remembers
#                               it: later runs (and scripts/test.sh) keep to it.
#
# Idempotent: each step keeps a hash stamp in $VENV/.avag-stamps and is skipped when its
# inputs did not change, so a re-run takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AVAG_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
SYSTEM=0
for arg in "$@"; do
  case "$arg" in
    --system) SYSTEM=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[avag setup] %s\n' "$*"; }
STAMPS="$VENV/.avag-stamps"
# A venv set up with --system stays that way: a later run without it (scripts/test.sh runs
# this script plainly) must never install the pinned torch over the machine's own.
if [ "$SYSTEM" -eq 1 ]; then
  mkdir -p "$STAMPS" && printf system > "$STAMPS/mode"
elif [ "$(cat "$STAMPS/mode" 2>/dev/null)" = system ]; then
  SYSTEM=1
  log "$VENV was set up with --system: keeping the machine's torch and ROS"
fi

# stamp_ok NAME HASH: true when step NAME already ran with these inputs.
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" > "$STAMPS/$1"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# 1. Debian packages: build tools for the interfaces, PortAudio for the microphone node,
#    PulseAudio + sox for the virtual test microphone, espeak-ng and the freedesktop sound
#    theme for real speech and sounds in the distractor family (tests and synthetic data).
APT_PKGS=(cmake g++ make libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins sox espeak-ng sound-theme-freedesktop)
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then missing+=(python3-venv); fi
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
      SUDO="sudo"
    fi
    log "installing Debian packages: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "not a Debian system: make sure these are installed: ${APT_PKGS[*]}"
fi

# 2. Virtual environment. requirements/constraints.txt pins the set tested on CPython 3.11 and
#    3.12 (its numpy 2.4 and networkx 3.6 need 3.11 or newer). The PyPI ROS 2 wheels also come
#    for 3.10 and 3.13: --system takes the machine's Python and what it has installed.
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$SYSTEM" -eq 0 ]; then
    ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$ver" != "3.11" ] && [ "$ver" != "3.12" ]; then
      echo "setup.sh: the pinned environment (requirements/constraints.txt) is for Python 3.11 or 3.12 (found $ver via $PYTHON); set PYTHON=python3.12, or use --system to build on this Python and its installed packages" >&2
      exit 1
    fi
    "$PYTHON" -m venv "$VENV"
  else
    "$PYTHON" -m venv --system-site-packages "$VENV"
  fi
  log "created $VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# 3. Python dependencies, pinned by requirements/constraints.txt.
req_hash="$(hash_of "$ROOT"/requirements/*.txt)-$SYSTEM"
if ! stamp_ok pip "$req_hash"; then
  log "installing Python dependencies (first run: a few minutes)"
  "${PIP[@]}" install --upgrade pip "setuptools>=64,<80" wheel
  if [ "$SYSTEM" -eq 1 ]; then
    # Never replace an installed torch: robot.txt has nothing that depends on it, and timm
    # (which requires torch and torchvision) goes in without its dependencies.
    # Ubuntu 22.04 (JetPack 6, Humble): apt's Python modules are built against numpy 1.x,
    # and the newest opencv-python-headless would pull numpy 2 over it: keep 1.x.
    robot="$ROOT/requirements/robot.txt"
    if [ "$("$PY" -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null)" = 1 ]; then
      robot="$ROOT/requirements/jetpack6.txt"
    fi
    reqs=(-r "$robot" tensorboard pytest pytest-timeout ruff)
    "$PY" -c "import torch" 2>/dev/null || reqs+=(torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0)
    "$PY" -c "import rclpy" 2>/dev/null || reqs+=(-r "$ROOT/requirements/ros.txt")
    "${PIP[@]}" install "${reqs[@]}"
    "${PIP[@]}" install --no-deps -r "$ROOT/requirements/robot-nodeps.txt"
  else
    "${PIP[@]}" install -c "$ROOT/requirements/constraints.txt" -r "$ROOT/requirements/base.txt"
    "${PIP[@]}" install --no-deps -c "$ROOT/requirements/constraints.txt" -r "$ROOT/requirements/colcon-nodeps.txt"
  fi
  stamp_set pip "$req_hash"
fi
# 4. ROS interfaces (msg/ -> C + Python type support), node launchers, launch/ and config/,
#    built with the same CMakeLists.txt that colcon uses and installed into the venv prefix,
#    so `import avag.msg` works with no sourcing and launch finds share/avag and lib/avag.
if [ "$SYSTEM" -eq 0 ] || ! "$PY" -c "import rclpy" 2>/dev/null || [ -z "${AMENT_PREFIX_PATH:-}" ]; then
  PREFIX_PATH="$VENV"
else
  PREFIX_PATH="$VENV:$AMENT_PREFIX_PATH"
fi
# Only msg/, srv/ and the build files need a rebuild (~25 s); an edited launch file, config
# file or launcher is copied by `cmake --install` alone (well under a second).
BUILD="$ROOT/build/interfaces"
msg_hash="$(hash_of "$ROOT"/msg/*.msg "$ROOT"/srv/*.srv "$ROOT/CMakeLists.txt" "$ROOT/package.xml")"
files_hash="$(hash_of "$ROOT"/launch/* "$ROOT"/config/* "$ROOT"/scripts/avag "$ROOT"/scripts/avag_node "$ROOT"/scripts/audio_capture_node "$ROOT"/scripts/avag_bag_player)"
if ! stamp_ok interfaces "$msg_hash" || ! [ -f "$BUILD/cmake_install.cmake" ] || ! "$PY" -c "import avag.msg" 2>/dev/null; then
  log "building interfaces from msg/"
  mkdir -p "$ROOT/build"
  rm -rf "$BUILD"
  (
    export AMENT_PREFIX_PATH="$PREFIX_PATH" CMAKE_PREFIX_PATH="$PREFIX_PATH"
    cmake -S "$ROOT" -B "$BUILD" -DAVAG_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" >"$BUILD.log" 2>&1 \
    && cmake --build "$BUILD" -j"$(nproc)" >>"$BUILD.log" 2>&1 \
    && cmake --install "$BUILD" >>"$BUILD.log" 2>&1
  ) || { echo "setup.sh: interface build failed, see $BUILD.log" >&2; tail -20 "$BUILD.log" >&2; exit 1; }
  # The CMake install registers an 'avag' egg-info for the generated module; pip owns that
  # distribution name (editable install below), so drop CMake's metadata.
  rm -rf "$VENV"/lib/python3*/site-packages/avag-*.egg-info
  stamp_set interfaces "$msg_hash"
  stamp_set installed_files "$files_hash"
  stamp_set editable ""
elif ! stamp_ok installed_files "$files_hash"; then
  log "installing launch/, config/ and the node launchers"
  cmake --install "$BUILD" >"$BUILD.log" 2>&1 || { echo "setup.sh: install failed, see $BUILD.log" >&2; exit 1; }
  rm -rf "$VENV"/lib/python3*/site-packages/avag-*.egg-info
  stamp_set installed_files "$files_hash"
fi

# 5. avag itself, editable.
ed_hash="$(hash_of "$ROOT/setup.py" "$ROOT/pyproject.toml")"
if ! stamp_ok editable "$ed_hash" || ! "$PY" -c "import avag_core, avag_ros" 2>/dev/null; then
  log "installing avag (editable)"
  "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT" 2>&1 | grep -v "^\s*$" | grep -iE "error" || true
  "$PY" -c "import avag_core, avag_ros" || { echo "setup.sh: editable install of avag failed" >&2; exit 1; }
  stamp_set editable "$ed_hash"
fi

# 6. Activation also exposes the venv as an ament prefix (package share lookup, like a
#    sourced ROS workspace).
if ! grep -q "avag: ament prefix" "$VENV/bin/activate"; then
  cat >> "$VENV/bin/activate" <<'ACT'
# avag: ament prefix
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
ACT
fi

log "ready: source $VENV/bin/activate"
