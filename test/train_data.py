"""Small synthetic AVAGD folders for the training and evaluation tests."""

from __future__ import annotations

import csv
import os
import sys
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


def tiny_train_cmd(data: Path, out: Path, *extra: str, resume: bool = False, device: str = "cpu") -> list[str]:
    """`avag train` of the tiny preset on ``make_tiny_dataset``'s small CSVs: 2 epochs of
    batch 2, a checkpoint every 2 steps, one thread (``extra``: more ``--set`` arguments)."""
    cmd = [sys.executable, "-m", "avag_core.cli.main", "train", "--config", "tiny",
           "--data", str(data), "--out", str(out), "--train-csv", "train_small.csv",
           "--val-csv", "val_small.csv", "--no-progress", "--device", device,
           "--set", "data.cache_dir=", "--set", "train.epochs=2", "--set", "train.batch_size=2",
           "--set", "train.ckpt_interval=2", "--set", "train.threads=1", *extra]
    return [*cmd, "--resume"] if resume else cmd


def train_env(*unset: str, **extra: str) -> dict[str, str]:
    """The environment of a training child process: unbuffered, one OpenMP thread, without
    the pause hooks named in ``unset``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    for name in unset:
        env.pop(name, None)
    env.update(extra)
    return env
