"""Clip embeddings from a frozen AVAGFormer's audio tokens.

Why here: the segmentation model already turns a sound into tokens that say which action
it is (its masks depend on it), so naming the action needs only a pooled summary of those
tokens, not a second audio network. The summary is the mean and the max of the real
(unpadded) tokens, plus the per-band mean and spread of the log-mel input: the tokens
were trained on action sounds only, and the band statistics keep sounds the tokens never
saw (speech, music, noise) apart from actions.
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import torch

from avag_core.backends.torch_backend import weights_dtype
from avag_core.modeling.audio_frontend import (
    NUM_MEL_BANDS,
    pad_patch_batch,
    select_patches,
    waveform_to_patches,
)


def model_of(predictor_or_model) -> torch.nn.Module:
    """The AVAGFormer behind a ``Predictor`` or the model itself."""
    return getattr(predictor_or_model, "model", predictor_or_model)


def audio_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the audio path's weights (audio encoder + projection).

    A head trained on one checkpoint's tokens is meaningless on another's, even with the
    same architecture, so the head file records this and loading compares it.
    """
    state = {**{f"audio_encoder.{k}": v for k, v in model.audio_encoder.state_dict().items()},
             **{f"audio_proj.{k}": v for k, v in model.audio_proj.state_dict().items()}}
    return fingerprint_of_state(state)


def fingerprint_of_state(tensors: dict[str, torch.Tensor]) -> str:
    """``audio_fingerprint`` from named tensors (a model's or a checkpoint's): the
    ``audio_encoder.*`` and ``audio_proj.*`` entries, hashed in name order."""
    h = hashlib.sha256()
    for name in sorted(k for k in tensors if k.startswith(("audio_encoder.", "audio_proj."))):
        h.update(name.encode())
        h.update(tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class AudioEmbedder:
    """Waveform -> fixed-size clip embedding (``dim`` floats) with the model frozen."""

    def __init__(self, *, model: torch.nn.Module, max_patches: int) -> None:
        self.model = model
        self.max_patches = int(max_patches)
        self.token_dim = int(model.cfg.embed_dim)
        self.dim = 2 * self.token_dim + 2 * NUM_MEL_BANDS

    @classmethod
    def from_source(cls, predictor_or_model) -> AudioEmbedder:
        model = model_of(predictor_or_model)
        return cls(model=model, max_patches=int(model.cfg.max_audio_patches))

    def patches(self, waveform: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """[T, 96, 64] log-mel patches, the same front end the segmentation model uses."""
        return select_patches(waveform_to_patches(waveform, sample_rate), self.max_patches)

    @torch.inference_mode()
    def embed_patches(self, items: list[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
        """List of [T_i, 96, 64] -> [N, dim] float32 (CPU)."""
        device = next(self.model.parameters()).device
        # eval() and train() walk every sub-module (~4 ms on the node's path for each
        # event): switch only a model that is training (a Predictor's never is)
        was_training = self.model.training
        if was_training:
            self.model.eval()
        out = []
        # a Predictor running bf16/fp16 casts the weights once (backends.torch_backend):
        # run the audio path in that dtype too, as its segmentation does
        amp = weights_dtype(self.model)
        try:
            for i in range(0, len(items), batch_size):
                audio, mask = pad_patch_batch([p.to(device, torch.float32) for p in items[i : i + batch_size]])
                with contextlib.nullcontext() if amp == torch.float32 else torch.autocast(device.type, dtype=amp):
                    tokens = self.model.encode_audio(audio, mask).float()
                m = mask.unsqueeze(-1).float()
                mean = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
                mx = tokens.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
                frames = audio.flatten(1, 2)  # [B, T*96, 64]
                fm = mask.repeat_interleave(audio.shape[2], 1).unsqueeze(-1).float()
                band_mean = (frames * fm).sum(1) / fm.sum(1).clamp_min(1.0)
                band_std = (((frames - band_mean.unsqueeze(1)) ** 2 * fm).sum(1) / fm.sum(1).clamp_min(1.0)).sqrt()
                out.append(torch.cat([mean, mx, band_mean, band_std], 1).cpu())
        finally:
            if was_training:
                self.model.train()
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def embed(self, waveforms: list[np.ndarray], sample_rate: int) -> torch.Tensor:
        """Clips at one sample rate -> [N, dim]."""
        return self.embed_patches([self.patches(w, sample_rate) for w in waveforms])
