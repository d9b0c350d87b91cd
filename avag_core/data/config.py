"""Dataset and augmentation settings (owned by the data package)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataConfig:
    """Where the data lives and how training samples are perturbed.

    ``image_size`` lives in ``ModelConfig`` (the network decides its input), so the
    dataset takes it as a constructor argument instead of reading it from here.
    """

    root: str = ""
    train_csv: str = "train.csv"
    val_csv: str = "val.csv"
    unseen_csv: str = "unseen.csv"
    # Paired geometric augmentation (same transform for the image and both masks).
    affine_prob: float = 0.5
    affine_degrees: float = 20.0
    affine_scale_min: float = 0.5
    affine_scale_max: float = 1.0
    affine_shear: float = 10.0
    affine_translate: float = 0.1
    hflip_prob: float = 0.5
    # Colour jitter, applied to the image only (masks are labels, not colours).
    jitter_prob: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05
    # Audio feature cache: "auto" = $XDG_CACHE_HOME/avag/features, "" = memory only.
    cache_dir: str = "auto"
    # Read the CSV's ``pkl`` column (pre-computed log-mel patches) instead of the audio.
    use_pkl: bool = False
    num_workers: int = 0
    skip_bad: bool = False
