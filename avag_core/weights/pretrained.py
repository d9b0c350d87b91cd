"""Pretrained files users actually have.

* Backbones: timm loads them (``model.backbone_weights``), converting the original
  PVT-v2 release layout (``pvt_v2_b5.pth``) with timm's own filter.
* VGGish: the torchvggish release ``vggish-10086976.pth`` (keys ``features.*`` and
  ``embeddings.*``), loaded here.

Files are read with ``torch.load(weights_only=True)``: no arbitrary unpickling.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avag_core.errors import AvagError


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A tensor dict from .pth/.pt (weights_only) or .safetensors; unwraps ``model``/``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise AvagError(f"{what} file {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvagError(f"{what} file {path} cannot be read safely ({msg[:200]})") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise AvagError(f"{what} file {path} does not hold a tensor state dict")
    from avag_core.weights.checkpoint import check_finite

    check_finite(obj, f"{what} file {path}")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_audio_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load the torchvggish release into ``model.audio_encoder`` (PCA keys are ignored)."""
    from avag_core.weights.checkpoint import load_state_strict

    state = read_state_dict(path, "model.audio_weights")
    state = {
        k: v for k, v in state.items() if not k.startswith("pproc.") and not k.startswith("pca_")
    }
    load_state_strict(model.audio_encoder, state, str(path))
