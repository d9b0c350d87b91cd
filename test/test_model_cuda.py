"""CUDA paths: the Predictor on a GPU (fp32, fp16 and bf16 autocast) agrees with the CPU, and
the deformable sampling paths agree on the GPU. Skipped where no CUDA device exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")


def _inputs():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    wave = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    return rgb, wave


@pytest.mark.parametrize("dtype,tol", [(None, 1e-4), ("fp16", 2e-2), ("bf16", 5e-2)])
def test_predictor_on_cuda_matches_cpu(tiny_checkpoint, dtype, tol):
    from avag_core.predictor import Predictor

    rgb, wave = _inputs()
    ref = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    ref.set_image(rgb)
    want = ref.predict(wave, 16000)
    gpu = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", dtype=dtype)
    gpu.set_image(rgb)
    got = gpu.predict(wave, 16000)
    batch = gpu.predict_batch([rgb, rgb], [wave, wave[:16000]], 16000)
    assert got.function_prob.dtype == np.float32 and got.function_prob.shape == rgb.shape[:2]
    assert np.abs(got.function_prob - want.function_prob).max() < tol
    assert np.abs(got.dependency_prob - want.dependency_prob).max() < tol
    assert np.abs(batch[0].function_prob - got.function_prob).max() < tol


def test_sampling_paths_agree_on_cuda_under_autocast():
    from avag_core.modeling.deformable_encoder import (
        sample_with_embedding_bag,
        sample_with_grid_sample,
    )

    shapes = [(16, 16), (8, 8), (4, 4)]
    g = torch.Generator(device="cuda").manual_seed(0)
    n = sum(h * w for h, w in shapes)
    value = torch.randn(2, n, 64, device="cuda", generator=g)
    loc = torch.rand(2, 50, 4, 3, 4, 2, device="cuda", generator=g) * 1.4 - 0.2
    weights = torch.rand(2, 50, 4, 3, 4, device="cuda", generator=g)
    want = sample_with_grid_sample(value, loc, weights, shapes)
    assert torch.allclose(sample_with_embedding_bag(value, loc, weights, shapes), want, atol=1e-5)
    # as in the model under autocast: fp16 values (a linear layer's output), fp32 locations
    # and softmax weights
    with torch.autocast("cuda", dtype=torch.float16):
        half = sample_with_embedding_bag(value.half(), loc, weights, shapes)
    assert half.dtype == torch.float16
    assert (half.float() - want).abs().max() < 2e-2 * want.abs().max()


def test_backend_auto_on_cuda_runs_torch_on_the_gpu(tiny_checkpoint):
    """``auto`` resolves to torch on CUDA (the node's default backend): the model it runs
    stays on the GPU (it was moved to the CPU as for onnxruntime, and the first call failed)."""
    from avag_core.predictor import Predictor

    rgb, wave = _inputs()
    pred = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", backend="auto")
    assert pred.backend.name == "torch"
    assert next(pred.model.parameters()).is_cuda
    pred.set_image(rgb)
    ref = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", backend="torch")
    ref.set_image(rgb)
    assert np.abs(pred.predict(wave, 16000).function_prob - ref.predict(wave, 16000).function_prob).max() < 1e-4
