"""The cudagraph backend: its audio padding keeps the logits (checked here on the CPU, where
the eager model runs the same code), it refuses a CPU in one line, and on a CUDA device its
replayed graphs give the torch backend's logits for every clip length and keep each
image's features apart (CUDA cases skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avag_core.backends import make_backend
from avag_core.backends.cudagraph_backend import pad_audio, padded_patches
from avag_core.errors import AvagError
from avag_core.predictor import Predictor

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")


def test_patch_counts_are_powers_of_two_within_the_limit():
    assert [padded_patches(t, 20) for t in (1, 2, 3, 5, 8, 9, 17, 20)] == [1, 2, 4, 8, 8, 16, 20, 20]
    assert padded_patches(25, 20) == 25  # never fewer patches than the clip has
    assert padded_patches(33, 0) == 64  # no limit


def _inputs(seconds: float):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    wave = (rng.standard_normal(round(16000 * seconds)) * 0.1).astype(np.float32)
    return rgb, wave


def test_padded_audio_gives_the_same_logits(tiny_checkpoint):
    pred = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", backend="torch")
    rgb, wave = _inputs(2.0)
    pred.set_image(rgb)
    audio, mask = pred._prepare_audio([wave], 16000)
    assert audio.shape[1] == 2
    with torch.inference_mode():
        want = pred.backend.decode(pred._features, audio, mask)
        got = pred.backend.decode(pred._features, *pad_audio(audio, mask, 8))
    for a, b in zip(want, got, strict=True):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) < 1e-4


def test_refuses_a_cpu_in_one_line(tiny_checkpoint):
    pred = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", backend="torch")
    with pytest.raises(AvagError, match="needs a CUDA device") as err:
        make_backend("cudagraph", pred.model, pred.size, torch.device("cpu"), "fp32")
    assert "\n" not in str(err.value)


@needs_cuda
@pytest.mark.parametrize("dtype,tol", [("fp32", 1e-4), ("fp16", 2e-2)])
def test_replays_match_eager_torch_for_every_clip_length(tiny_checkpoint, dtype, tol):
    eager = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", dtype=dtype, backend="torch")
    graphs = Predictor.from_checkpoint(tiny_checkpoint, device="cuda", dtype=dtype, backend="cudagraph")
    assert graphs.backend.name == "cudagraph"
    rgb, _ = _inputs(1.0)
    other = np.ascontiguousarray(rgb[::-1])
    for pred in (eager, graphs):
        pred.set_image(rgb)
    for seconds in (0.5, 2.0, 3.5, 2.0, 0.5):  # 1, 2 and 3 (run as 4) patches, then replays
        _, wave = _inputs(seconds)
        want, got = eager.predict(wave, 16000), graphs.predict(wave, 16000)
        assert np.abs(got.function_prob - want.function_prob).max() < tol
        assert np.abs(got.dependency_prob - want.dependency_prob).max() < tol
    # features of one image survive encoding another (each replay's outputs are copies)
    kept = graphs._features
    first = [f.clone() for f in kept]
    graphs.set_image(other)
    assert all(torch.equal(a, b) for a, b in zip(first, kept, strict=True))
    eager.set_image(other)
    _, wave = _inputs(2.0)
    assert np.abs(graphs.predict(wave, 16000).function_prob - eager.predict(wave, 16000).function_prob).max() < tol
    batch = graphs.predict_batch([rgb, other], [wave[:8000], wave], 16000)
    assert np.abs(batch[1].function_prob - graphs.predict(wave, 16000).function_prob).max() < tol
    assert "graphs captured" in graphs.backend.describe()
