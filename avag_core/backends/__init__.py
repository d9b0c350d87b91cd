"""Inference backends behind :class:`avag_core.predictor.Predictor`.

Every backend runs the model as two parts, matching ``set_image`` / ``predict``:
``encode`` (image -> FPN maps, audio-independent, done ahead on the onset frame) and
``decode`` (cached maps + audio -> function/dependency logits at the model's input size).

- ``torch``: PyTorch eager; fp32, fp16/bf16 autocast (bf16 also on CPUs with AVX512-BF16
  or AMX), ``auto`` picks the fastest dtype that agrees with fp32 on a probe at load.
- ``cudagraph``: torch on CUDA with each part captured once per input shape as a CUDA
  graph and replayed (at batch 1 eager torch waits on kernel launches, not on the GPU).
- ``inductor``: the two parts compiled ahead of time by TorchInductor into shared
  libraries (CPU; fp32, bf16 on AVX512-BF16/AMX), built once per model into a cache folder
  (minutes, with a C++ compiler), then loaded in seconds: the fastest CPU path for
  the large ``paper`` preset.
- ``onnxruntime``: two exported ONNX graphs on the CPU or CUDA execution provider;
  ``int8`` = dynamic quantization of the matrix products (CPU).
- ``auto``: onnxruntime on a CPU where it is installed, torch otherwise (see
  :func:`resolve_backend`).
- ``tensorrt``: the same graphs on onnxruntime's TensorRT execution provider (fp16 option),
  with an engine cache folder that is rebuilt when TensorRT or the model changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from avag_core.errors import AvagError

if TYPE_CHECKING:  # the names below are imported by ROS parameter code: no torch at import
    import torch

BACKENDS = ("auto", "torch", "cudagraph", "inductor", "onnxruntime", "tensorrt")
DTYPES = ("auto", "fp32", "fp16", "bf16", "int8")


class InferenceBackend(Protocol):
    """What Predictor needs from a backend (features are opaque to the caller)."""

    name: str
    dtype: str  # the dtype actually used (``auto`` resolved)

    def encode(self, image: torch.Tensor) -> Any:
        """Normalised image [B, 3, S, S] on the predictor's device -> cached features."""

    def decode(
        self, features: Any, audio: torch.Tensor, audio_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features + log-mel patches [B, T, 96, 64] + mask [B, T] -> float32 logits
        (function, dependency), each [B, 1, S, S] on the predictor's device."""

    def describe(self) -> str:
        """One line for logs and diagnostics, e.g. ``onnxruntime[CPUExecutionProvider] fp32``."""


def normalise_dtype(value: str | torch.dtype | None) -> str:
    """Accept the spellings users type (and torch dtypes) -> one of ``DTYPES``."""
    import torch

    if value is None:
        return "fp32"
    if isinstance(value, torch.dtype):
        value = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(value, str(value))
    table = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "qint8": "int8"}
    name = table.get(str(value), str(value))
    if name not in DTYPES:
        raise AvagError(f"unknown dtype {value!r} (use {', '.join(DTYPES)})")
    return name


def resolve_backend(name: str, device: torch.device | str, dtype: str = "fp32") -> str:
    """``auto`` -> the backend that runs fastest where it is: onnxruntime on a CPU (2-4x
    torch's speed there, same logits to ~1e-5) when it is installed and runs ``dtype``;
    torch otherwise, and always on CUDA (what JetPack ships; onnxruntime-gpu and TensorRT
    are chosen explicitly). Other names are returned as given."""
    if name != "auto":
        return name
    if str(device).startswith("cuda") or dtype in ("fp16", "bf16"):
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnxruntime"


def make_backend(
    name: str,
    model: torch.nn.Module,
    image_size: int,
    device: torch.device,
    dtype: str | torch.dtype | None = None,
    **options: Any,
) -> InferenceBackend:
    """Build backend ``name`` for ``model`` (eval mode, already on ``device``)."""
    dt = normalise_dtype(dtype)
    name = resolve_backend(name, device, dt)
    if name == "torch":
        from avag_core.backends.torch_backend import TorchBackend

        if options:
            raise AvagError(f"backend torch takes no options, got {sorted(options)}")
        return TorchBackend(model, image_size, device, dt)
    if name == "cudagraph":
        from avag_core.backends.cudagraph_backend import CudaGraphBackend

        if options:
            raise AvagError(f"backend cudagraph takes no options, got {sorted(options)}")
        return CudaGraphBackend(model, image_size, device, dt)
    if name == "inductor":
        from avag_core.backends.inductor_backend import InductorBackend

        if set(options) - {"cache_dir"}:
            raise AvagError(f"backend inductor takes only cache_dir, got {sorted(options)}")
        return InductorBackend(model, image_size, device, dt, **options)
    if name in ("onnxruntime", "tensorrt"):
        from avag_core.backends.ort_backend import OrtBackend

        return OrtBackend(model, image_size, device, dt, tensorrt=name == "tensorrt", **options)
    raise AvagError(f"unknown backend {name!r} (use {', '.join(BACKENDS)})")
