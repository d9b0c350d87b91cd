"""Writing a synthetic AV-AG dataset in the exact AVAGD layout.

``<object>/<affordance>/<stem>.jpg`` + ``<stem>_Function_mask.png`` +
``<stem>_Dependency_mask.png`` + a WAV clip, and ``train.csv``/``val.csv``/``unseen.csv``
with paths relative to the root. Each image is written once per affordance of its
category (identical bytes) with a different sound and different masks, which is what
makes the audio necessary. Every file depends only on (seed, split, category, index),
so the output is byte-identical for a given seed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from avag_core.errors import AvagError

from .render import render
from .sounds import SOUND_FAMILIES, synth_action_sound
from .world import AFFORDANCES, SEEN, UNSEEN, Category

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SizeSpec:
    train_per_category: int
    val_per_category: int
    unseen_per_category: int


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(2, 1, 1),
    "small": SizeSpec(12, 4, 4),
    "medium": SizeSpec(110, 20, 20),
}
SPLITS = ("train", "val", "unseen")
_SOUND_FAMILY_NAMES = {
    "hit": "impacts", "cut": "scraping", "twist": "ratcheting", "press": "clicking",
    "roll": "rolling", "open": "creaking", "pour": "pouring", "zip": "zipping",
}  # fmt: skip
# (sample rate, channels, probability): 16 kHz mono is common, the rest tests resampling.
_AUDIO_FORMATS = ((16000, 1, 0.8), (22050, 1, 0.08), (44100, 2, 0.07), (48000, 2, 0.05))


def _encode_jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _write_mask(path: Path, mask: np.ndarray) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path, format="PNG")


def _write_sound(path: Path, affordance: str, rng: np.random.Generator) -> None:
    import soundfile as sf

    probs = np.array([p for *_, p in _AUDIO_FORMATS])
    rate, channels, _ = _AUDIO_FORMATS[rng.choice(len(_AUDIO_FORMATS), p=probs / probs.sum())]
    mono = synth_action_sound(affordance, rng, sample_rate=rate)
    if channels == 2:  # a slightly unbalanced, slightly delayed stereo pair
        delay = int(rng.integers(0, 20))
        right = np.concatenate([np.zeros(delay, np.float32), mono[: len(mono) - delay]])
        data = np.stack([mono, right * rng.uniform(0.7, 1.0)], axis=1)
    else:
        data = mono
    sf.write(str(path), data, rate, subtype="PCM_16", format="WAV")


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    roll = rng.random()
    if roll < 0.8:
        return 256, 256
    return (320, 240) if roll < 0.9 else (240, 320)


def _write_instance(
    root: Path, category: Category, split: str, index: int, seed: int, split_id: int,
    cat_id: int,
) -> list[dict[str, str]]:  # fmt: skip
    rng = np.random.default_rng([seed, split_id, cat_id, index])
    width, height = _image_size(rng)
    scene = render(category, rng, width, height)
    jpeg = _encode_jpeg(scene.image)
    # Some stems contain a space, as real AVAGD file names do.
    sep = " " if (index + cat_id) % 4 == 1 else "_"
    stem = f"{category.name}{sep}{split}_{index:04d}"
    rows = []
    for aff in category.affordances:
        folder = root / category.name / aff
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.jpg").write_bytes(jpeg)
        func_part = AFFORDANCES[aff][0]
        _write_mask(folder / f"{stem}_Function_mask.png", scene.mask(func_part))
        _write_mask(folder / f"{stem}_Dependency_mask.png", scene.mask(category.dependency_of(aff)))
        audio_name = f"{aff}_{split}_{index:04d}.wav"
        _write_sound(folder / audio_name, aff, rng)
        rel = f"{category.name}/{aff}"
        rows.append({
            "image": f"{rel}/{stem}.jpg",
            "audio": f"{rel}/{audio_name}",
            "mask_func": f"{rel}/{stem}_Function_mask.png",
            "mask_dep": f"{rel}/{stem}_Dependency_mask.png",
        })  # fmt: skip
    return rows


def metadata(seed: int, size: str, counts: dict[str, int]) -> dict:
    def cat_info(cat: Category) -> dict:
        return {
            "name": cat.name,
            "parts": sorted({p.kind for p in cat.parts}),
            "affordances": {
                a: {"function": AFFORDANCES[a][0], "dependency": cat.dependency_of(a)}
                for a in cat.affordances
            },
        }

    return {
        "format": "avagd",
        "generator": "avag data synth",
        "version": FORMAT_VERSION,
        "seed": seed,
        "size": size,
        "splits": {s: f"{s}.csv" for s in SPLITS},
        "counts": counts,
        "affordances": {
            a: {"function_part": f, "sound_family": _SOUND_FAMILY_NAMES[a]}
            for a, (f, _) in AFFORDANCES.items()
        },
        "categories": {
            "seen": [cat_info(c) for c in SEEN],
            "unseen": [cat_info(c) for c in UNSEEN],
        },
    }


def generate(
    out_dir: str | Path, seed: int = 0, size: str = "small", progress: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> Path:
    """Write the dataset to ``out_dir`` and return its root (the folder with the CSVs).
    ``splits``: only these (each sample is seeded by its split, category and index, so a
    split's samples are the same whichever others are made; the demo needs only ``val``)."""
    if size not in SIZES:
        raise AvagError(f"unknown synth size {size!r}; choose from {', '.join(SIZES)}")
    if not set(splits) <= set(SPLITS):
        raise AvagError(f"unknown split(s) {sorted(set(splits) - set(SPLITS))}; choose from {', '.join(SPLITS)}")
    assert set(_SOUND_FAMILY_NAMES) == set(SOUND_FAMILIES) == set(AFFORDANCES)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise AvagError(f"output {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / "metadata.json").is_file():
            raise AvagError(f"output folder {root} is not empty and holds no synthetic dataset")
        import shutil

        shutil.rmtree(root)  # a previous synth output: replace it wholesale
    root.mkdir(parents=True, exist_ok=True)
    spec = SIZES[size]
    plan = {
        "train": (SEEN, spec.train_per_category),
        "val": (SEEN, spec.val_per_category),
        "unseen": (UNSEEN, spec.unseen_per_category),
    }
    plan = {split: plan[split] for split in splits}
    total = sum(len(cats) * n for cats, n in plan.values())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", desc="synth", disable=None)  # no bar in a log
    counts = {}
    for split_id, split in enumerate(SPLITS):
        if split not in plan:
            continue
        cats, per_cat = plan[split]
        rows: list[dict[str, str]] = []
        for index in range(per_cat):
            for cat in cats:
                cat_id = [c.name for c in SEEN + UNSEEN].index(cat.name)
                rows += _write_instance(root, cat, split, index, seed, split_id, cat_id)
                if bar:
                    bar.update(1)
        with (root / f"{split}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["image", "audio", "mask_func", "mask_dep"])
            writer.writeheader()
            writer.writerows(rows)
        counts[split] = len(rows)
    if bar:
        bar.close()
    (root / "metadata.json").write_text(json.dumps(metadata(seed, size, counts), indent=2) + "\n")
    return root
