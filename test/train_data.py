"""Small synthetic AVAGD folders for the training and evaluation tests."""

from __future__ import annotations

import csv
from pathlib import Path


def make_tiny_dataset(root: Path, n_train: int = 6, n_val: int = 3) -> Path:
    """Write the ``tiny`` synthetic set to ``root`` plus ``train_small.csv``/``val_small.csv``
    (the first ``n_train``/``n_val`` rows), so a test trains on a handful of samples."""
    from avag_core.data.synth import generate

    generate(root, seed=0, size="tiny")
    for split, n in (("train", n_train), ("val", n_val)):
        with (root / f"{split}.csv").open(newline="") as fh:
            rows = list(csv.reader(fh))
        with (root / f"{split}_small.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows(rows[: n + 1])
    return root
