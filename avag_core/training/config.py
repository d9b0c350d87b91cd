"""Optimisation, schedule, loss and logging settings (owned by the training package).

Defaults follow the reference recipe (AdamW, Dice 0.4 + focal 0.6 per head, background BCE
0.2 for empty dependency masks, auxiliary weight 0.1, backbone unfrozen at epoch 10);
presets override what a smaller model or machine needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """Everything ``avag train`` needs besides the model and the data."""

    # schedule
    epochs: int = 25
    batch_size: int = 8  # per process
    lr: float = 2e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01  # cosine decays to lr * min_lr_ratio
    backbone_lr_scale: float = 1.0  # backbone lr = lr * scale once unfrozen
    unfreeze_backbone_epoch: int = 10  # -1: never; 0: trainable from the start
    max_steps: int = 0  # >0: stop after this many optimiser steps (also caps the schedule)
    time_budget_s: float = 0.0  # >0: stop (with a checkpoint) after this wall-clock time
    # losses
    dice_weight: float = 0.4
    focal_weight: float = 0.6
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    dependency_weight: float = 1.0
    empty_dependency_bce_weight: float = 0.2
    aux_weight: float = 0.1
    # numerics
    amp: bool = True  # only ever active on CUDA
    amp_dtype: str = "float16"  # float16 (with a grad scaler) or bfloat16
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    seed: int = 0
    num_workers: int = 2
    threads: int = 0  # >0: torch.set_num_threads on CPU
    ddp_find_unused_parameters: bool = True
    # logging and checkpoints
    log_interval: int = 10  # steps between CSV/TensorBoard scalars
    ckpt_interval: int = 200  # steps between resumable checkpoints (0: epoch ends only)
    val_interval: int = 1  # epochs between validations (0: never)
    val_split: str = "val"
    best_metric: str = "miou_function"
