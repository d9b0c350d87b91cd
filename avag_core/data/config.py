"""Dataset and augmentation settings (owned by the data package)."""

from __future__ import annotations

from dataclasses import dataclass

from avag_core.settings import setting


@dataclass
class DataConfig:
    """Where the data lives and how training samples are perturbed.

    ``image_size`` lives in ``ModelConfig`` (the network decides its input), so the
    dataset takes it as a constructor argument instead of reading it from here.
    """

    root: str = setting("", "data root; every CSV path is relative to it")
    train_csv: str = setting("train.csv", "training split CSV")
    val_csv: str = setting("val.csv", "validation split CSV")
    unseen_csv: str = setting("unseen.csv", "zero-shot (unseen categories) split CSV")
    # Paired geometric augmentation (same transform for the image and both masks).
    affine_prob: float = setting(0.5, "probability of a random affine transform", lo=0.0, hi=1.0)
    affine_degrees: float = setting(20.0, "largest rotation in degrees", lo=0.0, hi=180.0)
    affine_scale_min: float = setting(0.5, "smallest affine scale", lo=0.05, hi=4.0)
    affine_scale_max: float = setting(1.0, "largest affine scale", lo=0.05, hi=4.0)
    affine_shear: float = setting(10.0, "largest shear in degrees", lo=0.0, hi=90.0)
    affine_translate: float = setting(
        0.1, "largest shift as a fraction of the image side", lo=0.0, hi=1.0
    )
    hflip_prob: float = setting(0.5, "probability of a horizontal flip", lo=0.0, hi=1.0)
    # Colour jitter, applied to the image only (masks are labels, not colours).
    jitter_prob: float = setting(0.8, "probability of colour jitter", lo=0.0, hi=1.0)
    brightness: float = setting(0.3, "colour jitter brightness", lo=0.0, hi=1.0)
    contrast: float = setting(0.3, "colour jitter contrast", lo=0.0, hi=1.0)
    saturation: float = setting(0.3, "colour jitter saturation", lo=0.0, hi=1.0)
    hue: float = setting(0.05, "colour jitter hue", lo=0.0, hi=0.5)
    cache_dir: str = setting(
        "auto", "audio feature cache folder: auto = ~/.cache/avag/features, or $AVAG_CACHE_DIR/features, '' = memory only"
    )
    use_pkl: bool = setting(
        False, "read the CSV's pkl column (pre-computed log-mel patches) instead of the audio"
    )
    num_workers: int = setting(0, "DataLoader worker processes", lo=0, hi=256)
    skip_bad: bool = setting(
        False, "skip unusable CSV rows (each is printed with its line and reason) instead of failing"
    )
    allow_outside_root: bool = setting(
        False, "allow CSV paths that are absolute or climb out of the data root with '..'"
    )
