"""TorchInductor ahead-of-time backend: the encoder and the decoder compiled into two
shared libraries (AOTInductor packages), once per model, then loaded in seconds.

Why: on a CPU, eager PyTorch runs one kernel per operator and (in bf16) converts every
activation on its way into each matrix product; the compiled model fuses the element-wise
work into its neighbours and keeps bf16 weights pre-packed for oneDNN (``freezing``). On
this project's 2-core AVX512-BF16 CPU the ``paper`` preset runs 1.23x faster than eager
bf16 (the README's backend benchmark has the figures and the command).

The price is a build of a few minutes with a C++ compiler on first use, cached like a
TensorRT engine: the folder is keyed by the weights, config, input size, dtype, torch
version, modeling/export/build code and this CPU's vector ISA, so any change gives a
fresh build and never a stale library. CPU only (on CUDA: ``tensorrt`` or ``torch``).
Batch size and audio length stay dynamic, like the ONNX graphs.
"""

from __future__ import annotations

import copy
import logging
import platform
from pathlib import Path
from typing import Any

import torch

from avag_core.backends.graphs import build_once, model_key
from avag_core.backends.torch_backend import cast_weights, check_dtype, cpu_bf16_supported
from avag_core.errors import AvagError
from avag_core.export import DecoderPart, EncoderPart, example_inputs
from avag_core.user_cache import default_cache_dir

log = logging.getLogger(__name__)
ENCODER_PACKAGE = "encoder.pt2"
DECODER_PACKAGE = "decoder.pt2"
MAX_BATCH = 64
_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16}


def cpu_target() -> str:
    """What a compiled library is built for: the machine, its vector ISA and native bf16
    (a library built for AVX512/AMX does not run on a CPU without them). PyTorch's own
    reading of the CPU: no compiler is needed to compute a cache key."""
    bf16 = "-bf16" if cpu_bf16_supported() else ""
    return f"{platform.machine()}-{torch.backends.cpu.get_cpu_capability()}{bf16}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def aoti_packages_available() -> bool:
    """AOTInductor's package API (``aoti_compile_and_package`` / ``aoti_load_package``)
    came with torch 2.6; JetPack 6's torch is 2.4 or 2.5."""
    return all(hasattr(torch._inductor, f) for f in ("aoti_compile_and_package", "aoti_load_package"))


def require_aoti_packages() -> None:
    """Why a check of its own: without the package API the missing function would surface
    as a failed compile that blames the C++ compiler."""
    if not aoti_packages_available():
        raise AvagError(f"backend inductor needs torch 2.6 or newer (AOTInductor packages); this is "
                        f"torch {torch.__version__}: use backend onnxruntime or torch")


def compile_parts(model: torch.nn.Module, image_size: int, dtype: str, out: Path) -> None:
    """Export the two parts with dynamic batch and audio length (up to the model's
    ``max_audio_patches``) and compile each into a package in ``out``. ``model`` is not
    changed: bf16 casts the weights of a copy."""
    model = copy.deepcopy(model).eval()
    amp = _AUTOCAST[dtype]
    if amp is not None:
        cast_weights(model, amp)  # what TorchBackend runs: the same numerics, compiled
    image, audio, mask = example_inputs(image_size, patches=3, batch=2)
    enc, dec = EncoderPart(model, autocast=amp), DecoderPart(model, image_size, autocast=amp)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    patches = torch.export.Dim("patches", min=1, max=max(3, int(getattr(model.cfg, "max_audio_patches", 20))))
    with torch.inference_mode():
        feats = enc(image)
    per_map = [{0: batch}] * len(feats)
    parts = [(ENCODER_PACKAGE, enc, (image,), ({0: batch},)),
             (DECODER_PACKAGE, dec, (*feats, audio, mask), ((*per_map, {0: batch, 1: patches}, {0: batch, 1: patches}),))]
    for name, module, args, dynamic in parts:
        try:
            with torch.inference_mode():
                program = torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
        except Exception as exc:
            raise AvagError(f"backend inductor could not export the model ({_first_line(exc)}); "
                            "use backend onnxruntime or torch") from exc
        try:
            # freezing: weights become constants, so bf16/fp32 matrix products get oneDNN's
            # pre-packed weights and constant folding runs at build time
            torch._inductor.aoti_compile_and_package(
                program, package_path=str(out / name), inductor_configs={"freezing": True})
        except Exception as exc:
            raise AvagError(f"backend inductor could not compile the model ({_first_line(exc)}); it "
                            "needs a C++ compiler (g++) - or use backend onnxruntime") from exc


class InductorBackend:
    """The model compiled by TorchInductor ahead of time (CPU; fp32, or bf16 on a CPU with
    AVX512-BF16/AMX). ``cache_dir``: where the compiled packages are kept
    (default ``~/.cache/avag/inductor`` or ``$AVAG_CACHE_DIR/inductor``)."""

    name = "inductor"

    def __init__(self, model: torch.nn.Module, image_size: int, device: torch.device, dtype: str,
                 cache_dir: str | Path | None = None) -> None:
        if device.type != "cpu":
            raise AvagError(f"backend inductor compiles for the CPU, got device {device}; "
                            "on a GPU use tensorrt or torch")
        if dtype == "auto":  # as onnxruntime: no probe (each dtype is a build of minutes); bf16 on request
            dtype = "fp32"
        if dtype not in _AUTOCAST:
            raise AvagError(f"backend inductor runs fp32 or bf16, not {dtype}")
        check_dtype(dtype, device)
        require_aoti_packages()
        self.dtype, self.size = dtype, image_size
        root = Path(cache_dir) if cache_dir else default_cache_dir() / "inductor"
        self.key = model_key(model, image_size, f"inductor-{dtype}-{cpu_target()}", (Path(__file__),))
        self.built = False

        def build(tmp: Path) -> None:
            log.warning("compiling the model for backend inductor (%s) into %s: minutes, once; "
                        "cached afterwards", dtype, root / self.key)
            compile_parts(model, image_size, dtype, tmp)
            self.built = True

        self.folder = build_once(root, self.key, build, DECODER_PACKAGE)
        self._encoder = torch._inductor.aoti_load_package(str(self.folder / ENCODER_PACKAGE))
        self._decoder = torch._inductor.aoti_load_package(str(self.folder / DECODER_PACKAGE))

    def encode(self, image: torch.Tensor) -> Any:
        return self._encoder(image.float().contiguous())

    def decode(self, features, audio, audio_mask):
        func, dep = self._decoder(*features, audio.float().contiguous(), audio_mask.to(torch.bool).contiguous())
        return func, dep

    def describe(self) -> str:
        return f"inductor {self.dtype} on cpu ({self.folder.name})"
