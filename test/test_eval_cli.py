"""`avag eval`: every sample scored once, batch-size independent, reports and overlays."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
from train_data import make_tiny_dataset

from avag_core.cli.main import main
from avag_core.config import load_config
from avag_core.evaluation.run import evaluate_checkpoint
from avag_core.modeling import build_model
from avag_core.weights.checkpoint import save_model_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = make_tiny_dataset(root / "data", n_val=5)
    torch.manual_seed(0)
    cfg = load_config("tiny", ["data.cache_dir="])
    ckpt = save_model_checkpoint(root / "model.safetensors", build_model(cfg.model), cfg)
    return data, ckpt, root


def test_scores_independent_of_batch_size_and_complete(setup):
    data, ckpt, _ = setup
    one = evaluate_checkpoint(ckpt, data, "val_small", batch_size=1, device="cpu", progress=False)
    many = evaluate_checkpoint(ckpt, data, "val_small", batch_size=4, device="cpu",
                               progress=False)
    n_rows = len((data / "val_small.csv").read_text().splitlines()) - 1
    assert one["overall"]["num_samples"] == n_rows == len(one["per_sample"])
    assert [r["index"] for r in one["per_sample"]] == list(range(n_rows))
    for a, b in zip(one["per_sample"], many["per_sample"], strict=True):
        for k in ("miou_function", "fscore_function"):
            assert a[k] == pytest.approx(b[k], abs=1e-6)
    for k, v in one["overall"].items():
        assert v == pytest.approx(many["overall"][k], abs=1e-6, nan_ok=True)
    assert set(one["per_category"]) == {r["category"] for r in one["per_sample"]}
    # dependency metrics only over samples with a non-empty dependency mask
    assert one["overall"]["num_dependency"] == sum(
        r["miou_dependency"] == r["miou_dependency"] for r in one["per_sample"]
    )


def test_shuffled_audio_swaps_every_sample(setup):
    data, ckpt, _ = setup
    res = evaluate_checkpoint(ckpt, data, "val_small", batch_size=3, device="cpu", shuffle_audio=True,
                              progress=False)
    assert res["shuffle_audio"] is True
    assert res["overall"]["num_samples"] == 5
    partners = [r["audio_from"] for r in res["per_sample"]]
    assert sorted(partners) == list(range(5))  # a permutation...
    assert all(p != r["index"] for p, r in zip(partners, res["per_sample"], strict=True))  # ...with no fixed point


def test_cli_writes_json_plot_and_overlays(setup, tmp_path, capsys):
    data, ckpt, _ = setup
    out_json, plot, overlays = tmp_path / "r.json", tmp_path / "bars.png", tmp_path / "ov"
    rc = main(["eval", "--checkpoint", str(ckpt), "--data", str(data), "--split", "unseen",
               "--batch-size", "2", "--device", "cpu", "--json", str(out_json), "--plot",
               str(plot), "--save-overlays", str(overlays), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| **overall** |" in printed and "mIoU_f" in printed
    payload = json.loads(out_json.read_text())
    n = payload["overall"]["num_samples"]
    assert n == len((data / "unseen.csv").read_text().splitlines()) - 1
    img = cv2.imread(str(plot))
    assert img is not None and img.shape[0] > 50 and (img < 250).any()
    files = sorted(overlays.glob("*.png"))
    assert len(files) == n
    panel = cv2.imread(str(files[0]))
    size = load_config("tiny").model.image_size
    assert panel.shape == (size, 3 * size, 3)


def test_a_captured_log_gets_no_progress_bar(setup, capsys):
    """Output that is no terminal (a log, CI, a pipe) gets the table without the bar's
    carriage returns: the bar once shared the table's first line there."""
    data, ckpt, _ = setup
    assert main(["eval", "--checkpoint", str(ckpt), "--data", str(data), "--split", "unseen",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err and "eval" not in captured.err
    assert "| **overall** |" in captured.out


def test_cli_errors_are_one_line(setup, tmp_path, capsys):
    data, ckpt, _ = setup
    assert main(["eval", "--checkpoint", str(tmp_path / "none.safetensors"), "--data",
                 str(data)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(ckpt), "--data", str(data), "--split", "nope",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.csv" in err and len(err.splitlines()) == 1


def test_overlay_and_bar_plot_units(tmp_path: Path):
    import numpy as np

    from avag_core.evaluation.report import bar_plot, format_table, overlay

    img = np.zeros((10, 10, 3), np.uint8)
    prob = np.zeros((8, 8), np.float32)
    prob[2:4, 2:4] = 0.9
    gt = np.zeros((8, 8), np.float32)
    panel = overlay(img, prob, prob, gt, gt)
    assert panel.shape == (8, 24, 3)
    assert panel[3, 8 + 3].any() and not panel[3, 16 + 3].any()  # prediction drawn, truth empty
    cats = {"a/x": {"miou_function": 0.5, "miou_dependency": float("nan"), "fscore_function": 0.6,
                    "fscore_dependency": float("nan"), "num_samples": 2, "num_dependency": 0}}
    bar_plot(cats, tmp_path / "p.png", title="t")
    assert cv2.imread(str(tmp_path / "p.png")) is not None
    table = format_table(cats["a/x"], cats)
    assert "| a/x | 2 | 0 | 50.00 | 60.00 | - | - |" in table


def test_cli_skip_bad_scores_the_rest_and_lists_skipped_rows(setup, tmp_path, capsys):
    data, ckpt, _ = setup
    rows = (data / "val_small.csv").read_text().splitlines()
    first = rows[1].split(",")
    broken = ",".join(["nowhere/gone.png", *first[1:]])
    (data / "val_bad.csv").write_text("\n".join([rows[0], rows[1], broken, rows[2]]) + "\n")
    args = ["eval", "--checkpoint", str(ckpt), "--data", str(data), "--split", "val_bad",
            "--device", "cpu", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "val_bad.csv line 3: missing image file" in err and len(err.splitlines()) == 1
    out_json = tmp_path / "r.json"
    assert main([*args, "--skip-bad", "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert "val_bad.csv line 3: missing image file" in captured.err
    assert "skipped 1 bad row(s)" in captured.out
    payload = json.loads(out_json.read_text())
    assert payload["overall"]["num_samples"] == 2
    assert [r["line"] for r in payload["skipped_rows"]] == [3]


def test_eval_reports_what_was_heard_when_the_checkpoint_has_an_action_head(tmp_path, shipped_checkpoint,
                                                                             tiny_checkpoint):
    """The shipped checkpoint has an action head beside it: `avag eval` adds top-1,
    confusion matrix and ECE (with reliability bins); a checkpoint without one adds nothing."""
    import json
    import subprocess
    import sys

    from avag_core.data.synth import generate

    from conftest import REPO_ROOT

    data = generate(tmp_path / "synth", seed=2, size="tiny")

    def run(ckpt, name):
        out = tmp_path / name
        res = subprocess.run([sys.executable, "-m", "avag_core.cli.main", "eval", "--checkpoint", str(ckpt),
                              "--data", str(data), "--split", "val", "--json", str(out), "--no-progress"],
                             capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
        assert res.returncode == 0, res.stderr
        return json.loads(out.read_text()), res.stdout

    payload, stdout = run(shipped_checkpoint, "shipped.json")
    a = payload["actions"]
    n = len(payload["per_sample"])
    assert a["n"] + a["unknown_affordances"] == n and a["n"] > 0
    assert 0.0 <= a["top1"] <= 1.0 and 0.0 <= a["ece"] <= 1.0
    confusion = a["confusion"]
    assert sum(map(sum, confusion)) == a["n"] and len(confusion) == len(confusion[0])
    assert "what was heard" in stdout and "top-1" in stdout
    plain, stdout = run(tiny_checkpoint, "tiny.json")
    assert "actions" not in plain and "what was heard" not in stdout
