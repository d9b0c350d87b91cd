"""AVAGD loader on the real example rows: shapes, masks, audio, categories, line numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avag_core.data import AVAGDDataset, DataConfig, collate_batch, load_audio
from avag_core.errors import AvagError
from avag_core.modeling import IMAGE_MEAN, IMAGE_STD

ROOT = Path(__file__).resolve().parent / "data" / "avagd"
CSV = ROOT / "examples.csv"
SIZE = 96


@pytest.fixture(scope="module")
def val_items(tmp_path_factory):
    cfg = DataConfig(cache_dir=str(tmp_path_factory.mktemp("cache")))
    ds = AVAGDDataset(ROOT, CSV, SIZE, train=False, cfg=cfg)
    return ds, [ds[i] for i in range(len(ds))]


def _rows():
    with CSV.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_examples_load_with_contract_shapes(val_items):
    ds, items = val_items
    assert len(ds) == len(_rows()) == 10
    for i, it in enumerate(items):
        assert it["image"].shape == (3, SIZE, SIZE) and it["image"].dtype == torch.float32
        for key in ("mask_func", "mask_dep"):
            assert it[key].shape == (1, SIZE, SIZE) and it[key].dtype == torch.float32
            assert set(it[key].unique().tolist()) <= {0.0, 1.0}
        assert it["audio"].dim() == 3 and it["audio"].shape[1:] == (96, 64)
        assert it["index"] == i and it["csv_line"] == i + 2  # header is line 1
        obj, aff = it["category"].split("/")
        assert Path(it["image_path"]).parent.parts[-2:] == (obj, aff)
        assert it["mask_func"].sum() > 0  # every example has a function region


def test_masks_match_files_and_empty_dependency(val_items):
    _ds, items = val_items
    empty = 0
    for row, it in zip(_rows(), items, strict=True):
        dep = np.asarray(Image.open(ROOT / row["mask_dep"]).convert("L")) > 127
        if not dep.any():
            empty += 1
            assert it["mask_dep"].sum() == 0
        else:
            assert it["mask_dep"].sum() > 0
        func = np.asarray(Image.open(ROOT / row["mask_func"]).convert("L")) > 127
        frac = func.mean()
        assert abs(it["mask_func"].mean().item() - frac) < 0.05 + frac * 0.3
    assert empty >= 1


def test_file_name_with_space_loads(val_items):
    _ds, items = val_items
    spaced = [it for it in items if " " in Path(it["image_path"]).name]
    assert spaced and spaced[0]["mask_func"].sum() > 0


def test_image_normalisation_matches_resized_pixels(val_items):
    _ds, items = val_items
    it = items[0]
    mean = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(3, 1, 1)
    pixels = (it["image"] * std + mean) * 255
    ref = Image.open(it["image_path"]).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    ref_t = torch.from_numpy(np.array(ref)).permute(2, 0, 1).float()
    assert (pixels - ref_t).abs().mean() < 6.0


def test_mp3_decodes_and_patch_count_follows_duration(val_items):
    _ds, items = val_items
    row = _rows()[0]
    wave, rate = load_audio(ROOT / row["audio"])
    assert rate == 44100 and wave.shape[0] == 2 and wave.dtype == np.float32
    frames = 1 + (round(wave.shape[1] * 16000 / rate) - 400) // 160
    assert items[0]["audio"].shape[0] == max(1, frames // 96)


def test_collate_pads_audio_with_mask(val_items):
    _ds, items = val_items
    batch = collate_batch(items[:4])
    lengths = [it["audio"].shape[0] for it in items[:4]]
    assert batch["audio"].shape == (4, max(lengths), 96, 64)
    assert batch["audio_mask"].dtype == torch.bool
    assert batch["audio_mask"].sum(1).tolist() == lengths
    for i, n in enumerate(lengths):
        assert torch.equal(batch["audio"][i, :n], items[i]["audio"])
        assert batch["audio"][i, n:].abs().sum() == 0
    assert batch["image"].shape == (4, 3, SIZE, SIZE)
    assert batch["csv_line"].tolist() == [2, 3, 4, 5]
    assert len(batch["category"]) == 4


def test_max_audio_patches_truncates(tmp_path):
    cfg = DataConfig(cache_dir="")
    ds = AVAGDDataset(ROOT, CSV, 64, train=False, cfg=cfg, max_audio_patches=2)
    longest = max(range(len(ds)), key=lambda i: ds.cache.patches(ds.rows[i].audio).shape[0])
    assert ds.cache.patches(ds.rows[longest].audio).shape[0] > 2
    assert ds[longest]["audio"].shape[0] == 2


@pytest.mark.parametrize(
    ("fmt", "ext", "rate", "channels"),
    [("WAV", "wav", 8000, 1), ("WAV", "wav", 48000, 2), ("FLAC", "flac", 22050, 3),
     ("OGG", "ogg", 44100, 2)],
)  # fmt: skip
def test_audio_formats_rates_channels_resample_alike(tmp_path, fmt, ext, rate, channels):
    from avag_core.modeling.audio_frontend import waveform_to_patches

    t = np.arange(int(2.0 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / f"tone.{ext}"
    sf.write(str(path), np.stack([tone] * channels, axis=1), rate, format=fmt)
    wave, got_rate = load_audio(path)
    assert got_rate == rate and wave.shape[0] == channels
    ref_t = np.arange(int(2.0 * 16000)) / 16000
    ref = waveform_to_patches(0.5 * np.sin(2 * np.pi * 1000 * ref_t), 16000)
    got = waveform_to_patches(wave, rate)
    assert got.shape == ref.shape
    # The 1 kHz band dominates in both.
    assert got.mean(dim=(0, 1)).argmax() == ref.mean(dim=(0, 1)).argmax()


def test_load_audio_names_file_on_failure(tmp_path):
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(b"this is not audio at all" * 20)
    with pytest.raises(AvagError, match=r"noise\.mp3"):
        load_audio(bad)
    with pytest.raises(AvagError, match=r"missing\.wav"):
        load_audio(tmp_path / "missing.wav")


def test_any_image_mode_and_size(tmp_path):
    """Palette, grey+alpha, RGBA and 16-bit images load as RGB; masks in other modes work."""
    rng = np.random.default_rng(0)
    rows = []
    modes = {"P": "png", "LA": "png", "RGBA": "png", "I;16": "png", "L": "jpg", "CMYK": "jpg"}
    for i, (mode, ext) in enumerate(modes.items()):
        w, h = 40 + 7 * i, 30 + 5 * i
        rgb = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        img = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
        img.save(tmp_path / f"im{i}.{ext}")
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2] = 255
        Image.fromarray(mask).convert("RGB" if i % 2 else "L").save(tmp_path / f"im{i}_f.png")
        sf.write(str(tmp_path / f"a{i}.wav"), rng.standard_normal(16000) * 0.1, 16000)
        rows.append(f"im{i}.{ext},a{i}.wav,im{i}_f.png,")
    (tmp_path / "x.csv").write_text("image,audio,mask_func,mask_dep\n" + "\n".join(rows) + "\n")
    ds = AVAGDDataset(
        tmp_path, "x.csv", 32, train=True, cfg=DataConfig(cache_dir="", affine_prob=0, hflip_prob=0)
    )
    for i in range(len(ds)):
        it = ds[i]
        assert it["image"].shape == (3, 32, 32) and torch.isfinite(it["image"]).all()
        assert it["mask_func"][0, :14].mean() == 1 and it["mask_func"][0, 18:].sum() == 0
        assert it["mask_dep"].sum() == 0  # empty mask_dep cell -> empty mask
