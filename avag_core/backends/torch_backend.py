"""PyTorch eager backend: fp32, fp16/bf16 autocast, and ``auto`` chosen by a probe at load."""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from typing import Any

import torch

from avag_core.backends.agreement import compare, within_tolerance
from avag_core.errors import AvagError

log = logging.getLogger(__name__)

_TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_bf16_supported() -> bool:
    """bf16 matmuls/convolutions run natively (AVX512-BF16 or AMX) in oneDNN on this CPU.
    Without them PyTorch emulates bf16 and it is slower than fp32."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if None in probes:  # torch 2.4 (JetPack 6.0) cannot tell: bf16 stays off, fp32 is never slower
        return False
    return bool(torch.backends.mkldnn.is_available() and any(probe() for probe in probes))


def check_dtype(dtype: str, device: torch.device) -> None:
    """Refuse a dtype the device cannot run, with the reason in one line."""
    if dtype == "int8":
        raise AvagError("dtype int8 is for the onnxruntime backend (dynamic quantization on CPU)")
    if device.type == "cuda" or dtype in ("fp32", "auto"):
        return
    if dtype == "fp16":
        raise AvagError(f"dtype fp16 autocast needs a CUDA device, got {device}")
    if dtype == "bf16" and not (device.type == "cpu" and cpu_bf16_supported()):
        raise AvagError(
            f"dtype bf16 on {device} needs a CPU with AVX512-BF16 or AMX (torch {torch.__version__} finds "
            "neither here); use fp32"
        )


_CAST_MODULES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)


def weights_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the model's matrix-product weights (float32 until ``cast_weights``)."""
    for mod in model.modules():
        if isinstance(mod, _CAST_MODULES):
            return mod.weight.dtype
    return torch.float32


def cast_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast the weight of every Linear/Conv to the autocast dtype, once, in place.

    Why: autocast casts each float32 weight again on every call (casting them once took
    ~75 ms of copies out of a ``paper`` bf16 forward's ~1.8 s of CPU time, profiled) and takes
    a weight already in its dtype as is, so the logits are the same (tested). Biases (small; the model adds one
    outside a matrix product), norms and embeddings stay float32; the weights' memory halves.
    """
    for mod in model.modules():
        if isinstance(mod, _CAST_MODULES):
            mod.weight.data = mod.weight.data.to(dtype)


class TorchBackend:
    """PyTorch eager. A reduced dtype (fp16/bf16) runs under autocast with the matrix-product
    weights cast once at load (``cast_weights``): the model is then for that dtype only."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, image_size: int, device: torch.device, dtype: str):
        check_dtype(dtype, device)
        if weights_dtype(model) != torch.float32:
            raise AvagError(
                f"this model's weights were cast to {weights_dtype(model)} by another Predictor; "
                "load the checkpoint again for a new one"
            )
        self.model, self.size, self.device = model, image_size, device
        self.probe: dict[str, Any] = {}
        self.dtype = "fp32"  # what the probe's reference runs in
        self.dtype = self._choose() if dtype == "auto" else dtype
        if self.dtype in _TORCH_DTYPES:
            cast_weights(model, _TORCH_DTYPES[self.dtype])

    # --- dtype ---------------------------------------------------------------------------
    def _autocast(self, dtype: str | None = None):
        amp = _TORCH_DTYPES.get(dtype or self.dtype)
        if amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=amp)

    def _candidates(self) -> list[str]:
        if self.device.type == "cuda":
            return ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
        return ["bf16"] if self.device.type == "cpu" and cpu_bf16_supported() else []

    @torch.inference_mode()
    def _choose(self, rounds: int = 2) -> str:
        """``auto``: time fp32 and each reduced dtype on a seeded probe at the real input size,
        interleaved (a noisy machine slows all of them alike), and keep the fastest one whose
        masks agree with fp32 (``agreement.within_tolerance``) and that beats fp32 by >= 10%."""
        cands = self._candidates()
        if not cands:
            self.probe = {"chosen": "fp32", "reason": f"no reduced dtype runs natively on {self.device}"}
            return "fp32"
        g = torch.Generator().manual_seed(0)
        image = torch.randn(1, 3, self.size, self.size, generator=g).to(self.device)
        audio = (torch.randn(1, 3, 96, 64, generator=g) - 4.0).to(self.device)
        mask = torch.ones(1, 3, dtype=torch.bool, device=self.device)

        def run(dt: str):
            with self._autocast(dt):
                return self.decode(self.encode(image), audio, mask)

        outs = {dt: run(dt) for dt in ["fp32", *cands]}  # warm-up, and the outputs compared
        times: dict[str, list[float]] = {dt: [] for dt in outs}
        for _ in range(rounds):
            for dt in times:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t0 = time.perf_counter()
                run(dt)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                times[dt].append((time.perf_counter() - t0) * 1000.0)
        med = {dt: statistics.median(v) for dt, v in times.items()}
        agree = {dt: compare(outs["fp32"], outs[dt]) for dt in cands}
        ok = [dt for dt in cands if within_tolerance(agree[dt]) and med[dt] < 0.9 * med["fp32"]]
        chosen = min(ok, key=med.get) if ok else "fp32"
        self.probe = {"chosen": chosen, "median_ms": med, "agreement": agree}
        log.info("dtype auto on %s: %s (probe medians %s)", self.device, chosen,
                 {k: round(v, 1) for k, v in med.items()})
        return chosen

    # --- the two parts -------------------------------------------------------------------
    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        with self._autocast():
            return self.model.encode_image(image)

    def decode(self, features, audio, audio_mask):
        with self._autocast():
            out = self.model._decode(features, audio, audio_mask, (self.size, self.size))
        return out["function"].float(), out["dependency"].float()

    def describe(self) -> str:
        return f"torch {self.dtype} on {self.device}"
