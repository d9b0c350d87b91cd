"""What the backend tests share: real AVAGD examples and the cached-image logits."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from avag_core.data.audio_io import load_audio
from avag_core.preprocess import load_image

ONNX_LOGIT_TOL = 1e-3  # exported/compiled fp32 against eager fp32
ENCODER_REL_TOL = 1e-5  # exported image features against eager ones, of their largest value
AVAGD_DIR = Path(__file__).parent / "data" / "avagd"


def load_examples(n: int = 4) -> list:
    """(rgb, wave, rate) of the first ``n`` real AVAGD examples in the test data."""
    rows = list(csv.DictReader((AVAGD_DIR / "examples.csv").open()))[:n]
    return [(load_image(AVAGD_DIR / r["image"]), *load_audio(AVAGD_DIR / r["audio"])) for r in rows]


def logits(pred, rgb, wave, rate) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the cached-image path at the model's input size."""
    pred.set_image(rgb)
    audio, mask = pred._prepare_audio([wave], rate)
    with torch.inference_mode():
        return pred.backend.decode(pred._features, audio, mask)
