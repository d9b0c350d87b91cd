"""Fine-tuning: start a new run from a model checkpoint's weights (not its optimiser).

The checkpoint decides the architecture (its weights only fit that model), so the run's
``model`` section is the checkpoint's, with the pretrained-file settings cleared (the
weights come from the checkpoint) and the user's own ``--set model.*`` overrides applied
on top; schedule, data and losses come from ``--config`` as for any run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avag_core.config import AvagConfig, config_from_dict, merge, parse_overrides, to_dict
from avag_core.errors import AvagError

FREEZE_CHOICES = ("backbone", "audio")


def finetune_config(
    cfg: AvagConfig,
    init_from: str | Path,
    overrides: list[str] | None = None,
    freeze: list[str] | None = None,
) -> AvagConfig:
    """``cfg`` with the model of ``init_from``; ``freeze`` keeps parts fixed all run long."""
    from avag_core.weights.checkpoint import checkpoint_config

    ckpt_model = to_dict(checkpoint_config(init_from).model)
    ckpt_model.update(backbone_weights="", audio_weights="", backbone_pretrained=False)
    model = merge(ckpt_model, parse_overrides(overrides).get("model", {}))
    raw = to_dict(cfg)
    raw["model"] = model
    raw["train"]["init_from"] = str(init_from)
    return freeze_config(config_from_dict(raw), freeze)


def freeze_config(cfg: AvagConfig, freeze: list[str] | None) -> AvagConfig:
    """``backbone``: frozen all run long (never unfrozen); ``audio``: audio encoder frozen."""
    raw = to_dict(cfg)
    for part in freeze or []:
        if part == "backbone":
            raw["model"]["freeze_backbone"] = True
            raw["train"]["unfreeze_backbone_epoch"] = -1
        elif part == "audio":
            raw["model"]["freeze_audio_encoder"] = True
        else:
            raise AvagError(f"--freeze {part!r}: choose from {', '.join(FREEZE_CHOICES)}")
    return config_from_dict(raw)


def load_initial_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Copy a model checkpoint's weights into ``model`` (strict; NaN/Inf refused)."""
    from avag_core.weights.checkpoint import load_state_strict, read_checkpoint

    tensors, _ = read_checkpoint(path)
    load_state_strict(model, tensors, str(path))


def describe_freeze(cfg: AvagConfig) -> str:
    """One line saying which parts of the model train in this run."""
    m, t = cfg.model, cfg.train
    if not m.freeze_backbone or t.unfreeze_backbone_epoch == 0:
        backbone = "trains"
    elif t.unfreeze_backbone_epoch < 0:
        backbone = "frozen"
    else:
        backbone = f"frozen until epoch {t.unfreeze_backbone_epoch}"
    audio = "frozen" if m.freeze_audio_encoder else "trains"
    return f"backbone {backbone}, audio encoder {audio}, head trains"


__all__ = [
    "FREEZE_CHOICES", "describe_freeze", "finetune_config", "freeze_config", "load_initial_weights"
]
