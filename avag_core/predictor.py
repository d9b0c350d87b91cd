"""Inference on raw inputs: an RGB frame of any size + a waveform at any rate and length.

Like segment-anything's predictor, the audio-independent visual path is split off:
``set_image`` runs backbone + deformable encoder + FPN once and caches the result, and
``predict`` runs only the audio-conditioned part, so one frame serves several sounds
and a robot can encode frames before the sound arrives.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avag_core.errors import AvagError
from avag_core.modeling import IMAGE_MEAN, IMAGE_STD, AVAGFormer
from avag_core.modeling.audio_frontend import pad_patch_batch, select_patches, waveform_to_patches


@dataclass
class AffordancePrediction:
    """Probabilities in [0, 1] at the input image's resolution (H x W, float32)."""

    function_prob: np.ndarray
    dependency_prob: np.ndarray

    def masks(self, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        return self.function_prob > threshold, self.dependency_prob > threshold


def _dtype(value: str | torch.dtype | None) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    table = {
        "fp32": None,
        "float32": None,
        "fp16": torch.float16,
        "float16": torch.float16,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
    }
    if value not in table:
        raise AvagError(f"unknown dtype {value!r} (use fp32, fp16 or bf16)")
    return table[value]


class Predictor:
    def __init__(
        self, model: AVAGFormer, cfg, device: str | torch.device = "cpu", dtype=None
    ) -> None:
        self.device = torch.device(device)
        # Channels-last convolution weights: oneDNN and cuDNN run the convolutions (and
        # timm's PVT depthwise MLP) without layout copies. Same results, an inference-only
        # copy of the layout (checkpoints are written from contiguous training weights).
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        self.cfg = cfg
        self.mcfg = getattr(cfg, "model", cfg)
        self.dtype = _dtype(dtype)
        if self.dtype is not None and self.device.type != "cuda":
            raise AvagError(f"dtype {dtype} autocast needs a CUDA device, got {self.device}")
        self.size = int(self.mcfg.image_size)
        self._mean = torch.tensor(IMAGE_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGE_STD, device=self.device).view(1, 3, 1, 1)
        self._features: list[torch.Tensor] | None = None
        self._image_hw: tuple[int, int] | None = None
        self._warm_up()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", dtype=None) -> Predictor:
        from avag_core.weights.checkpoint import load_model_checkpoint

        model, cfg = load_model_checkpoint(path, device=device)
        return cls(model, cfg, device, dtype)

    # --- helpers ----------------------------------------------------------------------
    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _warm_up(self) -> None:
        """One pass at load so the first real request does not pay for lazy init."""
        rgb = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        self._run([rgb], [np.zeros(16000, dtype=np.float32)], 16000)

    def _prepare_images(self, images: list[np.ndarray]) -> torch.Tensor:
        batch = []
        for rgb in images:
            arr = np.asarray(rgb)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise AvagError(f"image must be HxWx3 RGB, got shape {arr.shape}")
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
            t = t.permute(2, 0, 1).unsqueeze(0).float()
            if arr.dtype == np.uint8:
                t = t / 255.0
            t = F.interpolate(t, size=(self.size, self.size), mode="bilinear", align_corners=False)
            batch.append(t)
        return (torch.cat(batch) - self._mean) / self._std

    def _prepare_audio(self, waveforms: list[np.ndarray], sample_rate: int):
        items = []
        for w in waveforms:
            p = select_patches(
                waveform_to_patches(np.asarray(w), sample_rate), self.mcfg.max_audio_patches
            )
            items.append(p.to(self.device))
        return pad_patch_batch(items)

    def _to_probs(
        self, out: dict[str, torch.Tensor], sizes: list[tuple[int, int]]
    ) -> list[AffordancePrediction]:
        res = []
        for i, (h, w) in enumerate(sizes):
            maps = torch.cat([out["function"][i : i + 1], out["dependency"][i : i + 1]], 1).float()
            maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False).sigmoid()
            maps = maps[0].cpu().numpy().astype(np.float32)
            res.append(AffordancePrediction(maps[0], maps[1]))
        return res

    @torch.inference_mode()
    def _run(self, images, waveforms, sample_rate):
        x = self._prepare_images(images)
        audio, mask = self._prepare_audio(waveforms, sample_rate)
        with self._autocast():
            out = self.model(x, audio, mask)
        return self._to_probs(out, [np.asarray(im).shape[:2] for im in images])

    # --- public API -------------------------------------------------------------------
    @torch.inference_mode()
    def set_image(self, rgb: np.ndarray) -> None:
        """Encode and cache one frame's audio-independent features."""
        x = self._prepare_images([rgb])
        with self._autocast():
            self._features = self.model.encode_image(x)
        self._image_hw = tuple(np.asarray(rgb).shape[:2])

    @torch.inference_mode()
    def predict(self, waveform: np.ndarray, sample_rate: int) -> AffordancePrediction:
        """Masks for the cached frame and one sound (call ``set_image`` first)."""
        if self._features is None or self._image_hw is None:
            raise AvagError("Predictor.predict needs an image: call set_image(rgb) first")
        audio, mask = self._prepare_audio([waveform], sample_rate)
        with self._autocast():
            out = self.model._decode(self._features, audio, mask, (self.size, self.size))
        return self._to_probs(out, [self._image_hw])[0]

    def predict_batch(
        self, images: list[np.ndarray], waveforms: list[np.ndarray], sample_rate: int
    ) -> list[AffordancePrediction]:
        """Full forward for a batch of (frame, sound) pairs; audio of different lengths is padded."""
        if len(images) != len(waveforms):
            raise AvagError(
                f"predict_batch got {len(images)} images but {len(waveforms)} waveforms"
            )
        return self._run(list(images), list(waveforms), sample_rate)
