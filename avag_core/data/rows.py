"""Reading and checking AVAGD CSV rows, with the CSV line number kept for every message."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from avag_core.errors import AvagError

REQUIRED_COLUMNS = ("image", "audio", "mask_func", "mask_dep")


@dataclass(frozen=True)
class Row:
    line: int  # line number in the CSV file (header = line 1)
    image: Path
    audio: Path
    mask_func: Path
    mask_dep: Path | None  # None: the CSV cell is empty -> empty dependency mask
    pkl: Path | None
    category: str  # "object/affordance"
    image_rel: str
    error: str | None = None  # why the row is unusable before any file is touched


def contained(root: Path, rel: str, allow_outside: bool) -> tuple[Path, str | None]:
    """``root / rel`` and, unless ``allow_outside``, why it leaves the data root.

    The check is on the written path (absolute, or ``..`` climbing out), so a CSV cannot
    make a tool read e.g. ``/etc/passwd`` or another user's files; symlinks placed inside
    the root by its owner are followed as usual.
    """
    path = root / rel
    if allow_outside or not rel:
        return path, None
    norm = os.path.normpath(rel)
    if os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep):
        return path, (
            f"path {rel!r} is outside the data root {root} "
            "(allow it with data.allow_outside_root / --allow-outside-root)"
        )
    return path, None


def resolve_csv(root: str | Path, csv_path: str | Path) -> Path:
    """A CSV given relative to the working folder, or else relative to the data root."""
    path = Path(csv_path)
    if not path.is_absolute() and not path.is_file() and (Path(root) / path).is_file():
        path = Path(root) / path
    if not path.is_file():
        raise AvagError(f"CSV file {csv_path} does not exist (data root {root})")
    return path


def category_of(rel: str) -> str:
    parts = Path(rel).parts
    if len(parts) >= 3:
        return f"{parts[-3]}/{parts[-2]}"
    return parts[-2] if len(parts) == 2 else "unknown"


def read_rows(root: str | Path, csv_path: Path, allow_outside: bool = False) -> list[Row]:
    """Every non-blank row; a row naming a path outside ``root`` carries an ``error``."""
    root = Path(root)
    try:
        fh = csv_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AvagError(f"cannot read CSV {csv_path}: {exc.strerror}") from None
    rows = []
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AvagError(f"CSV {csv_path} lacks column(s) {', '.join(missing)}")
        try:
            for rec in reader:
                line = reader.line_num

                def cell(name: str, rec: dict = rec) -> str:
                    return (rec.get(name) or "").strip()

                if not any(cell(c) for c in REQUIRED_COLUMNS):
                    continue  # blank line
                paths: dict[str, Path | None] = {}
                errors = []
                for col in ("image", "audio", "mask_func", "mask_dep", "pkl"):
                    if not cell(col) and col in ("mask_dep", "pkl"):
                        paths[col] = None
                        continue
                    paths[col], err = contained(root, cell(col), allow_outside)
                    if err:
                        errors.append(f"{col} {err}")
                rows.append(
                    Row(
                        line=line,
                        image=paths["image"],
                        audio=paths["audio"],
                        mask_func=paths["mask_func"],
                        mask_dep=paths["mask_dep"],
                        pkl=paths["pkl"],
                        category=category_of(cell("image")),
                        image_rel=cell("image"),
                        error=errors[0] if errors else None,
                    )
                )
        except csv.Error as exc:
            raise AvagError(f"CSV {csv_path} line {reader.line_num}: {exc}") from None
    return rows


def check_row(row: Row, use_pkl: bool = False, deep: bool = False) -> str | None:
    """Why ``row`` cannot be loaded, or None.

    Header reads only, unless ``deep`` (full decode). Feature pickles (``use_pkl``) are
    always loaded through the tensor-only loader: a refused file is a bad row up front.
    """
    from avag_core.preprocess import read_image_size

    from .audio_io import audio_info, load_audio

    if row.error:
        return row.error
    if not row.image_rel or not row.audio.name or not row.mask_func.name:
        return "empty image, audio or mask_func cell"
    needed = [("image", row.image), ("mask_func", row.mask_func)]
    if row.mask_dep is not None:
        needed.append(("mask_dep", row.mask_dep))
    needed.append(("pkl", row.pkl) if use_pkl and row.pkl is not None else ("audio", row.audio))
    for what, path in needed:
        if not path.is_file():
            return f"missing {what} file {path}"
    sizes = {}
    try:
        for what, path in needed[:-1]:
            sizes[what] = read_image_size(path)
            if deep and what == "image":
                from avag_core.preprocess import load_image

                load_image(path)
            elif deep:
                from .dataset import load_mask

                load_mask(path, sizes[what])
    except AvagError as exc:
        return str(exc)
    for what in ("mask_func", "mask_dep"):
        if what in sizes and sizes[what] != sizes["image"]:
            return (
                f"{what} size {sizes[what][1]}x{sizes[what][0]} differs from image size "
                f"{sizes['image'][1]}x{sizes['image'][0]}"
            )
    try:
        if use_pkl and row.pkl is not None:
            from .features import load_feature_pickle

            load_feature_pickle(row.pkl)
        elif deep:
            load_audio(row.audio)
        else:
            _, _, frames = audio_info(row.audio)
            if frames == 0:
                return f"audio file {row.audio} contains no samples"
    except AvagError as exc:
        return str(exc)
    return None
