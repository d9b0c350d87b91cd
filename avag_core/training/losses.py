"""Training losses: Dice + sigmoid focal per head, background BCE for empty dependency
masks, and the same terms (down-weighted) on the auxiliary mean-query maps.

All terms are means over the samples of a batch (each sample weighted equally), so the
loss scale does not depend on the image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avag_core.training.config import TrainConfig


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-sample soft Dice loss, [B]."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    return 1.0 - (2.0 * inter + smooth) / (p.sum(1) + t.sum(1) + smooth)


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Per-sample sigmoid focal loss (mean over pixels), [B]."""
    logits = logits.flatten(1)
    t = target.flatten(1)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p = logits.sigmoid()
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean(1)


def _fit(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bring logits to the target's resolution (bilinear), in float32 for stable losses."""
    logits = logits.float()
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def mask_loss(logits: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Dice + focal per sample, [B]."""
    logits = _fit(logits, target)
    return cfg.dice_weight * dice_loss(logits, target) + cfg.focal_weight * focal_loss(
        logits, target, cfg.focal_alpha, cfg.focal_gamma
    )


def empty_background_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE towards background for samples whose mask is empty (0 elsewhere), [B]."""
    logits = _fit(logits, target)
    empty = (target.flatten(1).sum(1) == 0).float()
    bce = F.binary_cross_entropy_with_logits(
        logits.flatten(1), torch.zeros_like(logits.flatten(1)), reduction="none"
    ).mean(1)
    return bce * empty


def compute_losses(
    outputs: dict[str, torch.Tensor],
    mask_func: torch.Tensor,
    mask_dep: torch.Tensor,
    cfg: TrainConfig,
) -> dict[str, torch.Tensor]:
    """All loss terms (scalars) and their weighted ``total``."""
    mask_func = mask_func.float()
    mask_dep = mask_dep.float()
    terms: dict[str, torch.Tensor] = {}
    terms["function"] = mask_loss(outputs["function"], mask_func, cfg).mean()
    terms["dependency"] = mask_loss(outputs["dependency"], mask_dep, cfg).mean()
    terms["dependency_empty_bce"] = empty_background_bce(outputs["dependency"], mask_dep).mean()
    aux = torch.zeros((), device=mask_func.device)
    if "function_aux" in outputs:
        aux = aux + mask_loss(outputs["function_aux"], mask_func, cfg).mean()
    if "dependency_aux" in outputs:
        aux = aux + cfg.dependency_weight * mask_loss(outputs["dependency_aux"], mask_dep, cfg).mean()
    terms["aux"] = aux
    terms["total"] = (
        terms["function"]
        + cfg.dependency_weight * terms["dependency"]
        + cfg.empty_dependency_bce_weight * terms["dependency_empty_bce"]
        + cfg.aux_weight * aux
    )
    return terms
