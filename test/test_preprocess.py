"""One image path for training, evaluation, prediction and the node: same frame, same pixels;
EXIF, alpha, 16-bit and float images, reduced-size JPEG decoding, one-line errors."""

from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avag_core.data import AVAGDDataset, DataConfig
from avag_core.errors import AvagError
from avag_core.predictor import Predictor
from avag_core.preprocess import (
    MAX_IMAGE_PIXELS,
    NEUTRAL_RGB,
    load_image,
    normalize,
    read_image_size,
    resize_rgb,
    to_rgb8,
)

ROOT = Path(__file__).resolve().parent / "data" / "avagd"


def _scene(h: int = 60, w: int = 90) -> np.ndarray:
    """An asymmetric picture (a gradient plus a bright block in the top-left corner)."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=2).astype(np.uint8)
    rgb[: h // 3, : w // 4] = 255
    return rgb


def test_dataset_and_predictor_give_identical_inputs_for_the_real_samples(tiny_checkpoint):
    """What `avag eval` and training feed the model == what Predictor (avag predict, the
    node) feeds it, bit for bit, on the real AVAGD sample photos."""
    predictor = Predictor.from_checkpoint(tiny_checkpoint)
    size = predictor.size
    ds = AVAGDDataset(ROOT, "examples.csv", size, train=False, cfg=DataConfig(cache_dir=""))
    assert len(ds) == 10 and not ds.bad_rows
    for i, row in enumerate(ds.rows):
        item = ds[i]
        ours = predictor._prepare_images([load_image(row.image, min_side=size)])
        assert torch.equal(ours[0], item["image"]), row.image


def test_float_and_16bit_frames_match_their_8bit_equivalent(tiny_checkpoint):
    predictor = Predictor.from_checkpoint(tiny_checkpoint)
    rgb = _scene()
    base = predictor._prepare_images([rgb])
    assert torch.equal(predictor._prepare_images([rgb.astype(np.float32) / 255.0]), base)
    assert torch.equal(predictor._prepare_images([rgb.astype(np.uint16) * 257]), base)


def test_resize_is_antialiased_like_pil():
    """The reference resizes with PIL's (antialiased) bilinear filter; so do we."""
    rgb = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    ours = resize_rgb(rgb, 64).permute(1, 2, 0).numpy().astype(int)
    pil = np.asarray(Image.fromarray(rgb).resize((64, 64), Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil).max() <= 2
    naive = torch.nn.functional.interpolate(
        torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), size=(64, 64), mode="bilinear"
    )[0].permute(1, 2, 0).numpy()
    assert np.abs(naive - pil).mean() > 5 * np.abs(ours - pil).mean()


@pytest.mark.parametrize("orientation,undo", [(6, Image.Transpose.ROTATE_90),
                                              (8, Image.Transpose.ROTATE_270),
                                              (3, Image.Transpose.ROTATE_180)])  # fmt: skip
def test_exif_orientation_is_applied(tmp_path, orientation, undo):
    upright = _scene()
    stored = Image.fromarray(upright).transpose(undo)  # how a phone stores a turned photo
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    got = load_image(path)
    assert got.shape == upright.shape
    assert read_image_size(path) == upright.shape[:2]
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 4


