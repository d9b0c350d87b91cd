"""Run a model over a dataset and collect per-image metric records.

Predictions are scored at the model's output resolution against the ground-truth masks the
dataset returns at ``image_size`` (the dataset resizes masks with nearest-neighbour, so they
stay binary); if a model returned another size its logits are resized bilinearly to the
mask size. No sample is dropped: the loader never uses ``drop_last``, and under several
processes the padded repeats of the distributed order are removed by sample index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from avag_core.evaluation.metrics import sample_records
from avag_core.training.distributed import DistInfo, all_gather_objects


class ShuffledAudio(Dataset):
    """Each sample's audio replaced by another sample's (a fixed derangement).

    Used to check that the model listens: with the wrong sound, scores should drop.
    """

    def __init__(self, base: Dataset, seed: int = 0) -> None:
        self.base = base
        n = len(base)  # type: ignore[arg-type]
        g = torch.Generator()
        g.manual_seed(seed)
        perm = torch.randperm(n, generator=g).tolist()
        # turn the permutation into a derangement by rotating fixed points
        if n > 1:
            for i in range(n):
                if perm[i] == i:
                    j = (i + 1) % n
                    perm[i], perm[j] = perm[j], perm[i]
        self.partner = perm

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.base[i])
        other = self.base[self.partner[i]]
        item["audio"] = other["audio"]
        item["audio_from"] = int(self.partner[i])
        return item


def _fit_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    loader: Any,
    device: torch.device,
    dist_info: DistInfo | None = None,
    expected: int | None = None,
    amp_dtype: torch.dtype | None = None,
    on_batch: Callable[[dict[str, Any], torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Per-image records (sorted by dataset index), gathered over all ranks.

    ``on_batch(batch, prob_function, prob_dependency)`` lets callers draw overlays.
    """
    dist_info = dist_info or DistInfo()
    was_training = model.training
    model.eval()
    records: list[dict[str, Any]] = []
    iterator = loader
    if progress and dist_info.is_main:
        from tqdm import tqdm

        iterator = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True, disable=None)  # no bar in a log
    for batch in iterator:
        batch = _to_device(batch, device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(batch["image"], batch["audio"], batch["audio_mask"])
        size = tuple(batch["mask_func"].shape[-2:])
        prob_f = _fit_logits(out["function"], size).sigmoid()
        prob_d = _fit_logits(out["dependency"], size).sigmoid()
        recs = sample_records(prob_f, prob_d, batch["mask_func"], batch["mask_dep"])
        idx = batch["index"]
        idx = idx.tolist() if torch.is_tensor(idx) else list(idx)
        for j, r in enumerate(recs):
            r["index"] = int(idx[j])
            r["category"] = str(batch["category"][j]) if "category" in batch else "?"
            if "image_path" in batch:
                r["image_path"] = str(batch["image_path"][j])
        records.extend(recs)
        if on_batch is not None:
            on_batch(batch, prob_f, prob_d)
    if was_training:
        model.train()
    merged: dict[int, dict[str, Any]] = {}
    for part in all_gather_objects(records, dist_info):
        for r in part:
            merged.setdefault(r["index"], r)  # drops the padding repeats, keeps one each
    out_records = [merged[k] for k in sorted(merged)]
    if expected is not None and len(out_records) != expected:
        raise RuntimeError(f"evaluation saw {len(out_records)} samples, expected {expected}")
    return out_records
