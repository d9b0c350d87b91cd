"""The TensorRT engine cache folder: one sub-folder per model key, with a manifest that
records which TensorRT and onnxruntime built the engines. An engine only runs on the
TensorRT version (and GPU) that built it, so a changed manifest wipes the folder and the
engines are rebuilt, with a log line that says why (the first run then takes minutes)."""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
MANIFEST = "avag_engines.json"


def tensorrt_version() -> str:
    """Installed TensorRT version: the Python module if present, else libnvinfer's own
    ``getInferLibVersion`` (JetPack ships the library; the module may be missing)."""
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for lib in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        try:
            v = int(ctypes.CDLL(lib).getInferLibVersion())
        except (OSError, AttributeError):
            continue
        # TensorRT >= 10 encodes major*10000 + minor*100 + patch; 8.x major*1000 + minor*100 + patch
        major, rest = (v // 10000, v % 10000) if v >= 10000 else (v // 1000, v % 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return "unknown"


def prepare(
    root: Path, key: str, fp16: bool, device_name: str, ort_version: str, trt_version: str | None = None
) -> Path:
    """Return the engine folder for ``key``; empty it when what built it has changed
    (``trt_version`` defaults to the installed TensorRT)."""
    folder = root / key
    want = {"model": key, "tensorrt": trt_version or tensorrt_version(), "onnxruntime": ort_version,
            "fp16": fp16, "gpu": device_name}
    path = folder / MANIFEST
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except ValueError:
            have = {}
        if have == want:
            log.info("TensorRT engine cache %s matches (TensorRT %s)", folder, want["tensorrt"])
            return folder
        changed = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        log.warning("TensorRT engine cache %s was built with %s: rebuilding (takes minutes)",
                    folder, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
        shutil.rmtree(folder)
    else:
        log.warning("no TensorRT engine for this model in %s yet: building it (takes minutes, "
                    "cached afterwards)", folder)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(want, indent=1))
    return folder
