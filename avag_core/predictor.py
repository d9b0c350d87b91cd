"""Inference on raw inputs: an RGB frame of any size + a waveform at any rate and length.

Like segment-anything's predictor, the audio-independent visual path is split off:
``set_image`` runs backbone + deformable encoder + FPN once and caches the result, and
``predict`` runs only the audio-conditioned part, so one frame serves several sounds
and a robot can encode frames before the sound arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avag_core.backends import make_backend
from avag_core.errors import AvagError
from avag_core.hearing.embedding import audio_fingerprint
from avag_core.modeling import AVAGFormer
from avag_core.modeling.audio_frontend import pad_patch_batch, select_patches, waveform_to_patches
from avag_core.modeling.fuse import fold_batchnorm
from avag_core.preprocess import prepare_batch


@dataclass
class AffordancePrediction:
    """Probabilities in [0, 1] at the input image's resolution (H x W, float32)."""

    function_prob: np.ndarray
    dependency_prob: np.ndarray

    def masks(self, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        return self.function_prob > threshold, self.dependency_prob > threshold


class Predictor:
    """``backend``: ``torch`` (eager), ``cudagraph`` (eager captured as CUDA graphs), ``inductor`` (compiled ahead of time, CPU),
    ``onnxruntime`` or ``tensorrt`` (see :mod:`avag_core.backends`); ``dtype``: fp32, fp16,
    bf16, int8 or auto where the backend offers it; ``backend_options``: e.g.
    ``engine_cache_dir``, ``cache_dir``, ``threads`` for the onnxruntime backends,
    ``cache_dir`` for inductor. The model is prepared for inference in place
    (eval mode, channels-last, batch norms folded; with torch fp16/bf16 its Linear/Conv
    weights are cast to that dtype): pass a copy of a model still training."""

    def __init__(
        self,
        model: AVAGFormer,
        cfg,
        device: str | torch.device = "cpu",
        dtype=None,
        backend: str = "torch",
        **backend_options: Any,
    ) -> None:
        self.device = torch.device(device)
        # Channels-last convolution weights: oneDNN and cuDNN run the convolutions (and
        # timm's PVT depthwise MLP) without layout copies. Same results, an inference-only
        # copy of the layout (checkpoints are written from contiguous training weights).
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        # Which audio weights these are, taken before folding rewrites them: an action head
        # (avag_core.hearing) checks it was trained on this checkpoint's audio tokens.
        self.audio_fingerprint = audio_fingerprint(self.model)
        # Batch norms folded into their convolutions (inference only, same logits: tested).
        fold_batchnorm(self.model)
        self.cfg = cfg
        self.mcfg = getattr(cfg, "model", cfg)
        self.size = int(self.mcfg.image_size)
        self.backend = make_backend(
            backend, self.model, self.size, self.device, dtype, **backend_options
        )
        self._features: Any = None
        self._image_hw: tuple[int, int] | None = None
        self._warm_up()

    @property
    def dtype(self) -> str:
        """The dtype the backend runs (``auto`` resolved), e.g. ``fp32`` or ``bf16``."""
        return self.backend.dtype

    def describe(self) -> str:
        """Backend, providers and dtype in one line (logs, /diagnostics)."""
        return self.backend.describe()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "cpu",
        dtype=None,
        backend: str = "torch",
        **backend_options: Any,
    ) -> Predictor:
        from avag_core.weights.checkpoint import load_model_checkpoint

        model, cfg = load_model_checkpoint(path, device=device)
        return cls(model, cfg, device, dtype, backend, **backend_options)

    # --- helpers ----------------------------------------------------------------------
    def _warm_up(self) -> None:
        """One pass at load so the first real request does not pay for lazy init."""
        rgb = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        self._run([rgb], [np.zeros(16000, dtype=np.float32)], 16000)

    def _prepare_images(self, images: list[np.ndarray]) -> torch.Tensor:
        """The one preprocessing path shared with training and ``avag eval``."""
        return prepare_batch(images, self.size, self.device)

    def _prepare_audio(self, waveforms: list[np.ndarray], sample_rate: int):
        items = []
        for w in waveforms:
            p = select_patches(
                waveform_to_patches(np.asarray(w), sample_rate), self.mcfg.max_audio_patches
            )
            items.append(p.to(self.device))
        return pad_patch_batch(items)

    def _to_probs(
        self, logits: tuple[torch.Tensor, torch.Tensor], sizes: list[tuple[int, int]]
    ) -> list[AffordancePrediction]:
        res = []
        func, dep = logits
        for i, (h, w) in enumerate(sizes):
            maps = torch.cat([func[i : i + 1], dep[i : i + 1]], 1).float()
            maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False).sigmoid()
            maps = maps[0].cpu().numpy().astype(np.float32)
            res.append(AffordancePrediction(maps[0], maps[1]))
        return res

    @torch.inference_mode()
    def _run(self, images, waveforms, sample_rate):
        x = self._prepare_images(images)
        audio, mask = self._prepare_audio(waveforms, sample_rate)
        out = self.backend.decode(self.backend.encode(x), audio, mask)
        return self._to_probs(out, [np.asarray(im).shape[:2] for im in images])

    # --- public API -------------------------------------------------------------------
    @torch.inference_mode()
    def set_image(self, rgb: np.ndarray) -> None:
        """Encode and cache one frame's audio-independent features."""
        x = self._prepare_images([rgb])
        self._features = self.backend.encode(x)
        self._image_hw = tuple(np.asarray(rgb).shape[:2])

    @torch.inference_mode()
    def predict(self, waveform: np.ndarray, sample_rate: int) -> AffordancePrediction:
        """Masks for the cached frame and one sound (call ``set_image`` first)."""
        if self._features is None or self._image_hw is None:
            raise AvagError("Predictor.predict needs an image: call set_image(rgb) first")
        audio, mask = self._prepare_audio([waveform], sample_rate)
        out = self.backend.decode(self._features, audio, mask)
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
