"""AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``."""

from __future__ import annotations

import math

import torch

from avag_core.training.config import TrainConfig


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the base lr after ``step`` optimiser steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """No weight decay on biases and norm weights; backbone lr scaled.

    Every parameter is in the optimiser from the start (frozen ones simply have no grad),
    so unfreezing later or resuming needs no optimiser surgery.
    """
    backbone_ids = set()
    backbone = getattr(model, "backbone_parameters", None)
    if callable(backbone):
        backbone_ids = {id(p) for p in backbone()}
    else:  # fall back to the conventional attribute name
        sub = getattr(model, "backbone", None)
        if isinstance(sub, torch.nn.Module):
            backbone_ids = {id(p) for p in sub.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        no_decay = p.ndim <= 1 or name.endswith(".bias")
        groups.setdefault((id(p) in backbone_ids, no_decay), []).append(p)
    out = []
    for (is_backbone, no_decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                "lr": cfg.lr * (cfg.backbone_lr_scale if is_backbone else 1.0),
            }
        )
    return out


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, total_steps, cfg.warmup_steps, cfg.min_lr_ratio),
    )
