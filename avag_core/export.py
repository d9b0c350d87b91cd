"""ONNX export, checked with onnxruntime.

Two forms:
- one graph (``export_onnx``): normalised image at ``image_size``, log-mel patches
  [B, T, 96, 64] and the bool padding mask [B, T] -> function and dependency logits;
- two graphs (``export_split``) matching ``Predictor.set_image`` / ``predict``: the visual
  encoder (image -> FPN maps ``feat0..``) and the audio-conditioned decoder (maps + audio +
  mask -> logits), so every backend encodes the onset frame ahead of the sound.
Batch and audio length are dynamic in both.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 17  # GridSample needs >= 16
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"


class _ExportWrapper(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor):
        out = self.model(image, audio, audio_mask)
        return out["function"], out["dependency"]


def _autocast(dtype: torch.dtype | None, device_type: str):
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class EncoderPart(nn.Module):
    """The ``set_image`` part as one module to export: fp32 image in; maps out in the
    model's dtype (fp16 graphs keep fp16 between the two), or in ``autocast``'s dtype."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32,
                 autocast: torch.dtype | None = None) -> None:
        super().__init__()
        self.model, self.dtype, self.autocast = model, dtype, autocast

    def forward(self, image: torch.Tensor):
        with _autocast(self.autocast, image.device.type):
            return tuple(self.model.encode_image(image.to(self.dtype)))


class DecoderPart(nn.Module):
    """The ``predict`` part: maps + fp32 audio + mask in; fp32 logits at the input size out."""

    def __init__(self, model: nn.Module, image_size: int, dtype: torch.dtype = torch.float32,
                 autocast: torch.dtype | None = None) -> None:
        super().__init__()
        self.model, self.size, self.dtype, self.autocast = model, image_size, dtype, autocast

    def forward(self, *args: torch.Tensor):
        *feats, audio, audio_mask = args
        with _autocast(self.autocast, audio.device.type):
            out = self.model._decode(list(feats), audio.to(self.dtype), audio_mask, (self.size, self.size))
        return out["function"].float(), out["dependency"].float()


def example_inputs(image_size: int, patches: int = 3, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, image_size, image_size, generator=g)
    audio = torch.randn(batch, patches, 96, 64, generator=g) - 4.0
    mask = torch.ones(batch, patches, dtype=torch.bool)
    return image, audio, mask


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )


def export_onnx(model: nn.Module, image_size: int, path: str | Path) -> Path:
    """Trace ``model`` (eval, CPU) to one ONNX graph with dynamic batch and audio length."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _export(
        _ExportWrapper(model.eval().cpu()),
        example_inputs(image_size, patches=3),
        path,
        ["image", "audio", "audio_mask"],
        ["function", "dependency"],
        {
            "image": {0: "batch"},
            "audio": {0: "batch", 1: "patches"},
            "audio_mask": {0: "batch", 1: "patches"},
            "function": {0: "batch"},
            "dependency": {0: "batch"},
        },
    )
    return path


def export_split(
    model: nn.Module,
    image_size: int,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Path, Path]:
    """Trace the encoder and the decoder graphs into ``out_dir`` (``encoder.onnx``,
    ``decoder.onnx``). ``dtype`` float16 traces a half model on ``device`` (a CUDA device:
    the CPU has no fast fp16 kernels); inputs and logits stay float32 either way."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().to(device)
    if dtype != torch.float32:
        import copy

        model = copy.deepcopy(model).to(dtype)
    image, audio, mask = (t.to(device) for t in example_inputs(image_size, patches=3))
    enc = EncoderPart(model, dtype)
    with torch.no_grad():
        feats = enc(image)
    names = [f"feat{i}" for i in range(len(feats))]
    _export(enc, (image,), out / ENCODER_FILE, ["image"], names,
            {"image": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    _export(
        DecoderPart(model, image_size, dtype),
        (*feats, audio, mask),
        out / DECODER_FILE,
        [*names, "audio", "audio_mask"],
        ["function", "dependency"],
        {
            **{n: {0: "batch"} for n in names},
            "audio": {0: "batch", 1: "patches"},
            "audio_mask": {0: "batch", 1: "patches"},
            "function": {0: "batch"},
            "dependency": {0: "batch"},
        },
    )
    return out / ENCODER_FILE, out / DECODER_FILE


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


def check_split(
    model: nn.Module, out_dir: str | Path, image_size: int, patch_counts=(1, 5, 20), batches=(1, 2)
) -> float:
    """``check_onnx`` for the two graphs: the encoder's maps feed the decoder."""
    import onnxruntime as ort

    out = Path(out_dir)
    enc = ort.InferenceSession(str(out / ENCODER_FILE), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(out / DECODER_FILE), providers=["CPUExecutionProvider"])
    names = [o.name for o in enc.get_outputs()]
    worst = 0.0
    model = model.eval().cpu()
    for i, (t, b) in enumerate([(t, b) for t in patch_counts for b in batches]):
        image, audio, mask = example_inputs(image_size, patches=t, batch=b, seed=i + 1)
        with torch.inference_mode():
            ref = model(image, audio, mask)
        feats = enc.run(None, {"image": image.numpy()})
        got = dec.run(None, {**dict(zip(names, feats, strict=True)), "audio": audio.numpy(),
                             "audio_mask": mask.numpy()})
        for name, arr in zip(("function", "dependency"), got, strict=True):
            worst = max(worst, float(np.abs(ref[name].numpy() - arr).max()))
    return worst