def test_exif_oriented_image_and_its_masks_load_in_the_dataset(tmp_path):
    """A turned phone photo with EXIF orientation gives the same sample as the upright
    photo: masks drawn on the upright view line up."""
    import soundfile as sf

    upright = _scene()
    mask = np.zeros(upright.shape[:2], np.uint8)
    mask[: upright.shape[0] // 3, : upright.shape[1] // 4] = 255  # the bright block, upright
    folder = tmp_path / "cup" / "pour"
    folder.mkdir(parents=True)
    Image.fromarray(upright).save(folder / "up.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(
        folder / "turned.jpg", quality=95, exif=exif.tobytes())
    Image.fromarray(mask).save(folder / "m.png")
    Image.fromarray(np.zeros_like(mask)).save(folder / "d.png")
    sf.write(folder / "a.wav", np.zeros(16000, np.float32), 16000)
    with (tmp_path / "x.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "audio", "mask_func", "mask_dep"])
        for name in ("up.jpg", "turned.jpg"):
            w.writerow([f"cup/pour/{name}", "cup/pour/a.wav", "cup/pour/m.png", "cup/pour/d.png"])
    ds = AVAGDDataset(tmp_path, "x.csv", 32, train=False, cfg=DataConfig(cache_dir=""))
    up, turned = ds[0], ds[1]
    assert torch.equal(up["mask_func"], turned["mask_func"]) and up["mask_func"].sum() > 0
    assert (up["image"] - turned["image"]).abs().mean() < 0.05


def test_transparent_pixels_become_the_neutral_colour(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :15, 3] = 255  # left half opaque, right half fully transparent
    rgba[:, 15:20, 3] = 128  # a half-transparent band
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    got = load_image(path)
    assert np.all(got[:, :15] == 200)
    assert np.all(got[:, 20:] == np.array(NEUTRAL_RGB, np.uint8))
    band = got[:, 15:20].astype(float)
    expected = 200 * 128 / 255 + np.array(NEUTRAL_RGB) * (1 - 128 / 255)
    assert np.abs(band - expected).max() <= 1
    # the neutral colour is the normalisation's mean: transparent pixels carry no signal
    x = normalize(resize_rgb(got, 30))
    assert x[:, :, 21:].abs().max() < 0.02
    # a palette image with a transparent index goes the same way
    idx = np.zeros((6, 8), np.uint8)
    idx[:, 4:] = 1
    pal = Image.fromarray(idx, "P")
    pal.putpalette([200, 200, 200, 0, 0, 0])
    pal.save(tmp_path / "pal.png", transparency=1)
    got = load_image(tmp_path / "pal.png")
    assert np.all(got[:, :4] == 200) and np.all(got[:, 4:] == np.array(NEUTRAL_RGB, np.uint8))


def test_float_and_16bit_files(tmp_path):
    grey = np.linspace(0.0, 1.0, 40 * 50, dtype=np.float32).reshape(40, 50)
    Image.fromarray(grey, "F").save(tmp_path / "unit.tif")
    got = load_image(tmp_path / "unit.tif")
    assert got.shape == (40, 50, 3) and got.max() == 255 and got.min() == 0
    np.testing.assert_array_equal(got[..., 0], np.rint(grey * 255).astype(np.uint8))
    deep = (grey * 65535).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    got16 = load_image(tmp_path / "deep.png")
    assert np.abs(got16[..., 0].astype(int) - np.rint(grey * 255).astype(int)).max() <= 1
    dark = np.full((8, 8), 200, np.uint16)  # a dark 16-bit image stays dark (not rescaled)
    Image.fromarray(dark).save(tmp_path / "dark.png")
    assert load_image(tmp_path / "dark.png").max() == 1


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path):
    big = np.asarray(Image.fromarray(_scene(60, 80)).resize((4000, 3000), Image.BILINEAR))
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=90)
    reduced = load_image(path, min_side=256)
    assert reduced.shape == (375, 500, 3)  # 1/8: the largest scale keeping both sides >= 256
    assert load_image(path, min_side=600).shape == (750, 1000, 3)  # 1/4
    full = load_image(path)
    assert full.shape == (3000, 4000, 3)
    a = resize_rgb(reduced, 256).float()
    b = resize_rgb(full, 256).float()
    assert (a - b).abs().mean() < 3


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("w,h", [(20000, 10000), (14000, 13000)])
def test_oversized_image_is_one_line(tmp_path, w, h):
    assert w * h > MAX_IMAGE_PIXELS
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(w, h))
    for fn in (load_image, read_image_size):
        with pytest.raises(AvagError, match=r"huge\.png is .* MP limit: refused|huge\.png is larger") as e:
            fn(path)
        assert "\n" not in str(e.value)


def test_bad_files_are_one_line(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(_scene()).save(good, quality=90)
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.jpg").write_text("not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    cases = {"trunc.jpg": "cannot decode image", "text.jpg": "cannot read image",
             "empty.png": "cannot read image", "gone.png": "does not exist"}  # fmt: skip
    for name, msg in cases.items():
        with pytest.raises(AvagError, match=msg) as e:
            load_image(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    for bad, msg in [(np.full((4, 4, 3), np.nan, np.float32), "NaN"),
                     (np.zeros((4, 4, 2), np.uint8), "shape"),
                     (np.zeros((0, 4, 3), np.uint8), "shape")]:  # fmt: skip
        with pytest.raises(AvagError, match=msg):
            to_rgb8(bad)
