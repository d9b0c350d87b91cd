"""The AVAGD dataset: CSV rows -> normalised image, binary masks and log-mel patches."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avag_core.errors import AvagError
from avag_core.preprocess import load_image, normalize, open_image, read_image_size, resize_rgb

from .augment import PairedAugment
from .cache import FeatureCache, resolve_cache_dir
from .config import DataConfig
from .features import load_feature_pickle
from .rows import Row, check_row, read_rows, resolve_csv


def load_rgb(path: Path) -> np.ndarray:
    """Any image file -> upright uint8 RGB ``[H, W, 3]`` at full resolution.

    The decoding rules (EXIF, alpha, 16-bit, float, size limit) are
    :func:`avag_core.preprocess.load_image`'s.
    """
    return load_image(path)


def load_mask(path: Path | None, size: tuple[int, int]) -> np.ndarray:
    """8-bit mask -> bool [H, W] (> 127 is foreground); ``None`` -> all background.

    EXIF orientation is applied like for the image, so both stay aligned.
    """
    from PIL import ImageOps

    height, width = size
    if path is None:
        return np.zeros((height, width), dtype=bool)
    im = open_image(path)
    try:
        with im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                arr = np.asarray(im, dtype=np.float64)
                mask = arr > (32767 if arr.max() > 255 else 127)
            else:
                mask = np.asarray(im.convert("L")) > 127
    except (OSError, ValueError, SyntaxError) as exc:
        raise AvagError(f"cannot read mask {path}: {str(exc).splitlines()[0][:200]}") from None
    if mask.shape != (height, width):
        raise AvagError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, image is {width}x{height}"
        )
    return mask


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Per-sample image ops are tiny: thread start-up costs more than it saves (several
    times slower on a busy 2-core machine), so samples are prepared on one thread, as
    DataLoader workers already do."""
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


class AVAGDDataset(Dataset):
    """One AVAGD CSV. Bad rows fail with their CSV line, or are skipped with ``skip_bad``.

    Rows are checked up front (files exist, image and mask sizes agree, audio header
    reads), so a broken dataset fails before training starts, not hours into it.
    """

    def __init__(
        self,
        root: str | Path,
        csv: str | Path,
        image_size: int,
        train: bool,
        cfg: DataConfig | None = None,
        skip_bad: bool = False,
        max_audio_patches: int = 0,
    ) -> None:
        self.cfg = cfg or DataConfig()
        self.root = Path(root)
        self.csv_path = resolve_csv(self.root, csv)
        self.image_size = int(image_size)
        self.train = train
        self.max_audio_patches = int(max_audio_patches)
        skip_bad = skip_bad or self.cfg.skip_bad
        self.bad_rows: list[tuple[int, str]] = []
        self.rows: list[Row] = []
        for row in read_rows(self.root, self.csv_path, self.cfg.allow_outside_root):
            reason = check_row(row, use_pkl=self.cfg.use_pkl)
            if reason is None:
                self.rows.append(row)
            elif skip_bad:
                self.bad_rows.append((row.line, reason))
                if os.environ.get("RANK", "0") == "0":  # once, not once per DDP process
                    print(f"skipped {self.csv_path} line {row.line}: {reason}", file=sys.stderr)
            else:
                raise AvagError(f"{self.csv_path} line {row.line}: {reason}")
        if self.bad_rows and os.environ.get("RANK", "0") == "0":
            print(f"{self.csv_path}: skipped {len(self.bad_rows)} bad row(s), "
                  f"using {len(self.rows)}", file=sys.stderr)
        if not self.rows:
            raise AvagError(f"CSV {self.csv_path} has no usable rows")
        self.cache = FeatureCache(resolve_cache_dir(self.cfg.cache_dir))
        self.augment = PairedAugment(self.cfg) if train else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def categories(self) -> list[str]:
        return sorted({r.category for r in self.rows})

    def audio_patches(self, index: int) -> torch.Tensor:
        """``[T, 96, 64]`` log-mel patches of row ``index`` (cached after the first read)."""
        row = self.rows[index]
        if self.cfg.use_pkl and row.pkl is not None:
            patches = load_feature_pickle(row.pkl)
        else:
            patches = self.cache.patches(row.audio)
        if self.max_audio_patches > 0:
            from avag_core.modeling.audio_frontend import select_patches

            patches = select_patches(patches, self.max_audio_patches)
        return patches

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        try:
            with _one_thread():
                return self._load(index, row)
        except AvagError as exc:
            raise AvagError(f"{self.csv_path} line {row.line}: {exc}") from None

    def _load(self, index: int, row: Row) -> dict[str, Any]:
        import torch.nn.functional as F

        size = self.image_size
        # The same decode + resize as Predictor (avag predict, the node): same pixels.
        rgb = load_image(row.image, min_side=size)
        hw = read_image_size(row.image)
        masks = [load_mask(row.mask_func, hw), load_mask(row.mask_dep, hw)]
        image = resize_rgb(rgb, size)
        mask_t = [
            F.interpolate(torch.from_numpy(m)[None, None].float(), size=(size, size),
                          mode="nearest")[0].to(torch.uint8)
            for m in masks
        ]
        if self.augment is not None:
            image, *mask_t = self.augment(image, *mask_t)
        return {
            "image": normalize(image),
            "mask_func": (mask_t[0] > 0).float(),
            "mask_dep": (mask_t[1] > 0).float(),
            "audio": self.audio_patches(index),
            "index": index,
            "category": row.category,
            "image_path": str(row.image),
            "csv_line": row.line,
        }


def collate_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a batch; audio is zero-padded to the longest clip with ``audio_mask`` [B, T]."""
    from avag_core.modeling.audio_frontend import pad_patch_batch

    audio, audio_mask = pad_patch_batch([it["audio"] for it in items])
    return {
        "image": torch.stack([it["image"] for it in items]),
        "mask_func": torch.stack([it["mask_func"] for it in items]),
        "mask_dep": torch.stack([it["mask_dep"] for it in items]),
        "audio": audio,
        "audio_mask": audio_mask,
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "category": [it["category"] for it in items],
        "image_path": [it["image_path"] for it in items],
        "csv_line": torch.tensor([it["csv_line"] for it in items], dtype=torch.long),
    }


def build_loader(
    dataset: AVAGDDataset, batch_size: int, shuffle: bool, num_workers: int | None = None,
    seed: int | None = None,
) -> DataLoader:  # fmt: skip
    """A DataLoader with the batch collation and persistent workers (warm caches)."""
    workers = dataset.cfg.num_workers if num_workers is None else num_workers
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_batch,
        persistent_workers=workers > 0,
        generator=generator,
    )
