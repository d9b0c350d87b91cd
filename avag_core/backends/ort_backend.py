"""onnxruntime backend: the exported encoder and decoder graphs on the CPU, CUDA or
TensorRT execution provider.

On CUDA the encoder's maps stay on the GPU between ``set_image`` and ``predict``
(I/O binding); on the CPU they are numpy arrays. dtypes: ``fp32`` everywhere; ``fp16``
on CUDA (a half graph) and TensorRT (TensorRT's fp16 mode on the fp32 graph); ``int8``
on the CPU (dynamic quantization of the matrix products). ``auto`` means fp32: unlike
the torch backend there is no probe (building a second TensorRT engine takes minutes).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avag_core.backends import engine_cache
from avag_core.backends.graphs import (
    DECODER_FILE,
    ENCODER_FILE,
    ensure_graphs,
    graph_info,
    quantized,
)
from avag_core.errors import AvagError
from avag_core.user_cache import default_cache_dir

log = logging.getLogger(__name__)


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise AvagError(
            "the onnxruntime backend needs onnxruntime (CPU) or onnxruntime-gpu (CUDA/TensorRT): "
            "pip install onnxruntime"
        ) from None
    return onnxruntime


def trt_profiles(
    graph: str, size: int, feature_shapes: list[list[int]], max_batch: int, max_patches: int
) -> dict[str, str]:
    """TensorRT optimisation profile of the ``encoder`` or ``decoder`` graph, naming exactly
    its inputs: one profile covering every batch (1..max_batch) and audio length
    (1..max_patches) the predictor sends, so a longer sound never rebuilds an engine."""

    def shapes(b: int, t: int) -> str:
        if graph == "encoder":
            return f"image:{b}x3x{size}x{size}"
        feats = [f"feat{i}:{b}x" + "x".join(map(str, shp)) for i, shp in enumerate(feature_shapes)]
        return ",".join([*feats, f"audio:{b}x{t}x96x64", f"audio_mask:{b}x{t}"])

    return {
        "trt_profile_min_shapes": shapes(1, 1),
        "trt_profile_opt_shapes": shapes(1, min(5, max_patches)),
        "trt_profile_max_shapes": shapes(max_batch, max_patches),
    }


class OrtBackend:
    name = "onnxruntime"

    def __init__(
        self,
        model: torch.nn.Module,
        image_size: int,
        device: torch.device,
        dtype: str,
        tensorrt: bool = False,
        cache_dir: str | Path | None = None,
        engine_cache_dir: str | Path | None = None,
        threads: int = 0,
        max_batch: int = 2,
    ) -> None:
        ort = _ort()
        self.device, self.size = device, image_size
        self.dtype = "fp32" if dtype == "auto" else dtype
        self.name = "tensorrt" if tensorrt else "onnxruntime"
        self._check(ort, tensorrt)
        if device.type == "cuda" and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu from pip finds the CUDA/cuDNN libraries of the nvidia-* wheels
            # only when asked to load them (they are not on the loader path); a system CUDA
            # (JetPack) needs nothing, and a failed preload shows as a provider error below
            try:
                ort.preload_dlls()
            except Exception as exc:  # optional help, never fatal by itself
                log.info("onnxruntime.preload_dlls: %s", exc)
        cache = Path(cache_dir) if cache_dir else default_cache_dir() / "onnx"
        half_graph = self.dtype == "fp16" and not tensorrt
        self.key, folder = ensure_graphs(model, image_size, cache, device, "fp16" if half_graph else "fp32")
        self.info = graph_info(folder)
        enc_path, dec_path = folder / ENCODER_FILE, folder / DECODER_FILE
        if self.dtype == "int8":
            enc_path, dec_path = quantized(folder, ENCODER_FILE), quantized(folder, DECODER_FILE)
        self.engine_dir: Path | None = None
        self._ort, self._threads = ort, threads or torch.get_num_threads()
        self._paths = {"encoder": enc_path, "decoder": dec_path}
        self._max_batch, self._max_patches = max_batch, int(getattr(model.cfg, "max_audio_patches", 20))
        self._provider_list = providers = self._providers(ort, tensorrt, engine_cache_dir)
        # A robot sends one image at a time: on a CPU, sessions that know the batch is 1 fold
        # the graph's shape arithmetic into constants (a third of the decoder's nodes; each
        # node costs microseconds there). Sessions for other batch sizes open on first use.
        self._batch_one = device.type == "cpu"
        self._sessions: dict[tuple[str, bool], Any] = {}
        encoder = self._session("encoder", 1)
        self._session("decoder", 1)
        self.providers = encoder.get_providers()
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in self.providers:
            raise AvagError(f"onnxruntime could not start {wanted} (running on {self.providers})")
        self.feature_names = [o.name for o in encoder.get_outputs()]
        self._gpu = device.type == "cuda"
        if self._gpu:  # the graphs run in onnxruntime: the PyTorch copy need not hold GPU memory
            model.cpu()
            torch.cuda.empty_cache()

    # --- setup -------------------------------------------------------------------------
    def _session(self, graph: str, batch: int) -> Any:
        """The ``encoder`` or ``decoder`` session for this batch size, opened once."""
        one = self._batch_one and batch == 1
        if (graph, one) not in self._sessions:
            ort = self._ort
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = self._threads
            opts.inter_op_num_threads = 1
            # idle worker threads sleep instead of spinning: on a robot the CPU is shared with
            # other nodes (and with PyTorch's own threads in one process)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3  # errors only; a provider that did not start is refused
            if one:
                opts.add_free_dimension_override_by_name("batch", 1)
            # TensorRT: each graph gets an optimisation profile naming its own inputs
            providers = self._with_profiles(self._provider_list, self._max_batch, self._max_patches, graph)
            self._sessions[graph, one] = ort.InferenceSession(str(self._paths[graph]), opts, providers=providers)
        return self._sessions[graph, one]

    def _check(self, ort, tensorrt: bool) -> None:
        have = ort.get_available_providers()
        if self.dtype == "bf16":
            raise AvagError("dtype bf16 is not offered by onnxruntime: use fp16 (CUDA/TensorRT), "
                            "int8 (CPU) or the torch backend")
        if tensorrt and "TensorrtExecutionProvider" not in have:
            raise AvagError("backend tensorrt needs onnxruntime-gpu built with TensorRT "
                            f"(this onnxruntime offers {', '.join(have)})")
        if tensorrt and self.device.type != "cuda":
            raise AvagError(f"backend tensorrt runs on a CUDA device, got device {self.device}")
        if self.device.type == "cuda" and "CUDAExecutionProvider" not in have:
            raise AvagError("device cuda with onnxruntime needs onnxruntime-gpu "
                            f"(this onnxruntime offers {', '.join(have)})")
        if self.device.type not in ("cpu", "cuda"):
            raise AvagError(f"the onnxruntime backend runs on cpu or cuda, got {self.device}")
        if self.dtype == "fp16" and self.device.type != "cuda":
            raise AvagError("dtype fp16 with onnxruntime needs device cuda (CPU: fp32 or int8)")
        if self.dtype == "int8" and self.device.type != "cpu":
            raise AvagError("dtype int8 (dynamic quantization) is for the CPU; on a GPU use fp16")

    def _providers(self, ort, tensorrt: bool, engine_root) -> list:
        if self.device.type == "cpu":
            return ["CPUExecutionProvider"]
        dev_id = self.device.index or 0
        cuda = ("CUDAExecutionProvider", {"device_id": dev_id})
        if not tensorrt:
            return [cuda, "CPUExecutionProvider"]
        root = Path(engine_root) if engine_root else default_cache_dir() / "tensorrt"
        gpu = torch.cuda.get_device_name(self.device) if torch.cuda.is_available() else "unknown"
        self.engine_dir = engine_cache.prepare(root, self.key, self.dtype == "fp16", gpu, ort.__version__)
        trt = {
            "device_id": dev_id,
            "trt_fp16_enable": self.dtype == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(self.engine_dir),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(self.engine_dir),
        }
        return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]

    def _with_profiles(self, providers: list, max_batch: int, max_patches: int, graph: str) -> list:
        if not isinstance(providers[0], tuple) or providers[0][0] != "TensorrtExecutionProvider":
            return providers
        profiles = trt_profiles(graph, self.size, self.info["feature_shapes"], max_batch, max_patches)
        return [("TensorrtExecutionProvider", {**providers[0][1], **profiles}), *providers[1:]]

    # --- the two parts -----------------------------------------------------------------
    def encode(self, image: torch.Tensor) -> Any:
        session = self._session("encoder", image.shape[0])
        if not self._gpu:
            return session.run(None, {"image": image.detach().cpu().numpy()})
        image = image.contiguous()
        io = session.io_binding()
        io.bind_input("image", "cuda", self.device.index or 0, np.float32, tuple(image.shape),
                      image.data_ptr())
        for name in self.feature_names:
            io.bind_output(name, "cuda", self.device.index or 0)
        session.run_with_iobinding(io)
        return io.get_outputs()  # OrtValues on the GPU, kept for predict()

    def decode(self, features, audio, audio_mask):
        a = audio.detach().float().cpu().numpy()
        m = audio_mask.detach().to(torch.bool).cpu().numpy()
        session = self._session("decoder", a.shape[0])
        if not self._gpu:
            feeds = dict(zip(self.feature_names, features, strict=True))
            func, dep = session.run(None, {**feeds, "audio": a, "audio_mask": m})
        else:
            io = session.io_binding()
            for name, value in zip(self.feature_names, features, strict=True):
                io.bind_ortvalue_input(name, value)
            io.bind_cpu_input("audio", a)
            io.bind_cpu_input("audio_mask", m)
            io.bind_output("function", "cpu")
            io.bind_output("dependency", "cpu")
            session.run_with_iobinding(io)
            func, dep = io.copy_outputs_to_cpu()
        return (torch.from_numpy(func).to(self.device), torch.from_numpy(dep).to(self.device))

    def describe(self) -> str:
        return f"{self.name}[{','.join(p.replace('ExecutionProvider', '') for p in self.providers)}] {self.dtype}"
