"""A training run killed (SIGKILL) mid-epoch and resumed ends with exactly the weights of
an uninterrupted run: sample order, augmentation RNG, optimiser, schedule all continue. On
CUDA too (mixed precision with its grad scaler, deterministic kernels; skipped without a
CUDA device)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_data import make_tiny_dataset, tiny_train_cmd, train_env

from avag_core.config import load_config
from avag_core.modeling import build_model
from avag_core.training.state import seed_everything
from avag_core.training.trainer import PAUSE_ENV, STATE_FILE


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("synth") / "data", n_train=6, n_val=3)


def _cmd(data: Path, out: Path, device: str, resume: bool = False) -> list[str]:
    # frozen backbone in epoch 0, trainable from epoch 1: the kill lands while frozen
    gpu = ("--set", "train.deterministic=true") if device == "cuda" else ()
    return tiny_train_cmd(data, out, "--set", "model.freeze_backbone=true",
                          "--set", "train.unfreeze_backbone_epoch=1", *gpu, resume=resume, device=device)


def _env(**extra: str) -> dict[str, str]:
    return train_env(PAUSE_ENV, **extra)


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)"))])
def test_kill_mid_epoch_and_resume_matches_uninterrupted(tiny_data, tmp_path, device):
    full = tmp_path / "full"
    killed = tmp_path / "killed"
    # The victim pauses after every checkpoint so the kill lands at a known step.
    victim = subprocess.Popen(_cmd(tiny_data, killed, device), env=_env(**{PAUSE_ENV: "120"}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ref = subprocess.run(_cmd(tiny_data, full, device), env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    deadline = time.monotonic() + 240
    while not (killed / STATE_FILE).exists():
        assert victim.poll() is None, victim.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / "last.safetensors").exists()  # it really died before the end

    state = torch.load(killed / STATE_FILE, weights_only=True, map_location="cpu")
    assert (state["epoch"], state["batches_done"], state["step"]) == (0, 2, 2)  # mid-epoch 0

    res = subprocess.run(_cmd(tiny_data, killed, device, resume=True), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    a = load_file(str(full / "last.safetensors"))
    b = load_file(str(killed / "last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    end = torch.load(full / STATE_FILE, weights_only=True, map_location="cpu")
    assert end["step"] == 6 and end["epoch"] == 2
    # backbone: untouched while frozen (epoch 0, before the kill), trained after unfreezing
    seed_everything(0)
    init = build_model(load_config("tiny").model).state_dict()
    backbone = [k for k in a if k.startswith("backbone.") and init[k].is_floating_point()]
    head = [k for k in a if not k.startswith("backbone.")]
    assert backbone and head
    assert all(torch.equal(state["model"][k], init[k]) for k in backbone)
    assert any(not torch.equal(b[k], init[k]) for k in backbone)
    assert any(not torch.equal(state["model"][k], init[k]) for k in head)
    # logs continue across the kill: validation rows equal, one per epoch
    assert (full / "val_log.csv").read_text() == (killed / "val_log.csv").read_text()
    train_steps = [int(line.split(",")[0]) for line in
                   (killed / "train_log.csv").read_text().splitlines()[1:]]
    assert train_steps == list(range(1, 7))
