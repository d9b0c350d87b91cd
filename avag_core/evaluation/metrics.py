"""Per-image segmentation metrics as the audio-visual segmentation literature reports them.

* mIoU: ``|P & G| / |P | G|`` with ``P = sigmoid(logit) > 0.5``; when ``G`` is empty the
  score is the fraction of pixels correctly predicted as background.
* F-score: precision and recall of ``prob >= t`` for 255 thresholds evenly spaced in
  ``[0, 1)``, ``F = (1 + b2) P R / (b2 P + R)`` with ``b2 = 0.3``, NaN -> 0, maximum over
  thresholds; undefined (NaN here, skipped by the mean) when ``G`` is empty.

Everything is computed per image, so results do not depend on batching; aggregation
(:func:`summarize`) is a plain mean over the per-image values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

BETA2 = 0.3
NUM_THRESHOLDS = 255
_EPS = 1e-20


def thresholds(num: int = NUM_THRESHOLDS) -> torch.Tensor:
    """``num`` thresholds evenly spaced in [0, 1) (last one just below 1)."""
    return torch.linspace(0.0, 1.0 - 1e-10, num, dtype=torch.float64)


def iou_per_image(prob: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """IoU of ``prob > threshold`` against binary ``gt``; both [N,H,W] (or [N,1,H,W])."""
    pred = (prob.flatten(1) > threshold).to(torch.float64)
    target = (gt.flatten(1) > 0.5).to(torch.float64)
    inter = (pred * target).sum(1)
    union = ((pred + target) > 0).to(torch.float64).sum(1)
    g_sum = target.sum(1)
    background = (pred == 0).to(torch.float64).mean(1)
    iou = inter / union.clamp_min(1.0)
    return torch.where(g_sum > 0, iou, background)


def fscore_per_image(
    prob: torch.Tensor, gt: torch.Tensor, beta2: float = BETA2, num: int = NUM_THRESHOLDS
) -> torch.Tensor:
    """Maximum F-beta over ``num`` thresholds per image; NaN where ``gt`` is empty."""
    p = prob.flatten(1).to(torch.float64)
    target = gt.flatten(1) > 0.5
    th = thresholds(num).to(p.device)
    out = torch.full((p.shape[0],), float("nan"), dtype=torch.float64, device=p.device)
    for i in range(p.shape[0]):
        n_pos = int(target[i].sum())
        if n_pos == 0:
            continue
        all_sorted = torch.sort(p[i]).values
        pos_sorted = torch.sort(p[i][target[i]]).values
        # count of values >= t == total - count of values < t
        n_pred = all_sorted.numel() - torch.searchsorted(all_sorted, th, right=False)
        tp = pos_sorted.numel() - torch.searchsorted(pos_sorted, th, right=False)
        tp = tp.to(torch.float64)
        precision = tp / (n_pred.to(torch.float64) + _EPS)
        recall = tp / (n_pos + _EPS)
        f = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        f = torch.nan_to_num(f, nan=0.0)
        out[i] = f.max()
    return out


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def sample_records(
    prob_func: torch.Tensor,
    prob_dep: torch.Tensor,
    gt_func: torch.Tensor,
    gt_dep: torch.Tensor,
) -> list[dict[str, float]]:
    """Per-image metric record for a batch (probabilities and masks at the same size)."""
    iou_f = iou_per_image(prob_func, gt_func)
    f_f = fscore_per_image(prob_func, gt_func)
    iou_d = iou_per_image(prob_dep, gt_dep)
    f_d = fscore_per_image(prob_dep, gt_dep)
    dep_nonempty = gt_dep.flatten(1).gt(0.5).any(1)
    records = []
    for i in range(iou_f.shape[0]):
        has_dep = bool(dep_nonempty[i])
        records.append(
            {
                "miou_function": float(iou_f[i]),
                "fscore_function": float(f_f[i]),
                # dependency metrics only count where the dependency mask is not empty
                "miou_dependency": float(iou_d[i]) if has_dep else float("nan"),
                "fscore_dependency": float(f_d[i]) if has_dep else float("nan"),
                "has_dependency": has_dep,
            }
        )
    return records


METRIC_KEYS = ("miou_function", "fscore_function", "miou_dependency", "fscore_dependency")


def summarize(records: Sequence[dict]) -> dict[str, float]:
    """Mean of every metric over the images where it is defined, plus the counts used."""
    out: dict[str, float] = {k: _mean(r[k] for r in records) for k in METRIC_KEYS}
    out["num_samples"] = len(records)
    out["num_dependency"] = sum(1 for r in records if r.get("has_dependency"))
    return out


def summarize_by_category(records: Sequence[dict]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(str(r.get("category", "?")), []).append(r)
    return {k: summarize(v) for k, v in sorted(groups.items())}
