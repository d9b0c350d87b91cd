"""`avag bench model` over backends and dtypes: one table, one JSON, interleaved; cases a
device cannot run are listed as skipped with the reason."""

from __future__ import annotations

import json

from avag_core.cli.main import main


def test_bench_backends_dtypes_sizes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "model", "--config", "tiny@64,tiny@96", "--backend", "torch,onnxruntime",
               "--dtype", "fp32,fp16", "--iters", "2", "--warmup", "1", "--threads", "1",
               "--onnx-cache-dir", str(tmp_path / "onnx"), "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["interleaved"] is True
    ran = [r for r in data["results"] if "skipped" not in r]
    skipped = [r for r in data["results"] if "skipped" in r]
    assert sorted((r["image_size"], r["backend"]) for r in ran) == [
        (64, "onnxruntime"), (64, "torch"), (96, "onnxruntime"), (96, "torch")]
    assert {r["dtype"] for r in skipped} == {"fp16"} and len(skipped) == 4
    assert all("CUDA" in r["skipped"] or "cuda" in r["skipped"] for r in skipped)
    for r in ran:
        assert r["full"]["median_ms"] > 0 and r["audio_conditioned"]["p95_ms"] > 0
        assert r["memory_mib"] >= 0 and r["peak_memory_mib"] > 0
    ort = [r for r in ran if r["backend"] == "onnxruntime"]
    assert all(r["vs_torch_fp32"]["max_logit_diff"] < 1e-3 and r["vs_torch_fp32"]["min_iou"] >= 0.99 for r in ort)
    table = capsys.readouterr().out
    assert "IoU fp32" in table and "skipped:" in table
