"""ONNX export with a dynamic number of audio patches (and batch), checked with onnxruntime.

The graph takes the normalised image at ``image_size``, log-mel patches [B, T, 96, 64] and
the bool padding mask [B, T]; it returns the function and dependency logits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avag_core.errors import AvagError

OPSET = 17  # GridSample needs >= 16


class _ExportWrapper(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor):
        out = self.model(image, audio, audio_mask)
        return out["function"], out["dependency"]


def example_inputs(image_size: int, patches: int = 3, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, image_size, image_size, generator=g)
    audio = torch.randn(batch, patches, 96, 64, generator=g) - 4.0
    mask = torch.ones(batch, patches, dtype=torch.bool)
    return image, audio, mask


def export_onnx(model: nn.Module, image_size: int, path: str | Path) -> Path:
    """Trace ``model`` (eval, CPU) to ONNX with dynamic batch and audio length."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _ExportWrapper(model.eval().cpu())
    args = example_inputs(image_size, patches=3)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            args,
            str(path),
            input_names=["image", "audio", "audio_mask"],
            output_names=["function", "dependency"],
            dynamic_axes={
                "image": {0: "batch"},
                "audio": {0: "batch", 1: "patches"},
                "audio_mask": {0: "batch", 1: "patches"},
                "function": {0: "batch"},
                "dependency": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def check_onnx(
    model: nn.Module, path: str | Path, image_size: int, patch_counts=(1, 5, 20), batches=(1, 2)
) -> float:
    """Max abs difference between onnxruntime and PyTorch logits over several audio lengths
    and batch sizes (both axes are dynamic in the exported graph)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    model = model.eval().cpu()
    cases = [(t, b) for t in patch_counts for b in batches]
    for i, (t, b) in enumerate(cases):
        image, audio, mask = example_inputs(image_size, patches=t, batch=b, seed=i + 1)
        with torch.inference_mode():
            ref = model(image, audio, mask)
        got = sess.run(
            None, {"image": image.numpy(), "audio": audio.numpy(), "audio_mask": mask.numpy()}
        )
        for name, arr in zip(("function", "dependency"), got, strict=True):
            worst = max(worst, float(np.abs(ref[name].numpy() - arr).max()))
    return worst


def export_and_check(
    model: nn.Module, image_size: int, path: str | Path, tol: float = 1e-3
) -> float:
    export_onnx(model, image_size, path)
    diff = check_onnx(model, path, image_size)
    if diff > tol:
        raise AvagError(f"ONNX export {path} differs from PyTorch by {diff:.2e} (> {tol:g})")
    return diff
