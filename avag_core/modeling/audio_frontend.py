"""Waveform -> VGGish log-mel patches.

VGGish was trained on one exact front end, so every parameter here is VGGish's:
16 kHz mono, 25 ms periodic Hann window, 10 ms hop, 512-point FFT magnitude, 64 HTK mel
bands from 125 to 7500 Hz, ``log(mel + 0.01)``, non-overlapping 96-frame (0.96 s) patches.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000
WINDOW_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms
N_FFT = 512
NUM_MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96
PATCH_SECONDS = PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE  # 0.96


def to_mono_16k(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
    """[N] or channels-first [C, N] at any rate -> float32 [N'] at 16 kHz (channel mean)."""
    wave = torch.as_tensor(np.asarray(waveform) if not torch.is_tensor(waveform) else waveform)
    if not torch.is_floating_point(wave):
        # Integer PCM: scale to [-1, 1] like soundfile/torchaudio do.
        info = torch.iinfo(wave.dtype)
        wave = wave.to(torch.float32) / float(max(abs(info.min), info.max))
    wave = wave.to(torch.float32)
    if wave.dim() == 2:
        wave = wave.mean(dim=0)
    elif wave.dim() != 1:
        raise ValueError(f"waveform must be [N] or [C, N], got shape {tuple(wave.shape)}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if int(sample_rate) != SAMPLE_RATE and wave.numel() > 0:
        wave = AF.resample(wave, int(sample_rate), SAMPLE_RATE)
    return wave.contiguous()


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(hz / 700.0)


def _mel_matrix(device: torch.device) -> torch.Tensor:
    """[257, 64] VGGish mel weights: HTK mel, triangles in the mel domain, DC bin zeroed.

    torchaudio's ``melscale_fbanks`` draws its triangles in Hz, which differs slightly, so
    the VGGish definition is spelled out here.
    """
    n_bins = N_FFT // 2 + 1
    bins_mel = _hz_to_mel(torch.linspace(0.0, SAMPLE_RATE / 2, n_bins, dtype=torch.float64))
    edges = torch.linspace(
        float(_hz_to_mel(torch.tensor(MEL_MIN_HZ, dtype=torch.float64))),
        float(_hz_to_mel(torch.tensor(MEL_MAX_HZ, dtype=torch.float64))),
        NUM_MEL_BANDS + 2,
        dtype=torch.float64,
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower[None]) / (center - lower)[None]
    falling = (upper[None] - bins_mel[:, None]) / (upper - center)[None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0] = 0.0
    return weights.to(device=device, dtype=torch.float32)


def log_mel_frames(wave16k: torch.Tensor) -> torch.Tensor:
    """[N] 16 kHz -> [F, 64] log-mel frames (no centring/padding, like VGGish)."""
    wave = wave16k.to(torch.float32).reshape(-1)
    if wave.numel() < WINDOW_LENGTH:
        wave = torch.nn.functional.pad(wave, (0, WINDOW_LENGTH - wave.numel()))
    frames = wave.unfold(0, WINDOW_LENGTH, HOP_LENGTH)  # [F, 400]
    window = torch.hann_window(WINDOW_LENGTH, periodic=True, device=wave.device)
    spec = torch.fft.rfft(frames * window, n=N_FFT).abs()  # [F, 257]
    mel = spec @ _mel_matrix(wave.device)
    return torch.log(mel + LOG_OFFSET)


MIN_PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP_LENGTH + WINDOW_LENGTH  # 15600 = 0.975 s


def log_mel_patches(wave16k: torch.Tensor) -> torch.Tensor:
    """[N] 16 kHz -> [T, 96, 64] non-overlapping patches.

    Trailing frames that do not fill a whole patch are dropped (VGGish's framing). A clip
    shorter than one patch (0.975 s) is padded at its end with digital silence *before*
    the log-mel, as the reference does, so the padded frames read ``log(0.01)`` (-4.605),
    the value reference-trained weights saw, not 0.
    """
    wave = wave16k.to(torch.float32).reshape(-1)
    if wave.numel() < MIN_PATCH_SAMPLES:
        wave = torch.nn.functional.pad(wave, (0, MIN_PATCH_SAMPLES - wave.numel()))
    frames = log_mel_frames(wave)
    n = frames.shape[0] // PATCH_FRAMES
    return frames[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, NUM_MEL_BANDS).contiguous()


def waveform_to_patches(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
    """Any waveform -> [T, 96, 64] VGGish log-mel patches."""
    return log_mel_patches(to_mono_16k(waveform, sample_rate))


def select_patches(patches: torch.Tensor, max_patches: int) -> torch.Tensor:
    """Clips longer than ``max_patches`` keep the contiguous window with the most energy.

    The loudest window is where the action sound most likely is; the log-mel mean is the
    energy proxy. Shorter clips are returned unchanged.
    """
    t = patches.shape[0]
    if max_patches <= 0 or t <= max_patches:
        return patches
    energy = patches.mean(dim=(1, 2))
    window = energy.unfold(0, max_patches, 1).sum(dim=1)
    start = int(torch.argmax(window))
    return patches[start : start + max_patches]


def pad_patch_batch(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of [T_i, 96, 64] -> ([B, T_max, 96, 64] zero-padded, [B, T_max] bool mask)."""
    t_max = max(int(x.shape[0]) for x in items)
    out = items[0].new_zeros(len(items), t_max, PATCH_FRAMES, NUM_MEL_BANDS)
    mask = torch.zeros(len(items), t_max, dtype=torch.bool, device=items[0].device)
    for i, x in enumerate(items):
        out[i, : x.shape[0]] = x
        mask[i, : x.shape[0]] = True
    return out, mask
