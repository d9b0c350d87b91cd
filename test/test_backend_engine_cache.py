"""TensorRT engine cache folder: kept while TensorRT, onnxruntime, GPU and model are the same,
wiped (with a log line that says what changed) when any of them changes. The folder logic
runs without a GPU; building real engines is in test_backend_cuda.py."""

from __future__ import annotations

import json
import logging

from avag_core.backends import engine_cache


def _prepare(root, key="abc", trt="10.3.0"):
    return engine_cache.prepare(root, key, fp16=True, device_name="Orin", ort_version="1.20.0",
                                trt_version=trt)


def test_engine_cache_kept_then_rebuilt_on_tensorrt_change(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="avag_core.backends.engine_cache")
    folder = _prepare(tmp_path)
    assert folder == tmp_path / "abc"
    assert "building it" in caplog.text
    engine = folder / "TensorrtExecutionProvider_TRTKernel_graph_1.engine"
    engine.write_bytes(b"engine")
    caplog.clear()
    assert _prepare(tmp_path) == folder and engine.is_file()
    assert "matches" in caplog.text
    caplog.clear()
    _prepare(tmp_path, trt="10.7.0")
    assert not engine.exists()
    assert "tensorrt 10.3.0 -> 10.7.0" in caplog.text and "rebuilding" in caplog.text
    assert json.loads((folder / engine_cache.MANIFEST).read_text())["tensorrt"] == "10.7.0"


def test_each_model_gets_its_own_folder(tmp_path):
    a, b = _prepare(tmp_path, key="model_a"), _prepare(tmp_path, key="model_b")
    assert a != b and a.is_dir() and b.is_dir()


def test_tensorrt_version_is_a_string_without_tensorrt():
    assert isinstance(engine_cache.tensorrt_version(), str)
