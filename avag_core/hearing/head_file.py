"""The head file: ``<checkpoint stem>.actions.safetensors`` next to the checkpoint.

Why a separate file: ``paper``/``realtime`` checkpoints stay loadable and unchanged, and
the head (a few hundred kB) can be retrained or dropped without touching them. The file
holds the head's weights and, as metadata, its architecture, class names, temperature,
default threshold and the fingerprint of the audio weights it was trained on; loading
refuses a head whose fingerprint or token width does not match the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from avag_core.errors import AvagError

from .action_head import ActionHead, HeadConfig

FORMAT = "avag-action-head-v1"
SUFFIX = ".actions.safetensors"


def head_path_for(checkpoint: str | Path) -> Path:
    """``foo.safetensors`` -> ``foo.actions.safetensors`` (same folder)."""
    p = Path(checkpoint)
    stem = p.name[: -len(".safetensors")] if p.name.endswith(".safetensors") else p.stem
    return p.with_name(stem + SUFFIX)


@dataclasses.dataclass
class HeadFile:
    head: ActionHead
    temperature: float
    threshold: float
    fingerprint: str  # audio weights the head was trained on (embedding.audio_fingerprint)
    token_dim: int
    info: dict[str, Any]  # training facts (data, metrics) for the record


def save_head(path: str | Path, hf: HeadFile) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "config": json.dumps(dataclasses.asdict(hf.head.cfg)),
        "temperature": repr(float(hf.temperature)),
        "threshold": repr(float(hf.threshold)),
        "fingerprint": hf.fingerprint,
        "token_dim": str(int(hf.token_dim)),
        "info": json.dumps(hf.info),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in hf.head.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    readable(tmp)
    tmp.replace(path)
    return path


def readable(path: Path) -> None:
    """safetensors writes 0600 files; give them the usual umask-based mode so a node
    running as another user can read a head or enrollment file."""
    umask = 0o022  # read, not set: os.umask() would change it for every thread meanwhile
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except OSError:
        pass
    path.chmod(0o666 & ~umask)


def load_head(path: str | Path) -> HeadFile:
    """Read a head file, with one-line errors naming it."""
    from avag_core.weights.checkpoint import read_safetensors

    path = Path(path)
    state, meta = read_safetensors(path, "action head")
    if meta.get("format") != FORMAT:
        raise AvagError(f"{path} is not an avag action head (no '{FORMAT}' metadata)")
    try:
        cfg = HeadConfig(**json.loads(meta["config"]))
        head = ActionHead(cfg=cfg)
        head.load_state_dict(state, strict=True)
        hf = HeadFile(head.eval(), float(meta["temperature"]), float(meta["threshold"]),
                      meta["fingerprint"], int(meta["token_dim"]), json.loads(meta.get("info", "{}")))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvagError(f"action head {path} is damaged or from another version ({first})") from None
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise AvagError(f"action head {path} holds NaN or infinite values: refused")
    return hf


def check_matches(hf: HeadFile, fingerprint: str, token_dim: int, source: str) -> None:
    """Refuse a head trained on another checkpoint's audio tokens (one line)."""
    if hf.token_dim != token_dim or hf.fingerprint != fingerprint:
        raise AvagError(
            f"action head {source} does not match the checkpoint (trained on audio weights "
            f"{hf.fingerprint}, width {hf.token_dim}; this model has {fingerprint}, width "
            f"{token_dim}): retrain it with `avag heard train`"
        )
