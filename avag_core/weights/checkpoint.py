"""Our checkpoint format: one safetensors file, weights + the full config as JSON metadata.

safetensors never unpickles, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from avag_core.errors import AvagError

if TYPE_CHECKING:
    from avag_core.config import AvagConfig
    from avag_core.modeling.avagformer import AVAGFormer

FORMAT = "avag-checkpoint-v1"


def save_model_checkpoint(
    path: str | Path, model: torch.nn.Module, cfg: AvagConfig, extra: dict[str, Any] | None = None
) -> Path:
    """Write weights + config (+ ``extra`` values as strings) to ``path`` (.safetensors)."""
    from safetensors.torch import save_file

    from avag_core.config import to_dict

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": json.dumps(to_dict(cfg))}
    for k, v in (extra or {}).items():
        meta[f"extra.{k}"] = v if isinstance(v, str) else json.dumps(v)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_safetensors(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of any avag safetensors file (``what``: "checkpoint", "action
    head", ...), with one-line errors naming the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise AvagError(f"{what} {path} not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises several types for damaged files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvagError(f"{what} {path} is not a readable safetensors file ({msg})") from None
    return tensors, meta


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint, with one-line errors naming the file."""
    path = Path(path)
    tensors, meta = read_safetensors(path, "checkpoint")
    if meta.get("format") != FORMAT or "config" not in meta:
        raise AvagError(f"checkpoint {path} is not an avag checkpoint (no '{FORMAT}' metadata)")
    return tensors, meta


def checkpoint_config(path: str | Path) -> AvagConfig:
    from avag_core.config import config_from_dict

    _, meta = read_checkpoint(path)
    try:
        return config_from_dict(json.loads(meta["config"]))
    except (json.JSONDecodeError, AvagError) as exc:
        raise AvagError(f"checkpoint {path} has an invalid config: {exc}") from None


def checkpoint_extra(path: str | Path) -> dict[str, str]:
    _, meta = read_checkpoint(path)
    return {k[len("extra.") :]: v for k, v in meta.items() if k.startswith("extra.")}


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinity: they would load silently and predict garbage
    (a diverged run, a torn or tampered file)."""
    bad = [
        k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise AvagError(f"{source}: tensor {bad[0]}{more} holds NaN or infinite values: refused")


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` or raise one line listing the first mismatches."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) e.g. {', '.join(unexpected[:3])}")
    if shape:
        problems.append(f"{len(shape)} shape mismatch(es) e.g. {'; '.join(shape[:3])}")
    if problems:
        raise AvagError(f"checkpoint {source} does not match the model: {' | '.join(problems)}")
    check_finite(state, f"checkpoint {source}")
    model.load_state_dict(state, strict=True)


def load_model_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[AVAGFormer, AvagConfig]:
    """Rebuild the model from the config stored in the file and load its weights."""
    import dataclasses

    from avag_core.config import config_from_dict
    from avag_core.modeling import AVAGFormer

    tensors, meta = read_checkpoint(path)
    try:
        cfg = config_from_dict(json.loads(meta["config"]))
    except (json.JSONDecodeError, AvagError) as exc:
        raise AvagError(f"checkpoint {path} has an invalid config: {exc}") from None
    # The weights come from the file: do not load pretrained files or hub weights again.
    mcfg = dataclasses.replace(
        cfg.model, backbone_weights="", audio_weights="", backbone_pretrained=False
    )
    model = AVAGFormer(mcfg)
    load_state_strict(model, tensors, str(path))
    model.cfg = cfg.model
    return model.to(device).eval(), cfg
