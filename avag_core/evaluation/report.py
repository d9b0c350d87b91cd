"""Evaluation outputs: a text table (overall + per category), JSON, a PNG bar plot per
category drawn with OpenCV, and optional prediction overlays."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.evaluation.metrics import METRIC_KEYS

_HEADERS = {
    "miou_function": "mIoU_f",
    "fscore_function": "F_f",
    "miou_dependency": "mIoU_d",
    "fscore_dependency": "F_d",
}


def _fmt(v: float) -> str:
    return "  -  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:6.2f}"


def format_table(overall: dict[str, float], per_category: dict[str, dict[str, float]]) -> str:
    """Markdown table, metrics x100; '-' where a metric has no defined sample."""
    cols = ["category", "n", "n_dep", *(_HEADERS[k] for k in METRIC_KEYS)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    def row(name: str, s: dict[str, float]) -> str:
        vals = [name, str(int(s["num_samples"])), str(int(s["num_dependency"]))]
        vals += [_fmt(s[k]).strip() for k in METRIC_KEYS]
        return "| " + " | ".join(vals) + " |"

    lines.append(row("**overall**", overall))
    for name, s in per_category.items():
        lines.append(row(name, s))
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    """NaN -> None so the JSON is standard."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(_clean(payload), indent=2) + "\n")


def bar_plot(
    per_category: dict[str, dict[str, float]],
    path: str | Path,
    keys: Sequence[str] = ("miou_function", "miou_dependency"),
    title: str = "",
) -> None:
    """Horizontal grouped bars, one row per category, drawn with OpenCV (no matplotlib)."""
    import cv2

    colors = [(60, 76, 231), (219, 152, 52), (113, 204, 46), (18, 156, 243)]  # BGR
    names = list(per_category)
    row_h, bar_h, left, width, top = 14 * len(keys) + 10, 12, 260, 420, 50
    h = top + row_h * max(1, len(names)) + 40
    w = left + width + 80
    img = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title[:80], (10, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k_i, key in enumerate(keys):  # legend
        x = 10 + 170 * k_i
        cv2.rectangle(img, (x, 30), (x + 12, 42), colors[k_i % 4], -1)
        cv2.putText(img, _HEADERS.get(key, key), (x + 16, 41), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for tick in range(0, 101, 20):  # grid
        x = left + int(width * tick / 100)
        cv2.line(img, (x, top), (x, h - 30), (220, 220, 220), 1)
        cv2.putText(img, str(tick), (x - 8, h - 12), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(names):
        y0 = top + i * row_h + 5
        label = name if len(name) <= 38 else name[:35] + "..."
        cv2.putText(img, label, (5, y0 + row_h // 2), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        for k_i, key in enumerate(keys):
            v = per_category[name].get(key)
            y = y0 + k_i * 14
            if v is None or math.isnan(v):
                cv2.putText(img, "n/a", (left + 3, y + 10), font, 0.33, (90, 90, 90), 1)
                continue
            x1 = left + int(width * max(0.0, min(1.0, v)))
            cv2.rectangle(img, (left, y), (max(left + 1, x1), y + bar_h), colors[k_i % 4], -1)
            cv2.putText(img, f"{100 * v:.1f}", (x1 + 3, y + 10), font, 0.33, (0, 0, 0), 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")


def overlay(image_bgr: np.ndarray, prob_f: np.ndarray, prob_d: np.ndarray,
            gt_f: np.ndarray, gt_d: np.ndarray) -> np.ndarray:
    """Image | prediction (function red, dependency blue) | ground truth, side by side."""
    import cv2

    h, w = prob_f.shape
    img = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)

    def paint(f: np.ndarray, d: np.ndarray) -> np.ndarray:
        out = img.copy()
        red, blue = np.array([40, 40, 230], np.float32), np.array([230, 120, 30], np.float32)
        out[d] = 0.45 * out[d] + 0.55 * blue
        out[f] = 0.45 * out[f] + 0.55 * red
        return out

    pred = paint(prob_f > 0.5, prob_d > 0.5)
    gt = paint(gt_f > 0.5, gt_d > 0.5)
    return np.concatenate([img, pred, gt], axis=1).clip(0, 255).astype(np.uint8)
