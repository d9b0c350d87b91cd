"""GPU backends against PyTorch fp32 on the CPU (skipped without a CUDA device; the
onnxruntime cases also need onnxruntime-gpu, TensorRT cases its TensorRT provider).
Tolerances: fp32 masks IoU >= 0.99 and logits within 1e-3 (torch) / 1e-2 (TensorRT fp32 uses
TF32 tactics); fp16/bf16 probabilities within 0.05 on the untrained tiny model."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from avag_core.backends.agreement import compare
from avag_core.predictor import Predictor

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)"
)


def _providers() -> list[str]:
    try:
        import onnxruntime

        return onnxruntime.get_available_providers()
    except ImportError:
        return []


def _inputs():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    wave = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    return rgb, wave


def _logits(pred: Predictor, rgb, wave):
    pred.set_image(rgb)
    audio, mask = pred._prepare_audio([wave], 16000)
    with torch.inference_mode():
        return pred.backend.decode(pred._features, audio, mask)


CASES = [
    ("torch", "fp32", 1e-3),
    ("torch", "fp16", None),
    ("torch", "bf16", None),
    ("cudagraph", "fp32", 1e-3),
    ("cudagraph", "fp16", None),
    ("onnxruntime", "fp32", 1e-3),
    ("onnxruntime", "fp16", None),
    ("tensorrt", "fp32", 1e-2),
    ("tensorrt", "fp16", None),
]


@pytest.mark.parametrize("backend,dtype,logit_tol", CASES)
def test_gpu_backend_matches_cpu_fp32(tiny_checkpoint, tmp_path, backend, dtype, logit_tol):
    need = {"onnxruntime": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}.get(backend)
    if need and need not in _providers():
        pytest.skip(f"onnxruntime here has no {need}")
    opts = {} if backend in ("torch", "cudagraph") else {"cache_dir": tmp_path / "onnx", **(
        {"engine_cache_dir": tmp_path / "trt"} if backend == "tensorrt" else {})}
    rgb, wave = _inputs()
    ref = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    gpu = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", dtype=dtype, backend=backend, **opts)
    assert gpu.dtype == dtype
    stats = compare(_logits(ref, rgb, wave), _logits(gpu, rgb, wave))
    assert stats["max_prob_diff"] <= 0.05, stats
    if logit_tol is not None:
        assert stats["max_logit_diff"] <= logit_tol and stats["min_iou"] >= 0.99, stats
    got = gpu.predict(wave, 16000)
    batch = gpu.predict_batch([rgb, rgb], [wave, wave[:16000]], 16000)
    assert got.function_prob.dtype == np.float32 and got.function_prob.shape == rgb.shape[:2]
    assert np.abs(batch[0].function_prob - got.function_prob).max() < 0.05


def test_tensorrt_engine_cache_is_reused(tiny_checkpoint, tmp_path):
    if "TensorrtExecutionProvider" not in _providers():
        pytest.skip("onnxruntime here has no TensorrtExecutionProvider")
    opts = {"cache_dir": tmp_path / "onnx", "engine_cache_dir": tmp_path / "trt"}
    t0 = time.perf_counter()
    first = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", backend="tensorrt", dtype="fp16", **opts)
    built = time.perf_counter() - t0
    engines = sorted(first.backend.engine_dir.glob("*.engine"))
    assert engines, "TensorRT wrote no engine into the cache folder"
    stamps = [e.stat().st_mtime_ns for e in engines]
    Predictor.from_checkpoint(tiny_checkpoint, device="cuda", backend="tensorrt", dtype="fp16", **opts)
    assert [e.stat().st_mtime_ns for e in engines] == stamps, "engines were rebuilt"
    print(f"first TensorRT load (engine build) {built:.1f} s")


def test_auto_on_cuda_picks_a_dtype_within_tolerance(tiny_checkpoint):
    pred = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", dtype="auto")
    assert pred.dtype in ("fp32", "fp16", "bf16")
    assert pred.backend.probe["chosen"] == pred.dtype
