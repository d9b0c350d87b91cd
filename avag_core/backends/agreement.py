"""How far a backend/dtype is from PyTorch fp32: the one definition used by the dtype
probe, the tests and the benchmark (so "within tolerance" means the same everywhere)."""

from __future__ import annotations

import torch

# A faster path is accepted when its masks (sigmoid > 0.5) overlap fp32's masks with IoU
# >= MIN_IOU and no pixel's probability moves by more than MAX_PROB_DIFF.
MIN_IOU = 0.99
MAX_PROB_DIFF = 0.05


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two boolean masks; two empty masks agree perfectly (1.0)."""
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def compare(
    ref: tuple[torch.Tensor, torch.Tensor], got: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, float]:
    """Logit pairs (function, dependency) -> max logit/probability difference, worst mask IoU."""
    out = {"max_logit_diff": 0.0, "max_prob_diff": 0.0, "min_iou": 1.0}
    for r, g in zip(ref, got, strict=True):
        r, g = r.detach().float().cpu(), g.detach().float().cpu()
        out["max_logit_diff"] = max(out["max_logit_diff"], (r - g).abs().max().item())
        out["max_prob_diff"] = max(out["max_prob_diff"], (r.sigmoid() - g.sigmoid()).abs().max().item())
        out["min_iou"] = min(out["min_iou"], mask_iou(r > 0, g > 0))
    return out


def within_tolerance(stats: dict[str, float]) -> bool:
    return stats["min_iou"] >= MIN_IOU and stats["max_prob_diff"] <= MAX_PROB_DIFF
