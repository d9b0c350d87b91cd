"""`avag train --init-from CKPT [--freeze backbone|audio]`: a new run starts from a model
checkpoint's weights (its architecture, fresh optimiser); frozen parts stay unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from train_data import make_tiny_dataset

from avag_core.cli.main import main
from avag_core.config import load_config
from avag_core.errors import AvagError
from avag_core.modeling import build_model
from avag_core.training.finetune import finetune_config
from avag_core.weights.checkpoint import save_model_checkpoint


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("synth") / "data", n_train=4, n_val=2)


@pytest.fixture(scope="module")
def start_ckpt(tmp_path_factory) -> Path:
    """A tiny checkpoint whose weights differ from what `train.seed: 0` would initialise."""
    torch.manual_seed(1234)
    cfg = load_config("tiny", ["model.image_size=96"])
    path = tmp_path_factory.mktemp("start") / "start.safetensors"
    return save_model_checkpoint(path, build_model(cfg.model), cfg)


def _train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "avag_core.cli.main", "train", "--config", "tiny",
           "--data", str(data), "--out", str(out), "--train-csv", "train_small.csv",
           "--val-csv", "val_small.csv", "--no-progress", "--device", "cpu",
           "--set", "data.cache_dir=", "--set", "train.max_steps=2",
           "--set", "train.threads=1", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_config_takes_the_checkpoints_model_and_the_users_overrides(start_ckpt):
    cfg = finetune_config(load_config("realtime"), start_ckpt, ["model.dropout=0.0"], ["audio"])
    tiny = load_config("tiny").model
    assert cfg.model.backbone == tiny.backbone and cfg.model.num_queries == tiny.num_queries
    assert cfg.model.image_size == 96  # from the checkpoint, not the tiny preset's 64
    assert cfg.model.dropout == 0.0 and cfg.model.freeze_audio_encoder
    assert cfg.train.lr == load_config("realtime").train.lr  # schedule from --config
    assert cfg.train.init_from == str(start_ckpt)
    with pytest.raises(AvagError, match="--freeze 'head'"):
        finetune_config(load_config("tiny"), start_ckpt, None, ["head"])


def test_init_from_with_frozen_backbone_and_audio_trains_only_the_head(tiny_data, start_ckpt,
                                                                      tmp_path):  # fmt: skip
    out = tmp_path / "ft"
    res = _train(tiny_data, out, "--init-from", str(start_ckpt),
                 "--freeze", "backbone", "--freeze", "audio")  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "backbone frozen, audio encoder frozen, head trains" in res.stdout
    start, end = load_file(str(start_ckpt)), load_file(str(out / "last.safetensors"))
    assert start.keys() == end.keys()
    frozen = [k for k in start if k.startswith(("backbone.", "audio_encoder."))
              and start[k].is_floating_point()]  # fmt: skip
    head = [k for k in start if not k.startswith(("backbone.", "audio_encoder."))]
    assert frozen and head
    for k in frozen:
        assert torch.equal(start[k], end[k]), k
    assert any(not torch.equal(start[k], end[k]) for k in head)
    # the run started from the checkpoint: untouched tensors equal it, not a fresh init
    torch.manual_seed(0)
    fresh = build_model(load_config("tiny").model).state_dict()
    assert any(not torch.equal(fresh[k], end[k]) for k in frozen)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["init_from"] == str(start_ckpt)
    assert saved["train"]["unfreeze_backbone_epoch"] == -1 and saved["model"]["image_size"] == 96


def test_shipped_checkpoint_fine_tunes_and_resume_points_to_init_from(tiny_data, tmp_path,
                                                                      shipped_checkpoint,
                                                                      capsys):  # fmt: skip
    out = tmp_path / "shipped"
    res = _train(tiny_data, out, "--init-from", str(shipped_checkpoint), "--freeze", "backbone")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "last.safetensors").is_file()
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["backbone"] == \
        "mobilenetv3_large_100"
    # --resume with a model checkpoint explains what to use instead, in one line
    rc = main(["train", "--config", "tiny", "--data", str(tiny_data), "--out", str(tmp_path / "r"),
               "--resume", str(shipped_checkpoint)])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a model checkpoint" in err and "--init-from" in err


def test_init_from_a_mismatching_model_is_one_line(tiny_data, start_ckpt, tmp_path):
    res = _train(tiny_data, tmp_path / "bad", "--init-from", str(start_ckpt),
                 "--set", "model.num_queries=7")  # fmt: skip
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "does not match the model" in err[0] and "start.safetensors" in err[0]
