"""The VGGish front end against an independent numpy implementation of the same formulas."""

import numpy as np
import pytest
import torch

from avag_core.modeling.audio_frontend import (
    log_mel_patches,
    pad_patch_batch,
    select_patches,
    to_mono_16k,
    waveform_to_patches,
)


def numpy_vggish_log_mel(wave: np.ndarray) -> np.ndarray:
    """Straight from VGGish's definitions: framing, periodic Hann, |rfft 512|, HTK mel
    triangles drawn in the mel domain with the DC bin zeroed, log(mel + 0.01)."""
    win, hop, nfft = 400, 160, 512
    n_frames = 1 + (len(wave) - win) // hop
    frames = np.stack([wave[i * hop : i * hop + win] for i in range(n_frames)]).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    spec = np.abs(np.fft.rfft(frames * window, n=nfft))

    def mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    bins = mel(np.linspace(0, 8000, nfft // 2 + 1))
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    weights = np.zeros((nfft // 2 + 1, 64))
    for i in range(64):
        lo, c, hi = edges[i : i + 3]
        weights[:, i] = np.maximum(0, np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)))
    weights[0] = 0
    return np.log(spec @ weights + 0.01)


def test_log_mel_patches_match_numpy_reference():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 3) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    ours = log_mel_patches(torch.from_numpy(wave)).numpy()
    ref = numpy_vggish_log_mel(wave)
    n = ref.shape[0] // 96
    assert ours.shape == (n, 96, 64) and n == 3
    np.testing.assert_allclose(ours, ref[: n * 96].reshape(n, 96, 64), atol=2e-4)


@pytest.mark.parametrize("seconds", [0.02, 0.5, 0.9])
def test_short_clip_is_padded_with_silence_like_the_reference(seconds):
    """A clip under 0.975 s is padded with digital silence before the log-mel: the numpy
    reference on the explicitly zero-padded waveform gives the same patch, and frames
    past the clip read log(0.01), not the 0.0 of padding in the log-mel domain."""
    rng = np.random.default_rng(3)
    wave = (0.2 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    ours = log_mel_patches(torch.from_numpy(wave)).numpy()
    assert ours.shape == (1, 96, 64)
    padded = np.zeros(15600, np.float32)  # 95 hops + one window: exactly one 96-frame patch
    padded[: wave.size] = wave
    ref = numpy_vggish_log_mel(padded)
    assert ref.shape == (96, 64)
    np.testing.assert_allclose(ours[0], ref, atol=2e-4)
    silent_from = -(-wave.size // 160)  # first frame that starts after the last sample
    np.testing.assert_allclose(ours[0, silent_from:], np.log(0.01), rtol=0, atol=1e-6)
    assert np.all(ours[0, :1] > np.log(0.01) + 1.0)  # the sound itself is kept
    # through the public entry point, from any rate, the same rule holds
    at_44k = waveform_to_patches(rng.standard_normal(int(44100 * seconds)).astype(np.float32), 44100)
    assert at_44k.shape == (1, 96, 64)
    assert torch.allclose(at_44k[0, -1], torch.full((64,), float(np.log(0.01))))


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_to_mono_16k_any_rate_and_channels(rate):
    stereo = np.random.default_rng(1).standard_normal((2, rate)).astype(np.float32)
    mono = to_mono_16k(stereo, rate)
    assert mono.dtype == torch.float32 and mono.dim() == 1
    assert abs(mono.numel() - 16000) <= 1
    # Down-mixing is the channel mean (resampling is linear, so the order does not matter).
    np.testing.assert_allclose(mono.numpy(), to_mono_16k(stereo.mean(0), rate).numpy(), atol=1e-5)


def test_int16_input_is_scaled():
    pcm = (np.ones(16000) * 16384).astype(np.int16)
    assert torch.allclose(to_mono_16k(pcm, 16000), torch.full((16000,), 0.5))


def test_waveform_to_patches_counts_patches():
    for seconds, expected in [(0.3, 1), (2.0, 2), (10.0, 10)]:
        wave = np.random.default_rng(2).standard_normal(int(44100 * seconds)).astype(np.float32)
        assert waveform_to_patches(wave, 44100).shape[0] == expected


def test_select_patches_keeps_loudest_window():
    patches = torch.full((30, 96, 64), -5.0)
    patches[12:17] = 2.0
    kept = select_patches(patches, 20)
    assert kept.shape[0] == 20 and torch.all(kept[kept.mean(dim=(1, 2)) > 0] == 2.0)
    assert (kept.mean(dim=(1, 2)) > 0).sum() == 5
    assert select_patches(patches[:7], 20).shape[0] == 7


def test_pad_patch_batch_mask():
    batch, mask = pad_patch_batch([torch.ones(2, 96, 64), torch.ones(5, 96, 64)])
    assert batch.shape == (2, 5, 96, 64)
    assert mask.tolist() == [[True, True, False, False, False], [True] * 5]
    assert torch.all(batch[0, 2:] == 0)
