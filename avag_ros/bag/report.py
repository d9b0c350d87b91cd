"""Score detections against a bag's ground truth and write the replay report.

Event detection: a detection matches the ground-truth event whose sound interval
contains its onset (or is nearest to it, within ``tolerance_s``), one to one, greedily by
onset distance; precision = matched / detections, recall = matched / events.
Segmentation: the field's metrics (avag_core.evaluation.metrics) on matched events, at
the image resolution. Ground truth of sounds that are not actions (category ``none/<kind>``,
a synthetic bag's distractors) is scored apart: each is given masks (a detection at it:
wrong), rejected (the node's ~/rejected_events) or not heard as an event at all.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Scored:
    """What the report needs of one detection, from either replay mode."""

    onset_ns: int
    start_ns: int
    end_ns: int
    frame_stamp_ns: int
    function_prob: np.ndarray  # H x W float (a binary mask works too)
    dependency_prob: np.ndarray
    function_mask: np.ndarray  # H x W bool
    dependency_mask: np.ndarray
    rgb: np.ndarray | None
    inference_ms: float
    points: np.ndarray | None = None  # N x 3
    colors: np.ndarray | None = None
    probability: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Truth:
    start_ns: int
    end_ns: int
    category: str
    function_mask: np.ndarray
    dependency_mask: np.ndarray

    @property
    def is_action(self) -> bool:
        """False for a sound that must get no masks (category ``none/<kind>``)."""
        return not self.category.startswith("none/")


def truth_from_msgs(msgs: list[Any]) -> list[Truth]:
    from avag_ros.conversions import image_to_numpy, stamp_to_ns

    return [
        Truth(stamp_to_ns(m.event_start), stamp_to_ns(m.event_end), m.action_label,
              image_to_numpy(m.function_mask) > 0, image_to_numpy(m.dependency_mask) > 0)
        for m in msgs
    ]


def match_events(dets: list[Scored], truth: list[Truth], tolerance_s: float = 0.5) -> list[tuple[int, int]]:
    """(detection index, truth index) pairs."""
    return match_onsets([d.onset_ns for d in dets], truth, tolerance_s)


def match_onsets(onsets_ns: list[int], truth: list[Truth], tolerance_s: float = 0.5) -> list[tuple[int, int]]:
    """(onset index, truth index) pairs, one to one, nearest onsets first."""
    tol = int(tolerance_s * 1e9)
    candidates = []
    for i, onset in enumerate(onsets_ns):
        for j, t in enumerate(truth):
            inside = t.start_ns - tol <= onset <= t.end_ns
            if inside:
                candidates.append((abs(onset - t.start_ns), i, j))
    pairs, used_d, used_t = [], set(), set()
    for _dist, i, j in sorted(candidates):
        if i not in used_d and j not in used_t:
            pairs.append((i, j))
            used_d.add(i)
            used_t.add(j)
    return sorted(pairs)


def heard_score(dets: list[Scored], rejected_ns: list[int], truth: list[Truth],
                tolerance_s: float = 0.5) -> dict[str, int]:
    """What became of the sounds that are not actions, and of actions the gate turned away
    (a rejected event at the action and none of its events given masks: a second onset
    inside a named action that the gate rejects loses nothing)."""
    distractors = [t for t in truth if not t.is_action]
    actions = [t for t in truth if t.is_action]
    masked = {j for _i, j in match_events(dets, distractors, tolerance_s)}
    rejected = {j for _i, j in match_onsets(rejected_ns, distractors, tolerance_s)}
    named = {j for _i, j in match_events(dets, actions, tolerance_s)}
    lost = {j for _i, j in match_onsets(rejected_ns, actions, tolerance_s)} - named
    return {"distractors": len(distractors), "given_masks": len(masked),
            "rejected": len(rejected - masked), "not_heard": len(distractors) - len(masked | rejected),
            "actions_rejected": len(lost)}


def score(dets: list[Scored], truth: list[Truth], tolerance_s: float = 0.5,
          rejected_ns: list[int] | None = None) -> dict[str, Any]:
    """Event and mask scores against the action ground truth; ``heard`` (distractors and
    rejections, ``heard_score``) when the truth has distractors or sounds were rejected."""
    import torch

    from avag_core.evaluation.metrics import sample_records, summarize, summarize_by_category

    heard = heard_score(dets, rejected_ns or [], truth, tolerance_s)
    truth = [t for t in truth if t.is_action]
    pairs = match_events(dets, truth, tolerance_s)
    records = []
    for i, j in pairs:
        d, t = dets[i], truth[j]
        if d.function_prob.shape != t.function_mask.shape:
            raise ValueError(f"detection {i} is {d.function_prob.shape}, its truth {t.function_mask.shape}")
        rec = sample_records(
            torch.from_numpy(d.function_prob[None].astype(np.float32)),
            torch.from_numpy(d.dependency_prob[None].astype(np.float32)),
            torch.from_numpy(t.function_mask[None].astype(np.float32)),
            torch.from_numpy(t.dependency_mask[None].astype(np.float32)),
        )[0]
        rec.update(category=t.category, detection=i, event=j,
                   onset_error_ms=(d.onset_ns - t.start_ns) / 1e6)
        records.append(rec)
    lat = np.array([d.inference_ms for d in dets], np.float64)
    n_d, n_t, n_m = len(dets), len(truth), len(pairs)
    return {
        "events": {
            "ground_truth": n_t,
            "detections": n_d,
            "matched": n_m,
            "precision": n_m / n_d if n_d else float("nan"),
            "recall": n_m / n_t if n_t else float("nan"),
            "onset_error_ms_median": float(np.median([r["onset_error_ms"] for r in records])) if records else float("nan"),
        },
        "segmentation": summarize(records) if records else {},
        "per_category": summarize_by_category(records) if records else {},
        "latency_ms": {
            "inference_median": float(np.median(lat)) if lat.size else float("nan"),
            "inference_p95": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            "inference_max": float(lat.max()) if lat.size else float("nan"),
        },
        "records": records,
        "heard": heard,
    }


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray | None, probability: np.ndarray | None) -> None:
    """Binary little-endian PLY (x y z float, red green blue uchar, probability float)."""
    n = int(points.shape[0])
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                      ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("probability", "<f4")])
    arr = np.zeros(n, dtype)
    arr["x"], arr["y"], arr["z"] = points[:, 0], points[:, 1], points[:, 2]
    if colors is not None:
        arr["red"], arr["green"], arr["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    if probability is not None:
        arr["probability"] = probability
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment avag grasp region (camera optical frame, metres)\n"
        f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty float probability\nend_header\n"
    )
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(arr.tobytes())


def write_report(out_dir: Path, result: dict[str, Any], dets: list[Scored], truth: list[Truth],
                 title: str) -> Path:
    """report.json, overlays/*.png, grasp_regions/*.ply and index.html in ``out_dir``."""
    import cv2

    from avag_ros.outputs import overlay_bgr

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "overlays").mkdir(exist_ok=True)
    (out_dir / "grasp_regions").mkdir(exist_ok=True)
    by_det = {r["detection"]: r for r in result["records"]}
    rows = []
    for i, d in enumerate(dets):
        name = f"event_{i:03d}"
        cells = {"event": name, "onset_s": f"{d.onset_ns / 1e9:.3f}", "inference_ms": f"{d.inference_ms:.1f}"}
        if d.rgb is not None:
            cv2.imwrite(str(out_dir / "overlays" / f"{name}.png"),
                        overlay_bgr(d.rgb, d.function_mask, d.dependency_mask, 0.5))
            cells["overlay"] = f"overlays/{name}.png"
        if d.points is not None and d.points.shape[0]:
            write_ply(out_dir / "grasp_regions" / f"{name}.ply", d.points, d.colors, d.probability)
            cells["points"] = str(d.points.shape[0])
        rec = by_det.get(i)
        if rec:
            cells.update(category=rec["category"], miou_f=f"{rec['miou_function']:.3f}",
                         fscore_f=f"{rec['fscore_function']:.3f}")
        rows.append(cells)
    clean = json.loads(json.dumps(result, default=float).replace("NaN", "null"))
    (out_dir / "report.json").write_text(json.dumps(clean, indent=2))
    ev, seg, lat = result["events"], result["segmentation"], result["latency_ms"]

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

    summary = {**{f"events.{k}": v for k, v in ev.items()},
               **{f"seg.{k}": v for k, v in seg.items()},
               **{f"latency.{k}": v for k, v in lat.items()},
               **{f"not_actions.{k}": v for k, v in result["heard"].items()}}
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
             "img{max-width:320px}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><h2>Summary</h2><table>"]
    parts += [f"<tr><th align=left>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in summary.items()]
    parts.append("</table><h2>Events</h2><table><tr><th>event</th><th>onset (s)</th><th>category</th>"
                 "<th>mIoU f</th><th>F f</th><th>ms</th><th>points</th><th>overlay</th></tr>")
    for c in rows:
        img = f"<img src='{c['overlay']}'>" if "overlay" in c else ""
        parts.append(
            f"<tr><td>{c['event']}</td><td>{c['onset_s']}</td><td>{html.escape(c.get('category', 'unmatched'))}</td>"
            f"<td>{c.get('miou_f', '')}</td><td>{c.get('fscore_f', '')}</td><td>{c['inference_ms']}</td>"
            f"<td>{c.get('points', '0')}</td><td>{img}</td></tr>")
    parts.append("</table><h2>Sounds rejected as not actions (no masks)</h2><table>"
                 "<tr><th>onset (s)</th><th>heard</th><th>confidence</th></tr>")
    parts += [f"<tr><td>{r['onset_s']:.3f}</td><td>{html.escape(r['label'])}</td><td>{r['confidence']:.2f}</td></tr>"
              for r in result.get("rejected", [])]
    parts.append("</table><p>Red: function region (where the action happens). Blue: dependency "
                 "region. Point clouds (PLY) are in grasp_regions/, camera optical frame.</p></body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts))
    return index
