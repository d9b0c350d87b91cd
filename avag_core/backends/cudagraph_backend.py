"""PyTorch on CUDA with each part captured once as a CUDA graph, then replayed.

Why: at batch 1 the eager model is bound by kernel launches, not by the GPU. On an H200 a
``paper`` fp32 forward issued 3628 kernels: 66 ms of wall time for 22 ms of GPU work
(README, "GPU check"). A replayed graph launches them all at once. Each part is captured on
first use for each input shape: a few eager runs, then the capture, about a second. The
audio is padded with masked patches up to the next power of two (at most
``max_audio_patches``), so a handful of graphs cover every clip length. The padding gives
the same logits to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from avag_core.backends.torch_backend import TorchBackend
from avag_core.errors import AvagError

WARMUP_RUNS = 2  # eager runs on a side stream before a capture (lazy init, cuBLAS workspaces)


def padded_patches(t: int, limit: int) -> int:
    """The patch count a clip of ``t`` patches is run at: the next power of two, at most
    ``limit`` (0: no limit) and never fewer than ``t``."""
    p = 1 << max(t - 1, 0).bit_length()
    return max(t, min(p, limit)) if limit > 0 else p


def pad_audio(audio: torch.Tensor, mask: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel patches [B, T, 96, 64] and their mask [B, T] padded to ``t`` patches (zeros,
    masked out)."""
    extra = t - audio.shape[1]
    if extra <= 0:
        return audio, mask
    return (torch.cat([audio, audio.new_zeros(audio.shape[0], extra, *audio.shape[2:])], 1),
            torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], 1))


class CapturedCall:
    """One part captured for one set of input shapes: its own input buffers, the graph, and
    the output tensors each replay writes."""

    def __init__(self, fn: Callable[..., Sequence[torch.Tensor]], inputs: Sequence[torch.Tensor],
                 pool: tuple[int, int]) -> None:
        self.inputs = [t.clone() for t in inputs]
        side = torch.cuda.Stream(device=self.inputs[0].device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.outputs = list(fn(*self.inputs))

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Copy ``inputs`` in, replay, and return copies of the outputs: the next replay of
        any graph of this backend may write over the output buffers (they share one memory
        pool)."""
        for dst, src in zip(self.inputs, inputs, strict=True):
            dst.copy_(src)
        self.graph.replay()
        return [t.clone() for t in self.outputs]


class CudaGraphBackend(TorchBackend):
    """``torch`` with each part (``encode``, ``decode``) replayed from a CUDA graph captured
    per input shape. Same dtypes as ``torch`` on CUDA; ``auto`` is chosen by the torch
    backend's probe, run eagerly. One caller at a time (the graphs share one memory pool)."""

    name = "cudagraph"

    def __init__(self, model: torch.nn.Module, image_size: int, device: torch.device, dtype: str):
        if device.type != "cuda":
            raise AvagError(f"backend cudagraph needs a CUDA device, got {device}; use backend torch")
        self._graphs: dict[tuple, CapturedCall] | None = None  # None: eager (the dtype probe)
        super().__init__(model, image_size, device, dtype)
        self.max_patches = int(model.cfg.max_audio_patches)
        self._pool = torch.cuda.graph_pool_handle()
        self._graphs = {}

    def _replay(self, key: tuple, fn: Callable[..., Sequence[torch.Tensor]],
                inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        call = self._graphs.get(key)
        if call is None:
            call = self._graphs[key] = CapturedCall(fn, inputs, self._pool)
        return call(inputs)

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        if self._graphs is None:
            return super().encode(image)
        return self._replay(("encode", tuple(image.shape)), lambda x: TorchBackend.encode(self, x), [image])

    @torch.inference_mode()
    def decode(self, features, audio, audio_mask):
        if self._graphs is None:
            return super().decode(features, audio, audio_mask)
        audio, audio_mask = pad_audio(audio, audio_mask, padded_patches(audio.shape[1], self.max_patches))
        n = len(features)

        def run(*xs: torch.Tensor):
            return TorchBackend.decode(self, list(xs[:n]), xs[n], xs[n + 1])

        key = ("decode", *(tuple(f.shape) for f in features), tuple(audio.shape))
        function, dependency = self._replay(key, run, [*features, audio, audio_mask])
        return function, dependency

    def describe(self) -> str:
        return f"cudagraph {self.dtype} on {self.device} ({len(self._graphs or {})} graphs captured)"
