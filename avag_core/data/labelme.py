"""Annotation projects in LabelMe's JSON format, and their import back into AVAGD samples.

LabelMe (``pip install labelme``) opens a folder of images with one ``<stem>.json`` beside
each; shapes are polygons labelled ``function`` or ``dependency``. avag writes the model's
masks as starting polygons and keeps its own fields under the top-level ``avag`` key
(category, audio clip, event time), which LabelMe carries through when it saves.

Polygons are rasterised the way LabelMe draws them (``PIL.ImageDraw.polygon`` with a
1-pixel outline), so what the annotator sees is what the mask becomes. A polygon has no
holes: a mask with a hole comes back filled.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.errors import AvagError

LABELS = ("function", "dependency")
LABELME_VERSION = "5.4.1"
DEFAULT_CATEGORY = "unlabelled/event"


def mask_to_polygons(mask: np.ndarray, min_area: float = 9.0, tolerance: float = 0.7) -> list[list[list[float]]]:
    """Outer contours of ``mask`` as ``[[x, y], ...]`` polygons (regions under ``min_area``
    pixels dropped; vertices simplified within ``tolerance`` pixels)."""
    import cv2

    m = np.ascontiguousarray(np.asarray(mask, dtype=bool).astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = []
    for c in contours:
        if cv2.contourArea(c) < min_area:  # specks and 1-pixel lines
            continue
        approx = cv2.approxPolyDP(c, tolerance, True) if tolerance > 0 else c
        if len(approx) < 3:
            continue
        out.append([[float(x), float(y)] for x, y in approx[:, 0, :]])
    return out


def polygons_to_mask(polygons: list[list[list[float]]], height: int, width: int) -> np.ndarray:
    """Rasterise polygons (union) to a bool ``[H, W]`` mask, as LabelMe draws them."""
    from PIL import Image, ImageDraw

    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        xy = [tuple(map(float, p)) for p in poly]
        draw.polygon(xy, outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def labelme_document(
    image_name: str, height: int, width: int, masks: dict[str, np.ndarray], avag: dict[str, Any]
) -> dict[str, Any]:
    """A LabelMe file for ``image_name`` with one polygon shape per mask region."""
    shapes = []
    for label in LABELS:
        for poly in mask_to_polygons(masks.get(label, np.zeros((height, width), bool))):
            shapes.append({"label": label, "points": poly, "group_id": None, "description": "",
                           "shape_type": "polygon", "flags": {}, "mask": None})  # fmt: skip
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_name,
            "imageData": None, "imageHeight": int(height), "imageWidth": int(width),
            "avag": avag}  # fmt: skip


@dataclass
class Annotation:
    """One LabelMe file, checked: the image it annotates and its two masks."""

    json_path: Path
    image: Path
    audio: Path
    category: str
    masks: dict[str, np.ndarray]


def _shape_polygon(shape: dict[str, Any], where: str) -> list[list[float]]:
    kind = shape.get("shape_type") or "polygon"
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        raise AvagError(f"{where}: shape has no [x, y] point list")
    try:
        pts = [[float(x), float(y)] for x, y in pts]
    except (TypeError, ValueError):
        raise AvagError(f"{where}: shape has non-numeric points") from None
    if not all(np.isfinite(p).all() for p in pts):
        raise AvagError(f"{where}: shape has NaN or infinite points")
    if kind == "polygon":
        if len(pts) < 3:
            raise AvagError(f"{where}: polygon with {len(pts)} point(s), needs 3 or more")
        return pts
    if kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    raise AvagError(f"{where}: shape type {kind!r} is not supported (draw polygons or rectangles)")


def read_annotation(json_path: str | Path) -> Annotation:
    """Parse and check one LabelMe file (one-line errors naming the file)."""
    from avag_core.preprocess import read_image_size

    json_path = Path(json_path)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AvagError(f"cannot read annotation {json_path}: {exc}".splitlines()[0]) from None
    except json.JSONDecodeError as exc:
        raise AvagError(f"annotation {json_path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise AvagError(f"annotation {json_path} is not a LabelMe file (no 'shapes' list)")
    folder = json_path.parent
    image_name = doc.get("imagePath")
    if not isinstance(image_name, str) or not image_name:
        raise AvagError(f"annotation {json_path} names no imagePath")
    image = (folder / image_name.replace("\\", "/")).resolve()
    if folder.resolve() not in image.parents:
        raise AvagError(f"annotation {json_path}: imagePath {image_name!r} leaves the project folder")
    height, width = read_image_size(image)
    extra = doc.get("avag") if isinstance(doc.get("avag"), dict) else {}
    audio_name = extra.get("audio") or f"{Path(image_name).stem}.wav"
    audio = (folder / str(audio_name)).resolve()
    if folder.resolve() not in audio.parents:
        raise AvagError(f"annotation {json_path}: audio {audio_name!r} leaves the project folder")
    if not audio.is_file():
        raise AvagError(f"annotation {json_path}: audio clip {audio} does not exist")
    category = str(extra.get("category") or DEFAULT_CATEGORY).strip("/")
    parts = category.split("/")
    if len(parts) != 2 or not all(p and p not in (".", "..") for p in parts):
        raise AvagError(f"annotation {json_path}: category {category!r} must look like object/affordance")
    polys: dict[str, list] = {label: [] for label in LABELS}
    for i, shape in enumerate(doc["shapes"]):
        where = f"annotation {json_path} shape {i}"
        if not isinstance(shape, dict):
            raise AvagError(f"{where}: not an object")
        label = str(shape.get("label", "")).strip().lower()
        if label not in LABELS:
            raise AvagError(f"{where}: label {shape.get('label')!r} is neither function nor dependency")
        polys[label].append(_shape_polygon(shape, where))
    masks = {label: polygons_to_mask(p, height, width) for label, p in polys.items()}
    return Annotation(json_path, image, audio, category, masks)


def _save_mask(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)


def import_project(
    project: str | Path, out: str | Path, val_every: int = 0, csv_name: str = "train.csv"
) -> dict[str, Any]:
    """LabelMe project -> AVAGD layout under ``out``: ``<object>/<affordance>/`` images,
    clips and ``_Function_mask.png`` / ``_Dependency_mask.png``; ``csv_name`` lists them
    (``val_every`` = k > 0 sends every k-th sample to ``val.csv`` instead).

    Every file is checked before anything is written, so a bad annotation changes nothing.
    """
    project, out = Path(project), Path(out)
    files = sorted(project.glob("*.json"))
    if not files:
        raise AvagError(f"no LabelMe .json files in {project}")
    annotations = [read_annotation(f) for f in files]
    rows: dict[str, list[list[str]]] = {csv_name: [], "val.csv": []}
    for i, ann in enumerate(annotations):
        folder = out / ann.category
        folder.mkdir(parents=True, exist_ok=True)
        stem = ann.image.stem
        image_dst = folder / ann.image.name
        audio_dst = folder / f"{stem}{ann.audio.suffix}"
        for src, dst in ((ann.image, image_dst), (ann.audio, audio_dst)):
            if src.resolve() != dst.resolve():
                shutil.copyfile(src, dst)
        _save_mask(ann.masks["function"], folder / f"{stem}_Function_mask.png")
        _save_mask(ann.masks["dependency"], folder / f"{stem}_Dependency_mask.png")
        rel = f"{ann.category}/{stem}"
        row = [f"{ann.category}/{ann.image.name}", f"{ann.category}/{audio_dst.name}",
               f"{rel}_Function_mask.png", f"{rel}_Dependency_mask.png"]  # fmt: skip
        target = "val.csv" if val_every > 0 and (i + 1) % val_every == 0 else csv_name
        rows[target].append(row)
    written = []
    for name, items in rows.items():
        if not items:
            continue
        with (out / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "audio", "mask_func", "mask_dep"])
            w.writerows(items)
        written.append((name, len(items)))
    return {"samples": len(annotations), "csv": written, "out": str(out)}
