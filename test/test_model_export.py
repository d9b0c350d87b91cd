"""ONNX export with dynamic audio length, checked against PyTorch with onnxruntime."""

import torch

from avag_core.config import load_config
from avag_core.export import check_onnx, export_onnx
from avag_core.modeling import build_model


def test_realtime_onnx_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    cfg = load_config("realtime").model
    model = build_model(cfg).eval()
    path = export_onnx(model, cfg.image_size, tmp_path / "realtime.onnx")
    assert check_onnx(model, path, cfg.image_size, patch_counts=(1, 7, 20)) <= 1e-3
