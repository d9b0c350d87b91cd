"""AVAGD data: CSV loading, audio decoding, safe feature pickles, augmentation, synthesis.

Names load on first use (PEP 562): reading ``avag_core.data.config`` must not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avag_core.lazy import lazy_attributes

from .config import DataConfig

if TYPE_CHECKING:
    from .audio_io import audio_info, load_audio
    from .cache import FeatureCache
    from .dataset import AVAGDDataset, build_loader, collate_batch, load_mask, load_rgb
    from .features import load_feature_pickle
    from .rows import Row, check_row, read_rows

_WHERE = {
    "audio_info": ".audio_io", "load_audio": ".audio_io",
    "FeatureCache": ".cache",
    "AVAGDDataset": ".dataset", "build_loader": ".dataset", "collate_batch": ".dataset",
    "load_mask": ".dataset", "load_rgb": ".dataset",
    "load_feature_pickle": ".features",
    "Row": ".rows", "check_row": ".rows", "read_rows": ".rows",
}
__getattr__ = lazy_attributes(__name__, _WHERE)

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

