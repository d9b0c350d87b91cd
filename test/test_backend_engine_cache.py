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


def test_tensorrt_profiles_name_exactly_each_graphs_inputs(tmp_path):
    """The optimisation profiles must name every input of the graph they are given to (and
    nothing else), with the shapes the exported graphs really have."""
    import onnxruntime as ort
    import torch

    from avag_core.backends.graphs import ensure_graphs, graph_info
    from avag_core.backends.ort_backend import trt_profiles
    from avag_core.config import load_config
    from avag_core.modeling import build_model

    torch.manual_seed(0)
    cfg = load_config("tiny").model
    model = build_model(cfg).eval()
    _, folder = ensure_graphs(model, cfg.image_size, tmp_path, torch.device("cpu"))
    info = graph_info(folder)
    for graph in ("encoder", "decoder"):
        sess = ort.InferenceSession(str(folder / f"{graph}.onnx"), providers=["CPUExecutionProvider"])
        inputs = {i.name: i.shape for i in sess.get_inputs()}
        prof = trt_profiles(graph, cfg.image_size, info["feature_shapes"], 2, 20)
        for key in ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes"):
            named = dict(item.split(":") for item in prof[key].split(","))
            assert set(named) == set(inputs), (graph, key)
            for name, dims in named.items():
                fixed = [d for d in inputs[name] if isinstance(d, int)]
                assert [int(x) for x in dims.split("x")][-len(fixed):] == fixed or not fixed, name
        assert prof["trt_profile_max_shapes"].count("2x") >= 1
