#!/usr/bin/env bash
# GPU check of avag on a machine with an NVIDIA GPU, from a fresh clone, in about 8 minutes:
#   1. setup (scripts/setup.sh) + onnxruntime-gpu (+ TensorRT libraries) in the venv
#   2. the CUDA tests (test_model_cuda.py, test_backend_cuda.py, test_backend_cudagraph.py,
#      test_train_resume.py's CUDA case)
#   3. benchmarks, one interleaved run per group: paper + realtime x torch/cudagraph/onnxruntime (CUDA)
#      x fp32/fp16/bf16; realtime on TensorRT fp32/fp16 (paper too with AVAG_GPU_TRT_PAPER=1)
#   4. a few AMP (fp16) training steps of paper at batch 8 and 24: step time, items/s, peak memory
#   5. node latency with device cuda (a live camera + microphone stream into avag_node)
#   6. one JSON + one table: $OUT/gpu_check.json, $OUT/gpu_check.txt
#
#   scripts/gpu_check.sh [OUT_DIR]          (default out/gpu_check)
#   AVAG_PYTHON=python3 scripts/gpu_check.sh [OUT_DIR]
#                                           on an image that already holds torch with CUDA and
#                                           avag's requirements (a JetPack or CUDA container, no
#                                           package registry): that interpreter as it is, avag
#                                           from this checkout, nothing installed; onnxruntime
#                                           and rclpy as they are there (the steps that need
#                                           what is missing are skipped, and the summary says so)
# Environment: AVAG_GPU_ORT=0 skips onnxruntime-gpu; AVAG_ORT_GPU_PIP / AVAG_TRT_PIP choose
# the pip requirements (default: onnxruntime-gpu of the pinned onnxruntime version with its
# CUDA/cuDNN libraries, and TensorRT 10 for CUDA 12, the pairing of PyPI's onnxruntime-gpu).
# Fails loudly: any setup or benchmark error stops it; failed CUDA tests are reported at the
# end (after the benchmarks, so one GPU session gives all the figures) with a non-zero exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/out/gpu_check}" && cd "${1:-$ROOT/out/gpu_check}" && pwd)"
VENV="${AVAG_VENV:-$ROOT/.venv}"
PY="${AVAG_PYTHON:-$VENV/bin/python}"
[ -n "${AVAG_PYTHON:-}" ] && export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AVAG_CACHE_DIR="$OUT/cache"   # exported graphs and TensorRT engines of this run
T0=$SECONDS
step() { printf '\n[gpu_check %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
trap 'echo "[gpu_check] FAILED at line $LINENO (exit $?): see the output above" >&2' ERR

command -v nvidia-smi >/dev/null || { echo "gpu_check: nvidia-smi not found: not an NVIDIA GPU machine" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

SKIPPED="$OUT/skipped.txt"; : > "$SKIPPED"
skip() { step "skipped: $*"; echo "$*" >> "$SKIPPED"; }
if [ -z "${AVAG_PYTHON:-}" ]; then
  step "setup"
  timeout 420 "$ROOT/scripts/setup.sh"
else
  step "setup: none, $PY as it is ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
fi
"$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else "torch sees no CUDA device")'

if [ -n "${AVAG_PYTHON:-}" ]; then
  "$PY" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())' \
    | tee "$OUT/onnxruntime.txt" || skip "onnxruntime: not importable"
elif [ "${AVAG_GPU_ORT:-1}" = "1" ]; then
  step "onnxruntime-gpu"
  ORT_VER="$("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
  "$PY" -m pip uninstall -q -y onnxruntime
  timeout 300 "$PY" -m pip install -q "${AVAG_ORT_GPU_PIP:-onnxruntime-gpu[cuda,cudnn]==$ORT_VER}" \
    "${AVAG_TRT_PIP:-tensorrt-cu12-libs>=10,<11}"
  # pip's CUDA/cuDNN/TensorRT libraries are not on the loader path: let onnxruntime load them
  TRT_LIBS="$("$PY" -c 'import tensorrt_libs, os; print(os.path.dirname(tensorrt_libs.__file__))' 2>/dev/null || true)"
  export LD_LIBRARY_PATH="${TRT_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "$PY" -c 'import onnxruntime as o; o.preload_dlls(); print("onnxruntime", o.__version__, o.get_available_providers())' \
    | tee "$OUT/onnxruntime.txt"
fi
PROVIDERS="$(cat "$OUT/onnxruntime.txt" 2>/dev/null || true)"
BACKENDS="torch,cudagraph"
case "$PROVIDERS" in
  *CUDAExecutionProvider*) BACKENDS="torch,cudagraph,onnxruntime" ;;
  *) skip "onnxruntime on CUDA: this onnxruntime has no CUDAExecutionProvider" ;;
