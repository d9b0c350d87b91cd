"""AVAGD data: CSV loading, audio decoding, safe feature pickles, augmentation, synthesis."""

from .audio_io import audio_info, load_audio
from .cache import FeatureCache
from .config import DataConfig
from .dataset import AVAGDDataset, build_loader, collate_batch, load_mask, load_rgb
from .features import load_feature_pickle
from .rows import Row, check_row, read_rows

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
