"""What the backend tests share: real AVAGD examples and the cached-image logits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from avag_core.backends.agreement import compare
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


def assert_each_graph_agrees(reference, other, rgb, wave, rate, *, as_input=lambda t: t) -> None:
    """Each graph of ``other`` against PyTorch fp32 on PyTorch's own input: the encoder's
    image features within ENCODER_REL_TOL of their scale, the decoder's logits (given
    PyTorch's features, passed through ``as_input``) within ONNX_LOGIT_TOL. Why not the
    end-to-end logits: the third example's function logits move 3.5e-4 when its image
    features move by one part in a million, so another backend's fp32 rounding in the
    encoder alone (0.7-1.6e-6 of the features' scale, onnxruntime on an AVX-512/AMX CPU)
    moved them 1.03e-3 there, while each graph on its own input agreed to 1.6e-6 and 2.8e-4."""
    reference.set_image(rgb)
    other.set_image(rgb)
    want_features = [f.detach() for f in reference._features]
    for want, got in zip(want_features, other._features, strict=True):
        want, got = want.numpy(), np.asarray(got)
        assert np.abs(got - want).max() <= ENCODER_REL_TOL * np.abs(want).max()
    audio, mask = reference._prepare_audio([wave], rate)
    with torch.inference_mode():
        want_logits = reference.backend.decode(reference._features, audio, mask)
        got_logits = other.backend.decode([as_input(f) for f in want_features], audio, mask)
    assert compare(want_logits, got_logits)["max_logit_diff"] <= ONNX_LOGIT_TOL
