"""Scalar logging to CSV (always) and TensorBoard (when installed), main process only."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class CsvLog:
    """Append rows to a CSV whose columns are fixed by the first row written.

    Appending (not truncating) keeps the history of a resumed run in one file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists() and path.stat().st_size > 0:
            with path.open(newline="") as fh:
                self.fields = next(csv.reader(fh), None)

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


class RunLogger:
    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.train_csv = CsvLog(out_dir / "train_log.csv")
        self.val_csv = CsvLog(out_dir / "val_log.csv")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def train(self, step: int, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.train_csv.write({"step": step, **row})
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(f"train/{k}", v, step)

    def val(self, step: int, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.val_csv.write({"step": step, **row})
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(f"val/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