esac

step "CUDA tests"
TESTS_RC=0
timeout 420 "$PY" -m pytest -q -rs test/test_model_cuda.py test/test_backend_cuda.py test/test_backend_cudagraph.py \
  "test/test_train_resume.py::test_kill_mid_epoch_and_resume_matches_uninterrupted[cuda]" 2>&1 \
  | tee "$OUT/tests.txt" || TESTS_RC=$?

step "benchmark: paper + realtime, $BACKENDS x fp32/fp16/bf16 (interleaved)"
timeout 420 "$PY" -m avag_core.cli.main bench model --config paper,realtime --device cuda \
  --backend "$BACKENDS" --dtype fp32,fp16,bf16 --iters 20 --warmup 3 --batch 8 \
  --json "$OUT/bench_gpu.json"

case "$PROVIDERS" in
  *TensorrtExecutionProvider*)
    step "benchmark: TensorRT fp32/fp16 (first run builds the engines)"
    TRT_PRESETS="realtime"; [ "${AVAG_GPU_TRT_PAPER:-0}" = "1" ] && TRT_PRESETS="realtime,paper"
    timeout 480 "$PY" -m avag_core.cli.main bench model --config "$TRT_PRESETS" --device cuda \
      --backend torch,tensorrt --dtype fp32,fp16 --iters 30 --warmup 3 --json "$OUT/bench_trt.json" ;;
  *) skip "TensorRT: this onnxruntime has no TensorrtExecutionProvider" ;;
esac

step "training: paper, batch 8 and the recipe's 24, AMP fp16, 6 steps each"
timeout 240 "$PY" -m avag_core.benchmarks.train_step_bench --config paper --device cuda --batch 8 \
  --steps 6 --amp fp16 --json "$OUT/train_paper.json"
timeout 240 "$PY" -m avag_core.benchmarks.train_step_bench --config paper --device cuda --batch 24 \
  --steps 6 --amp fp16 --json "$OUT/train_paper24.json"

# after setup rclpy must import (the step fails loudly); an image as it is may lack it
if [ -z "${AVAG_PYTHON:-}" ] || "$PY" -c 'import rclpy, avag.msg' 2>/dev/null; then
  step "node latency, device cuda"
  timeout 240 "$PY" -m avag_ros.benchmarks.node_latency --device cuda --scenes 8 --json "$OUT/node_cuda.json"
else
  skip "node latency: rclpy or the avag interfaces do not import here"
fi

step "summary"
"$PY" - "$OUT" "$TESTS_RC" <<'PYEOF'
import json, sys
from pathlib import Path
from avag_core.benchmarks.model_bench import format_table
out, tests_rc = Path(sys.argv[1]), int(sys.argv[2])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
rows = []
for name in ("bench_gpu.json", "bench_trt.json"):
    data = load(name)
    rows += data["results"] if data else []
summary = {"gpu": (out / "gpu.txt").read_text().strip(), "tests_rc": tests_rc,
           "onnxruntime": (out / "onnxruntime.txt").read_text().strip() if (out / "onnxruntime.txt").is_file() else None,
           "bench": rows, "train_paper": [t for t in map(load, ("train_paper.json", "train_paper24.json")) if t],
           "node_cuda": load("node_cuda.json"),
           "skipped": (out / "skipped.txt").read_text().splitlines()}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
text = format_table(rows) + "\n\n" + "".join(
    f"training paper batch {t['batch']} amp {t['amp']}: {t['step_s_median'] * 1000:.0f} ms/step, "
    f"{t['items_per_s']:.1f} items/s, peak {t['peak_memory_mib']:.0f} MiB\n" for t in summary["train_paper"])
node = summary["node_cuda"]
if node:
    text += (f"node latency (cuda): {node['events_detected']} of {node['events']} events, median "
             f"{node['latency_ms_median']:.1f} ms, p95 {node['latency_ms_p95']:.1f} ms\n")
text += "".join(f"skipped: {why}\n" for why in summary["skipped"])
(out / "gpu_check.txt").write_text(text)
print(text)
print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.txt'}")
PYEOF

if [ "$TESTS_RC" -ne 0 ]; then
  echo "[gpu_check] CUDA TESTS FAILED (exit $TESTS_RC): see $OUT/tests.txt" >&2
  exit "$TESTS_RC"
fi
step "done in $((SECONDS - T0)) s"
