"""`avag predict` and `avag bench model` end to end on the tiny preset."""

import json
from pathlib import Path

from avag_core.cli.main import main

AVAGD = Path(__file__).resolve().parent / "data" / "avagd"


def test_predict_writes_maps(tmp_path, capsys, tiny_checkpoint):
    ckpt = tiny_checkpoint
    image = sorted(AVAGD.glob("*/*/*.jpg"))[0]
    audio = sorted(AVAGD.glob("*/*/*.mp3"))[:2]
    out = tmp_path / "out"
    rc = main(
        [
            "predict",
            "--checkpoint",
            str(ckpt),
            "--image",
            str(image),
            "--audio",
            *map(str, audio),
            "--out-dir",
            str(out),
        ]
    )
    assert rc == 0
    from PIL import Image

    probs = sorted(out.glob("*_function_prob.png"))
    assert len(probs) == 2
    with Image.open(image) as im, Image.open(probs[0]) as pm:
        assert pm.size == im.size
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "none.safetensors"),
                "--image",
                str(image),
                "--audio",
                str(audio[0]),
            ]
        )
        == 2
    )
    assert "none.safetensors not found" in capsys.readouterr().err


def test_bench_model_json(tmp_path):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "model",
            "--config",
            "tiny",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--batch",
            "2",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["preset"] == "tiny" and row["batch"] == 2
    assert row["full"]["median_ms"] > 0 and row["audio_conditioned"]["p95_ms"] > 0
    assert row["throughput_per_s"] > 0 and row["peak_memory_mib"] > 0


def test_help_and_configs_load_without_torch():
    """`avag --help` and reading a config must not import torch, timm or rclpy: that cost
    seconds before every command, and before the demo could start its node."""
    import subprocess
    import sys

    code = ("import sys; from avag_core.cli.main import build_parser; build_parser(); "
            "from avag_core.config import load_config; load_config('realtime'); "
            "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'rclpy', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
