"""Losses, schedule, sampler and checkpoint state: the parts of training without a model."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from avag_core.training.config import TrainConfig
from avag_core.training.losses import compute_losses, dice_loss, empty_background_bce, focal_loss
from avag_core.training.sampler import ResumableSampler
from avag_core.training.schedule import build_optimizer, build_scheduler, lr_factor
from avag_core.training.state import (
    atomic_torch_save,
    capture_rng,
    load_training_state,
    restore_rng,
)


def test_dice_and_focal_reward_correct_masks():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6, 2:6] = 1
    good = (target * 2 - 1) * 8
    bad = -good
    assert dice_loss(good, target).max() < 0.01
    assert dice_loss(bad, target).min() > 0.9
    assert (focal_loss(good, target) < focal_loss(bad, target)).all()
    # focal with gamma 0 and alpha < 0 is plain BCE
    bce = torch.nn.functional.binary_cross_entropy_with_logits(bad, target, reduction="none")
    assert torch.allclose(focal_loss(bad, target, alpha=-1, gamma=0), bce.flatten(1).mean(1))


def test_background_bce_only_for_empty_masks():
    target = torch.zeros(2, 1, 4, 4)
    target[1, 0, 0, 0] = 1
    logits = torch.zeros(2, 1, 4, 4)
    out = empty_background_bce(logits, target)
    assert out[0].item() == pytest.approx(np.log(2))
    assert out[1].item() == 0.0


def test_compute_losses_weights_and_aux_resolution():
    cfg = TrainConfig()
    gt = torch.zeros(2, 1, 16, 16)
    gt[:, :, 4:12, 4:12] = 1
    dep = torch.zeros(2, 1, 16, 16)
    logits = torch.randn(2, 1, 16, 16, requires_grad=True)
    outputs = {"function": logits, "dependency": logits, "function_aux": torch.randn(2, 1, 4, 4),
               "dependency_aux": torch.randn(2, 1, 4, 4)}
    terms = compute_losses(outputs, gt, dep, cfg)
    expect = (terms["function"] + terms["dependency"] + 0.2 * terms["dependency_empty_bce"]
              + 0.1 * terms["aux"])
    assert torch.allclose(terms["total"], expect)
    assert terms["dependency_empty_bce"] > 0
    terms["total"].backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_warmup_then_cosine():
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 100, 10, 0.1) == pytest.approx(0.1)


def test_optimizer_groups_and_scheduler_state_round_trip():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    cfg = TrainConfig(lr=1e-3, warmup_steps=2, weight_decay=0.05)
    opt = build_optimizer(model, cfg)
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    assert decays == [0.0, 0.05]
    sched = build_scheduler(opt, cfg, total_steps=10)
    for _ in range(3):
        opt.step()
        sched.step()
    sd = sched.state_dict()
    opt2 = build_optimizer(model, cfg)
    sched2 = build_scheduler(opt2, cfg, total_steps=10)
    sched2.load_state_dict(sd)
    assert sched2.last_epoch == 3
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_sampler_covers_every_sample_and_resumes_mid_epoch():
    full = ResumableSampler(10, True, seed=5)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == list(range(10))
    again = ResumableSampler(10, True, seed=5)
    again.set_epoch(2, start=4)
    assert list(again) == order[4:]
    other_epoch = ResumableSampler(10, True, seed=5)
    other_epoch.set_epoch(3)
    assert list(other_epoch) != order
    ranks = [ResumableSampler(7, True, seed=1, rank=r, world_size=3) for r in range(3)]
    shares = [list(s) for s in ranks]
    assert all(len(s) == 3 for s in shares)  # padded to 9
    assert {i for s in shares for i in s} == set(range(7))


def test_rng_states_round_trip_through_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = {"format": 1, "rng": capture_rng()}
    atomic_torch_save(state, tmp_path / "c.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng(load_training_state(tmp_path / "c.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left


def test_bad_resume_file_is_a_clear_error(tmp_path):
    from avag_core.errors import AvagError

    with pytest.raises(AvagError, match="does not exist"):
        load_training_state(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AvagError, match="cannot be read"):
        load_training_state(tmp_path / "junk.pt")


def test_backbone_freeze_follows_the_epoch():
    from avag_core.training.trainer import backbone_trainable

    assert [backbone_trainable(e, 2) for e in range(4)] == [False, False, True, True]
    assert not any(backbone_trainable(e, -1) for e in range(4))
    assert all(backbone_trainable(e, 5, frozen_at_start=False) for e in range(4))


def test_train_cli_reports_bad_input(tmp_path, capsys):
    from avag_core.cli.main import main

    assert main(["train", "--config", "tiny", "--data", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    assert "train.csv does not exist" in capsys.readouterr().err
    assert main(["train", "--config", "tiny", "--data", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--resume"]) == 2
    assert "checkpoint.pt does not exist" in capsys.readouterr().err
