"""Synthetic AV-AG generator: deterministic, valid AVAGD layout, audio-dependent masks."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avag_core.cli.main import main
from avag_core.data import AVAGDDataset, DataConfig, load_audio
from avag_core.data.synth import (
    AFFORDANCES,
    SEEN,
    SOUND_FAMILIES,
    UNSEEN,
    generate,
    synth_action_sound,
)
from avag_core.errors import AvagError


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _rows(root: Path, split: str) -> list[dict[str, str]]:
    with (root / f"{split}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mask(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(root / rel)) > 127


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    base = tmp_path_factory.mktemp("synth")
    return generate(base / "a", seed=0, size="tiny")


def test_same_seed_same_bytes_other_seed_differs(synth, tmp_path):
    again = generate(tmp_path / "b", seed=0, size="tiny")
    first = _tree_hashes(synth)
    assert first == _tree_hashes(again)
    other = _tree_hashes(generate(tmp_path / "c", seed=1, size="tiny"))
    common = set(first) & set(other)
    # Images, sounds and function masks all change (empty dependency masks may coincide).
    varied = [k for k in common if k.endswith((".jpg", ".wav", "_Function_mask.png"))]
    assert varied and all(first[k] != other[k] for k in varied)


def test_one_split_alone_is_the_same_as_made_with_the_others(synth, tmp_path):
    """The demo makes only ``val``: its samples must be those of the whole data set."""
    alone = generate(tmp_path / "v", seed=0, size="tiny", splits=("val",))
    assert not (alone / "train.csv").exists() and not (alone / "unseen.csv").exists()
    assert _rows(alone, "val") == _rows(synth, "val")
    whole, only = _tree_hashes(synth), _tree_hashes(alone)
    files = [k for k in only if k != "metadata.json"]
    assert files and all(only[k] == whole[k] for k in files)
    with pytest.raises(AvagError, match="unknown split"):
        generate(tmp_path / "w", seed=0, size="tiny", splits=("test",))


def test_layout_is_avagd_and_loads(synth):
    meta = json.loads((synth / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["size"] == "tiny"
    for split in ("train", "val", "unseen"):
        rows = _rows(synth, split)
        assert len(rows) == meta["counts"][split] > 0
        for r in rows:
            img = Path(r["image"])
            assert len(img.parts) == 3  # <object>/<affordance>/<file>
            assert r["mask_func"] == f"{img.parent}/{img.stem}_Function_mask.png"
            assert r["mask_dep"] == f"{img.parent}/{img.stem}_Dependency_mask.png"
            assert Path(r["audio"]).parent == img.parent
            m = np.asarray(Image.open(synth / r["mask_func"]))
            assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
            assert m.shape == np.asarray(Image.open(synth / r["image"])).shape[:2]
        ds = AVAGDDataset(synth, f"{split}.csv", 64, train=split == "train",
                          cfg=DataConfig(cache_dir=""))  # fmt: skip
        it = ds[0]
        assert it["image"].shape == (3, 64, 64) and it["mask_func"].sum() > 0
        assert it["category"] == "/".join(Path(rows[0]["image"]).parts[:2])
    assert any(" " in r["image"] for r in _rows(synth, "train"))
    assert (
        main(["data", "check", "--data", str(synth), "--csv", "train.csv", "--csv", "unseen.csv"])
        == 0
    )


def test_same_image_different_sounds_and_masks(synth):
    by_image: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(synth, "train"):
        by_image[hashlib.sha256((synth / r["image"]).read_bytes()).hexdigest()].append(r)
    assert all(len(group) >= 2 for group in by_image.values())
    for group in by_image.values():
        masks = [_mask(synth, r["mask_func"]) for r in group]
        sounds = [(synth / r["audio"]).read_bytes() for r in group]
        affs = {Path(r["image"]).parts[1] for r in group}
        assert len(affs) == len(group)
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                assert sounds[i] != sounds[j]
                assert not np.array_equal(masks[i], masks[j])
                overlap = (masks[i] & masks[j]).sum() / max(min(masks[i].sum(), masks[j].sum()), 1)
                assert overlap < 0.5  # function regions are different parts


def test_every_category_has_two_affordances_and_regions_are_sizeable(synth):
    for split in ("train", "val", "unseen"):
        per_cat: dict[str, set[str]] = defaultdict(set)
        for r in _rows(synth, split):
            obj, aff = Path(r["image"]).parts[:2]
            per_cat[obj].add(aff)
            func = _mask(synth, r["mask_func"])
            assert func.mean() > 0.003  # not a few pixels
        assert all(len(affs) >= 2 for affs in per_cat.values())
    empties = sum(not _mask(synth, r["mask_dep"]).any() for r in _rows(synth, "train"))
    assert empties > 0


def test_unseen_categories_disjoint_but_use_seen_affordances(synth):
    train_objs = {Path(r["image"]).parts[0] for r in _rows(synth, "train")}
    val_objs = {Path(r["image"]).parts[0] for r in _rows(synth, "val")}
    unseen_objs = {Path(r["image"]).parts[0] for r in _rows(synth, "unseen")}
    train_affs = {Path(r["image"]).parts[1] for r in _rows(synth, "train")}
    unseen_affs = {Path(r["image"]).parts[1] for r in _rows(synth, "unseen")}
    assert val_objs <= train_objs
    assert unseen_objs and not unseen_objs & train_objs
    assert unseen_affs <= train_affs
    assert {c.name for c in UNSEEN} == unseen_objs and {c.name for c in SEEN} == train_objs


def test_audio_has_varied_rates_and_channels(tmp_path):
    root = generate(tmp_path / "s", seed=3, size="tiny")
    formats = set()
    for split in ("train", "val", "unseen"):
        for r in _rows(root, split):
            wave, rate = load_audio(root / r["audio"])
            formats.add((rate, wave.shape[0]))
            assert 1.0 <= wave.shape[1] / rate <= 2.3
    assert (16000, 1) in formats and len(formats) >= 2


def test_action_sounds_deterministic_and_distinct():
    """Same rng -> same clip; a nearest-centroid on log-mel statistics tells families apart."""
    from avag_core.modeling.audio_frontend import waveform_to_patches

    a = synth_action_sound("twist", np.random.default_rng(5))
    b = synth_action_sound("twist", np.random.default_rng(5))
    assert a.dtype == np.float32 and np.array_equal(a, b) and np.abs(a).max() <= 1.0
    names = list(SOUND_FAMILIES)
    assert set(names) == set(AFFORDANCES)
    feats, labels = [], []
    for k, aff in enumerate(names):
        for j in range(8):
            rate = 16000
            clip = synth_action_sound(aff, np.random.default_rng([k, j]), sample_rate=rate)
            p = waveform_to_patches(clip, rate)[0]
            feats.append(torch.cat([p.mean(0), p.std(0), (p[1:] - p[:-1]).abs().mean(0)]).numpy())
            labels.append(k)
    x, y = np.array(feats), np.array(labels)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    train = np.arange(len(y)) % 4 != 0
    cents = np.stack([x[train & (y == k)].mean(0) for k in range(len(names))])
    pred = np.argmin(((x[~train][:, None] - cents[None]) ** 2).sum(-1), axis=1)
    assert (pred == y[~train]).mean() >= 0.75
    with pytest.raises(ValueError, match="unknown affordance"):
        synth_action_sound("fly", np.random.default_rng(0))


def test_cli_synth_and_bad_size(tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(tmp_path / "o"),
                "--seed",
                "2",
                "--size",
                "tiny",
                "--quiet",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "o" / "unseen.csv").is_file()
    with pytest.raises(AvagError, match="unknown synth size"):
        generate(tmp_path / "x", seed=0, size="huge")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    with pytest.raises(AvagError, match="not empty"):
        generate(tmp_path / "keep", seed=0, size="tiny")
