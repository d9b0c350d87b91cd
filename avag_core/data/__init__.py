"""AVAGD data: CSV loading, audio decoding, safe feature pickles, augmentation, synthesis.

Names load on first use (PEP 562): reading ``avag_core.data.config`` must not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import DataConfig

if TYPE_CHECKING:
    from .audio_io import audio_info, load_audio
    from .cache import FeatureCache
    from .dataset import AVAGDDataset, build_loader, collate_batch, load_mask, load_rgb
    from .features import load_feature_pickle
    from .rows import Row, check_row, read_rows

_LAZY = {
    "audio_info": "audio_io", "load_audio": "audio_io",
    "FeatureCache": "cache",
    "AVAGDDataset": "dataset", "build_loader": "dataset", "collate_batch": "dataset",
    "load_mask": "dataset", "load_rgb": "dataset",
    "load_feature_pickle": "features",
    "Row": "rows", "check_row": "rows", "read_rows": "rows",
}

__all__ = [
    "AVAGDDataset",
    "DataConfig",
    "FeatureCache",
    "Row",
    "audio_info",
    "build_loader",
    "check_row",
    "collate_batch",
    "load_audio",
    "load_feature_pickle",
    "load_mask",
    "load_rgb",
    "read_rows",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
