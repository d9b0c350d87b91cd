"""Predictor on raw inputs: cached-image path equals the full forward, any sizes, batches."""

import numpy as np
import pytest
import torch

from avag_core.errors import AvagError
from avag_core.predictor import AffordancePrediction, Predictor


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint)


def _rgb(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _wave(seconds, rate, seed, channels=None):
    shape = (int(seconds * rate),) if channels is None else (channels, int(seconds * rate))
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.1


def test_set_image_then_predict_equals_full_forward(predictor):
    img = _rgb(120, 90, 0)
    predictor.set_image(img)
    sounds = [(_wave(1.5, 44100, 1, channels=2), 44100), (_wave(4.0, 16000, 2), 16000)]
    for wave, rate in sounds:
        cached = predictor.predict(wave, rate)
        full = predictor.predict_batch([img], [wave], rate)[0]
        assert isinstance(cached, AffordancePrediction)
        assert cached.function_prob.shape == (120, 90) and cached.function_prob.dtype == np.float32
        np.testing.assert_allclose(cached.function_prob, full.function_prob, atol=1e-5)
        np.testing.assert_allclose(cached.dependency_prob, full.dependency_prob, atol=1e-5)
        assert cached.function_prob.min() >= 0.0 and cached.function_prob.max() <= 1.0


def test_batch_of_different_sizes_and_lengths_equals_singles(predictor):
    images = [_rgb(64, 64, 3), _rgb(200, 150, 4)]
    waves = [_wave(0.4, 22050, 5), _wave(3.3, 22050, 6)]
    batch = predictor.predict_batch(images, waves, 22050)
    for img, wave, got in zip(images, waves, batch, strict=True):
        single = predictor.predict_batch([img], [wave], 22050)[0]
        assert got.function_prob.shape == img.shape[:2]
        np.testing.assert_allclose(got.function_prob, single.function_prob, atol=1e-5)
        np.testing.assert_allclose(got.dependency_prob, single.dependency_prob, atol=1e-5)


def test_long_clip_is_cut_to_max_patches(predictor):
    predictor.set_image(_rgb(64, 64, 7))
    out = predictor.predict(_wave(30.0, 8000, 8), 8000)  # 31 patches > 20
    assert out.function_prob.shape == (64, 64)


def test_errors(predictor):
    fresh = Predictor(predictor.model, predictor.cfg)
    with pytest.raises(AvagError, match="set_image"):
        fresh.predict(_wave(1.0, 16000, 0), 16000)
    with pytest.raises(AvagError, match="HxWx3"):
        fresh.set_image(np.zeros((10, 10, 2), dtype=np.uint8))  # grey HxW is accepted
    with pytest.raises(AvagError, match="2 images but 1 waveforms"):
        fresh.predict_batch([_rgb(8, 8, 0)] * 2, [_wave(1.0, 16000, 0)], 16000)
    with pytest.raises(AvagError, match="CUDA"):
        Predictor(predictor.model, predictor.cfg, "cpu", dtype="fp16")


def test_channels_last_inference_copy_gives_the_same_logits(predictor):
    """Predictor keeps convolution weights channels-last (faster on oneDNN/cuDNN); the
    layout must not change the result."""
    import copy

    convs = [m for m in predictor.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    plain = copy.deepcopy(predictor.model).to(memory_format=torch.contiguous_format)
    assert not all(c.weight.is_contiguous(memory_format=torch.channels_last)
                   for c in plain.modules() if isinstance(c, torch.nn.Conv2d) and c.kernel_size != (1, 1))
    size = predictor.size
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, size, size, generator=gen)
    audio = torch.randn(2, 3, 96, 64, generator=gen) - 4
    mask = torch.tensor([[True, True, True], [True, False, False]])
    with torch.inference_mode():
        a, b = predictor.model(image, audio, mask), plain(image, audio, mask)
    for key in ("function", "dependency"):
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5)
