"""Scalar logging to CSV (always) and TensorBoard (when installed), main process only."""

from __future__ import annotations

import csv
import os
import tempfile
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

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step``: a resumed run redoes those steps and logs them
        again, so without this the file would hold them twice. Rewritten atomically."""
        if self.fields is None or not self.path.exists():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        keep = [rows[0]] + [r for r in rows[1:] if r and _step(r) <= step]
        if len(keep) == len(rows):
            return
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", newline="") as fh:
            csv.writer(fh).writerows(keep)
        os.replace(tmp, self.path)

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def _step(row: list[str]) -> int:
    try:
        return int(row[0])
    except (ValueError, IndexError):
        return -1


class RunLogger:
    """``resume_step``: the step of the checkpoint a run resumes from; rows (and TensorBoard
    events) after it are dropped, since the resumed run logs those steps again."""

    def __init__(self, out_dir: Path, enabled: bool, resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.train_csv = CsvLog(out_dir / "train_log.csv")
        self.val_csv = CsvLog(out_dir / "val_log.csv")
        if resume_step is not None:
            self.train_csv.truncate_after(resume_step)
            self.val_csv.truncate_after(resume_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge)
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
