"""``avag eval`` without the argument parsing: load a checkpoint, score a split, report."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avag_core.errors import AvagError
from avag_core.evaluation.evaluator import ShuffledAudio, evaluate_model
from avag_core.evaluation.metrics import summarize, summarize_by_category
from avag_core.evaluation.report import bar_plot, format_table, overlay, write_json
from avag_core.preprocess import load_image
from avag_core.training import distributed as D
from avag_core.training.trainer import make_dataset, make_eval_loader, pick_device


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "sample"


class OverlayWriter:
    """Writes ``<index>_<category>_<image>.png`` per sample: image | prediction | truth."""

    def __init__(self, out_dir: Path, data_root: Path) -> None:
        self.out_dir = out_dir
        self.data_root = data_root
        out_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: dict[str, Any], prob_f: torch.Tensor, prob_d: torch.Tensor) -> None:
        import cv2

        for j in range(prob_f.shape[0]):
            rel = str(batch["image_path"][j])
            path = Path(rel) if Path(rel).is_absolute() else self.data_root / rel
            try:  # decoded as the model saw it (EXIF, alpha, 16-bit), in BGR for cv2
                img = np.ascontiguousarray(load_image(path, min_side=prob_f.shape[-1])[..., ::-1])
            except AvagError:  # unreadable here: fall back to a grey canvas
                img = np.full((*prob_f.shape[-2:], 3), 128, np.uint8)
            panel = overlay(
                img,
                prob_f[j, 0].cpu().numpy(),
                prob_d[j, 0].cpu().numpy(),
                batch["mask_func"][j, 0].cpu().numpy(),
                batch["mask_dep"][j, 0].cpu().numpy(),
            )
            idx = int(batch["index"][j])
            name = f"{idx:06d}_{_safe_name(str(batch['category'][j]))}_{_safe_name(path.stem)}.png"
            cv2.imwrite(str(self.out_dir / name), panel)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "val",
    batch_size: int = 8,
    device: str | None = None,
    num_workers: int = 0,
    shuffle_audio: bool = False,
    shuffle_seed: int = 0,
    save_overlays: str | Path | None = None,
    json_out: str | Path | None = None,
    plot_out: str | Path | None = None,
    progress: bool = True,
    threads: int = 0,
    skip_bad: bool = False,
    allow_outside_root: bool = False,
) -> dict[str, Any]:
    """Score ``checkpoint`` on ``<data_root>/<split>.csv``; returns the JSON payload."""
    from avag_core.weights.checkpoint import load_model_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise AvagError(f"checkpoint {checkpoint} does not exist")
    if batch_size < 1:
        raise AvagError(f"--batch-size must be >= 1, got {batch_size}")
    dev = pick_device(device)
    dist_info = D.init_distributed(dev.type)
    if dist_info.enabled and dev.type == "cuda":
        dev = torch.device("cuda", dist_info.local_rank)
    if threads > 0 and dev.type == "cpu":
        torch.set_num_threads(threads)
    model, cfg = load_model_checkpoint(checkpoint, dev)
    model.eval()
    root = Path(data_root)
    csv = split if split.endswith(".csv") else f"{split}.csv"
    data_cfg = dataclasses.replace(
        cfg.data,
        skip_bad=skip_bad or cfg.data.skip_bad,
        allow_outside_root=allow_outside_root or cfg.data.allow_outside_root,
    )
    dataset = make_dataset(dataclasses.replace(cfg, data=data_cfg), root, csv, train=False)
    skipped = [{"line": line, "reason": reason} for line, reason in dataset.bad_rows]
    if shuffle_audio:
        dataset = ShuffledAudio(dataset, seed=shuffle_seed)
    loader = make_eval_loader(dataset, batch_size, num_workers, dist_info)
    hook = OverlayWriter(Path(save_overlays), root) if save_overlays else None
    records = evaluate_model(
        model, loader, dev, dist_info, expected=len(dataset), on_batch=hook, progress=progress
    )
    if shuffle_audio:
        for r in records:
            r["audio_from"] = int(dataset.partner[r["index"]])
    overall = summarize(records)
    per_cat = summarize_by_category(records)
    payload = {
        "checkpoint": str(checkpoint),
        "data": str(root),
        "split": split,
        "shuffle_audio": shuffle_audio,
        "image_size": cfg.model.image_size,
        "skipped_rows": skipped,
        "overall": overall,
        "per_category": per_cat,
        "per_sample": [
            {k: v for k, v in r.items() if k != "has_dependency"} for r in records
        ],
        "table": format_table(overall, per_cat),
    }
    actions = action_metrics(checkpoint, model, dataset) if dist_info.is_main and not shuffle_audio else None
    if actions is not None:
        payload["actions"] = actions
    if dist_info.is_main:
        if json_out:
            write_json(json_out, payload)
        if plot_out:
            title = f"{checkpoint.name} on {split}" + (" (shuffled audio)" if shuffle_audio else "")
            bar_plot(per_cat, plot_out, title=title)
    D.shutdown(dist_info)
    return payload


def action_metrics(checkpoint: Path, model: torch.nn.Module, dataset: Any) -> dict[str, Any] | None:
    """What was heard, when the checkpoint has an action head beside it (avag_core.hearing):
    top-1 accuracy, confusion matrix, ECE with its reliability bins, actions the gate drops."""
    from avag_core.hearing import ActionRecognizer
    from avag_core.hearing.head_file import head_path_for
    from avag_core.hearing.metrics import action_metrics_for_rows

    if not head_path_for(checkpoint).is_file():
        return None
    return action_metrics_for_rows(ActionRecognizer.load(checkpoint), model, dataset.rows)


def headline(overall: dict[str, float]) -> str:
    def f(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{100 * v:.2f}"

    return (
        f"mIoU_f {f(overall['miou_function'])}  F_f {f(overall['fscore_function'])}  "
        f"mIoU_d {f(overall['miou_dependency'])}  F_d {f(overall['fscore_dependency'])}  "
        f"(n={overall['num_samples']}, n_dep={overall['num_dependency']})"
    )
