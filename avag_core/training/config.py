"""Optimisation, schedule, loss and logging settings (owned by the training package).

Defaults follow the reference recipe (AdamW, Dice 0.4 + focal 0.6 per head, background BCE
0.2 for empty dependency masks, auxiliary weight 0.1, backbone unfrozen at epoch 10);
presets override what a smaller model or machine needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from avag_core.settings import setting

_METRICS = ("miou_function", "fscore_function", "miou_dependency", "fscore_dependency")


@dataclass
class TrainConfig:
    """Everything ``avag train`` needs besides the model and the data."""

    # start
    init_from: str = setting(
        "", "model checkpoint (.safetensors) whose weights start this run (fine-tuning); "
        "'' = pretrained files / random init. Ignored when resuming"
    )
    # schedule
    epochs: int = setting(25, "training epochs", lo=1, hi=100000)
    batch_size: int = setting(8, "samples per step and process", lo=1, hi=65536)
    lr: float = setting(2e-5, "peak learning rate (AdamW)", lo=0.0, hi=10.0)
    weight_decay: float = setting(0.01, "AdamW weight decay", lo=0.0, hi=10.0)
    betas: tuple[float, float] = setting((0.9, 0.999), "AdamW betas")
    warmup_steps: int = setting(100, "linear warm-up steps", lo=0, hi=10_000_000)
    min_lr_ratio: float = setting(0.01, "cosine decays to lr * min_lr_ratio", lo=0.0, hi=1.0)
    backbone_lr_scale: float = setting(
        1.0, "backbone lr = lr * scale once unfrozen", lo=0.0, hi=100.0
    )
    unfreeze_backbone_epoch: int = setting(
        10, "epoch from which a frozen backbone trains (-1: never, 0: from the start)",
        lo=-1, hi=100000,
    )
    max_steps: int = setting(
        0, ">0: stop after this many optimiser steps (also caps the schedule)", lo=0,
        hi=10_000_000_000,
    )
    time_budget_s: float = setting(
        0.0, ">0: stop (with a checkpoint) after this wall-clock time", lo=0.0, hi=1e9
    )
    # losses
    dice_weight: float = setting(0.4, "Dice loss weight", lo=0.0, hi=100.0)
    focal_weight: float = setting(0.6, "focal loss weight", lo=0.0, hi=100.0)
    focal_alpha: float = setting(0.25, "focal loss alpha", lo=0.0, hi=1.0)
    focal_gamma: float = setting(2.0, "focal loss gamma", lo=0.0, hi=10.0)
    dependency_weight: float = setting(1.0, "weight of the dependency head's losses", lo=0.0,
                                       hi=100.0)  # fmt: skip
    empty_dependency_bce_weight: float = setting(
        0.2, "background BCE weight when the dependency mask is empty", lo=0.0, hi=100.0
    )
    aux_weight: float = setting(0.1, "weight of the auxiliary query-map losses", lo=0.0,
                                hi=100.0)  # fmt: skip
    # numerics
    amp: bool = setting(True, "mixed precision (only ever active on CUDA)")
    amp_dtype: str = setting("float16", "autocast dtype (float16 uses a grad scaler)",
                             choices=("float16", "bfloat16"))  # fmt: skip
    deterministic: bool = setting(
        False, "deterministic kernels only (torch.use_deterministic_algorithms): a run and a "
        "killed-and-resumed run repeat bit for bit on CUDA too, at some GPU speed; CPU runs "
        "repeat either way"
    )
    grad_clip: float = setting(1.0, "max global grad norm; 0 disables", lo=0.0, hi=1e6)
    seed: int = setting(0, "random seed", lo=0, hi=2**63 - 1)
    num_workers: int = setting(2, "DataLoader worker processes", lo=0, hi=256)
    threads: int = setting(0, ">0: torch.set_num_threads on CPU", lo=0, hi=1024)
    ddp_find_unused_parameters: bool = setting(
        True, "DDP looks for parameters without gradients (frozen parts, unused heads)"
    )
    # logging and checkpoints
    log_interval: int = setting(10, "steps between CSV/TensorBoard scalars", lo=1, hi=10_000_000)
    ckpt_interval: int = setting(
        200, "steps between resumable checkpoints (0: epoch ends only)", lo=0, hi=10_000_000
    )
    val_interval: int = setting(1, "epochs between validations (0: never)", lo=0, hi=100000)
    val_split: str = setting("val", "validation CSV name without .csv")
    best_metric: str = setting("miou_function", "validation metric that picks best.safetensors",
                               choices=_METRICS)  # fmt: skip
