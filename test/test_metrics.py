"""Metric protocol checked against hand-computed cases and a brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch

from avag_core.evaluation.metrics import (
    fscore_per_image,
    iou_per_image,
    sample_records,
    summarize,
    summarize_by_category,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)[None]


def test_iou_hand_computed():
    prob = t([[0.9, 0.2], [0.7, 0.1]])
    gt = t([[1, 1], [0, 0]])
    # P = {(0,0),(1,0)}, G = {(0,0),(0,1)}: |P&G| = 1, |P|G| = 3
    assert iou_per_image(prob, gt).item() == pytest.approx(1 / 3)


def test_iou_threshold_is_strict():
    prob = t([[0.5, 0.51]])
    gt = t([[1, 1]])
    assert iou_per_image(prob, gt).item() == pytest.approx(0.5)


def test_iou_empty_ground_truth_is_background_accuracy():
    prob = t([[0.9, 0.2], [0.3, 0.1]])
    gt = t([[0, 0], [0, 0]])
    assert iou_per_image(prob, gt).item() == pytest.approx(3 / 4)
    assert iou_per_image(torch.zeros(1, 2, 2), gt).item() == pytest.approx(1.0)


def test_iou_prediction_empty_with_nonempty_truth_is_zero():
    assert iou_per_image(torch.zeros(1, 3, 3), torch.ones(1, 3, 3)).item() == 0.0


def test_fscore_hand_computed():
    prob = t([[0.9, 0.6, 0.4, 0.1]])
    gt = t([[1, 0, 1, 0]])
    # best threshold in (0.6, 0.9]: precision 1, recall 0.5 -> 1.3*0.5/(0.3+0.5)
    assert fscore_per_image(prob, gt).item() == pytest.approx(0.8125)


def test_fscore_perfect_and_empty():
    gt = t([[1, 0], [0, 1]])
    assert fscore_per_image(gt * 0.8 + 0.1, gt).item() == pytest.approx(1.0)
    assert math.isnan(fscore_per_image(t([[0.9, 0.1]]), t([[0, 0]])).item())
    # nothing ever predicted positive except at t=0: F at t=0 is all-positive precision
    all_low = fscore_per_image(torch.zeros(1, 2, 2), gt).item()
    assert all_low == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1.0))


def _brute_force_fscore(prob: torch.Tensor, gt: torch.Tensor) -> float:
    best = 0.0
    g = gt.flatten() > 0.5
    for th in torch.linspace(0, 1 - 1e-10, 255, dtype=torch.float64).tolist():
        pred = prob.flatten().double() >= th
        tp = float((pred & g).sum())
        prec = tp / (float(pred.sum()) + 1e-20)
        rec = tp / (float(g.sum()) + 1e-20)
        f = 1.3 * prec * rec / (0.3 * prec + rec) if (0.3 * prec + rec) > 0 else 0.0
        best = max(best, f)
    return best


def test_fscore_matches_brute_force_reference():
    g = torch.Generator().manual_seed(3)
    prob = torch.rand(4, 12, 12, generator=g)
    gt = (torch.rand(4, 12, 12, generator=g) < 0.3).float()
    ours = fscore_per_image(prob, gt)
    for i in range(4):
        assert ours[i].item() == pytest.approx(_brute_force_fscore(prob[i], gt[i]), abs=1e-9)


def test_records_and_summary_count_dependency_only_when_nonempty():
    prob_f = torch.stack([t([[0.9, 0.1]])[0], t([[0.9, 0.9]])[0]])[:, None]
    gt_f = torch.stack([t([[1, 0]])[0], t([[1, 0]])[0]])[:, None]
    prob_d = torch.stack([t([[0.9, 0.1]])[0], t([[0.9, 0.1]])[0]])[:, None]
    gt_d = torch.stack([t([[0, 0]])[0], t([[1, 1]])[0]])[:, None]
    recs = sample_records(prob_f, prob_d, gt_f, gt_d)
    assert [r["has_dependency"] for r in recs] == [False, True]
    s = summarize(recs)
    assert s["num_samples"] == 2 and s["num_dependency"] == 1
    assert s["miou_function"] == pytest.approx((1.0 + 0.5) / 2)
    assert s["miou_dependency"] == pytest.approx(0.5)  # the empty one is not counted
    assert s["fscore_dependency"] == pytest.approx(1.0)  # t <= 0.1 predicts both pixels


def test_function_mIoU_includes_empty_function_masks():
    prob = torch.tensor([[[[0.9, 0.1, 0.1, 0.1]]], [[[0.9, 0.9, 0.1, 0.1]]]])
    gt = torch.tensor([[[[0.0, 0, 0, 0]]], [[[1.0, 1, 0, 0]]]])
    recs = sample_records(prob, prob, gt, gt)
    s = summarize(recs)
    assert s["miou_function"] == pytest.approx((0.75 + 1.0) / 2)
    assert s["fscore_function"] == pytest.approx(1.0)  # the empty mask is skipped for F


def test_batching_does_not_change_records():
    g = torch.Generator().manual_seed(0)
    prob = torch.rand(5, 1, 8, 8, generator=g)
    gt = (torch.rand(5, 1, 8, 8, generator=g) < 0.2).float()
    gt[2] = 0
    whole = sample_records(prob, prob, gt, gt)
    parts = sample_records(prob[:2], prob[:2], gt[:2], gt[:2]) + sample_records(
        prob[2:], prob[2:], gt[2:], gt[2:]
    )
    assert summarize(whole) == summarize(parts)


def test_summary_by_category():
    recs = [
        {"miou_function": 1.0, "fscore_function": 1.0, "miou_dependency": float("nan"),
         "fscore_dependency": float("nan"), "has_dependency": False, "category": "a/x"},
        {"miou_function": 0.0, "fscore_function": 0.5, "miou_dependency": 0.4,
         "fscore_dependency": 0.6, "has_dependency": True, "category": "b/y"},
    ]
    cats = summarize_by_category(recs)
    assert list(cats) == ["a/x", "b/y"]
    assert math.isnan(cats["a/x"]["miou_dependency"])
    assert cats["b/y"]["miou_dependency"] == pytest.approx(0.4)
