"""Exported ONNX graphs (and compiled models) on disk, keyed by everything that changes them.

The key hashes the weights, the model config, the input size, the graph dtype, the
opset, the torch version and the source of the modeling code and exporter: a new
checkpoint, a code change or a torch upgrade gives a new folder, never a stale graph.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch

from avag_core import export as export_mod
from avag_core.export import DECODER_FILE, ENCODER_FILE, OPSET, export_split

log = logging.getLogger(__name__)
INFO_FILE = "graphs.json"


def model_key(model: torch.nn.Module, image_size: int, graph_dtype: str, sources: tuple[Path, ...] = ()) -> str:
    """``sources``: more code whose change must give a new key (a compiler's build code)."""
    h = hashlib.blake2b(digest_size=10)
    cfg = getattr(model, "cfg", None)
    meta = {
        "cfg": asdict(cfg) if is_dataclass(cfg) else repr(cfg),
        "size": image_size,
        "dtype": graph_dtype,
        "opset": OPSET,
        "torch": torch.__version__,
    }
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    code = sorted(Path(export_mod.__file__).parent.joinpath("modeling").glob("*.py"))
    for src in [*code, Path(export_mod.__file__), *sources]:
        h.update(src.read_bytes())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def build_once(cache_dir: Path, key: str, build: Callable[[Path], None], done_file: str) -> Path:
    """Return ``cache_dir/key``, calling ``build(tmp_folder)`` first if it does not hold
    ``done_file`` yet. The build writes into a temporary folder that is renamed into place,
    so a crash or a second process never leaves a half-written artifact behind; one builder
    per key: a second process (the node beside an offline replay) waits for the first
    one's result instead of building the same thing again on the same CPU."""
    folder = cache_dir / key
    if (folder / done_file).is_file():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock_path = cache_dir / f".{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / done_file).is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
            try:
                build(tmp)
                try:
                    tmp.rename(folder)
                except OSError:  # another process finished first (a cache without locks): keep its copy
                    shutil.rmtree(tmp, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        # gone once the artifact exists (a process still waiting on it re-checks the folder)
        lock_path.unlink(missing_ok=True)
    return folder


def ensure_graphs(
    model: torch.nn.Module,
    image_size: int,
    cache_dir: Path,
    device: torch.device,
    graph_dtype: str = "fp32",
) -> tuple[str, Path]:
    """Return (key, folder with encoder.onnx/decoder.onnx/graphs.json), exporting once."""
    key = model_key(model, image_size, graph_dtype)

    def export(tmp: Path) -> None:
        log.info("exporting ONNX graphs (%s) to %s", graph_dtype, cache_dir / key)
        dt = torch.float16 if graph_dtype == "fp16" else torch.float32
        export_split(model, image_size, tmp, device=device, dtype=dt)
        with torch.inference_mode():
            image = torch.zeros(1, 3, image_size, image_size, device=device)
            shapes = [list(f.shape[1:]) for f in model.encode_image(image)]
        info = {"key": key, "image_size": image_size, "dtype": graph_dtype, "feature_shapes": shapes}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1))

    return key, build_once(cache_dir, key, export, INFO_FILE)


def graph_info(folder: Path) -> dict:
    return json.loads((folder / INFO_FILE).read_text())


def quantized(folder: Path, name: str) -> Path:
    """int8 dynamic quantization of a graph's matrix products (weights int8, activations
    quantized per call), written once beside it. Convolutions stay float: on a CPU
    ConvInteger is slower than oneDNN's float convolution."""
    src = folder / name
    dst = folder / name.replace(".onnx", ".int8.onnx")
    if not dst.is_file():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        model = onnx.load(src)
        _unshare_gemm_weights(model)
        pre = dst.with_suffix(".pre.onnx")
        onnx.save(model, pre)
        tmp = dst.with_suffix(".tmp.onnx")
        try:
            quantize_dynamic(
                pre, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                # shape inference cannot type every intermediate of the decoder: they are float
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            pre.unlink(missing_ok=True)
        tmp.rename(dst)
    return dst


def _unshare_gemm_weights(model) -> None:
    """Give every Gemm its own weight initializer. The quantizer rewrites Gemm(transB=1) as
    MatMul by transposing the weight in place, assuming no other node uses it; the mixer's
    fusion block is shared by every scale and both tasks, so its weights would be
    transposed once per use (an invalid graph)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    seen: set[str] = set()
    for node in model.graph.node:
        if node.op_type != "Gemm" or node.input[1] not in inits:
            continue
        name = node.input[1]
        if name in seen:
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[name]), f"{name}__{node.name}")
            model.graph.initializer.append(copy)
            node.input[1] = copy.name
        seen.add(name)


__all__ = ["DECODER_FILE", "ENCODER_FILE", "build_once", "ensure_graphs", "graph_info",
           "model_key", "quantized"]
