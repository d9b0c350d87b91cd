"""Paired augmentation keeps image and masks aligned; colour jitter never touches masks."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avag_core.data import AVAGDDataset, DataConfig
from avag_core.modeling import IMAGE_MEAN, IMAGE_STD

SIZE = 64


@pytest.fixture
def patch_root(tmp_path):
    """Grey image with a red patch (= function mask) and a blue patch (= dependency mask)."""
    img = np.full((80, 100, 3), 128, np.uint8)
    func = np.zeros((80, 100), np.uint8)
    dep = np.zeros((80, 100), np.uint8)
    img[10:40, 15:45] = (255, 0, 0)
    func[10:40, 15:45] = 255
    img[45:75, 55:95] = (0, 0, 255)
    dep[45:75, 55:95] = 255
    Image.fromarray(img).save(tmp_path / "im.png")
    Image.fromarray(func).save(tmp_path / "im_Function_mask.png")
    Image.fromarray(dep).save(tmp_path / "im_Dependency_mask.png")
    sf.write(str(tmp_path / "a.wav"), np.zeros(16000), 16000)
    (tmp_path / "t.csv").write_text(
        "image,audio,mask_func,mask_dep\nim.png,a.wav,im_Function_mask.png,im_Dependency_mask.png\n"
    )
    return tmp_path


def _pixels(image: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def test_affine_and_flip_move_image_and_masks_together(patch_root):
    torch.manual_seed(0)
    cfg = DataConfig(cache_dir="", affine_prob=1.0, hflip_prob=0.5, jitter_prob=0.0)
    ds = AVAGDDataset(patch_root, "t.csv", SIZE, train=True, cfg=cfg)
    plain = AVAGDDataset(patch_root, "t.csv", SIZE, train=False, cfg=cfg)[0]
    moved = 0
    for _ in range(12):
        it = ds[0]
        px = _pixels(it["image"])
        red = (px[0] > 0.7) & (px[1] < 0.3) & (px[2] < 0.3)
        blue = (px[2] > 0.7) & (px[0] < 0.3) & (px[1] < 0.3)
        func, dep = it["mask_func"][0] > 0, it["mask_dep"][0] > 0
        assert func.sum() > 0 and dep.sum() > 0
        assert _iou(red, func) > 0.75 and _iou(blue, dep) > 0.75
        moved += int(not torch.equal(it["mask_func"], plain["mask_func"]))
    assert moved >= 10  # the transform really changed the geometry


def test_colour_jitter_changes_image_only(patch_root):
    torch.manual_seed(1)
    cfg = DataConfig(cache_dir="", affine_prob=0.0, hflip_prob=0.0, jitter_prob=1.0,
                     brightness=0.6, contrast=0.6, saturation=0.6, hue=0.2)  # fmt: skip
    ds = AVAGDDataset(patch_root, "t.csv", SIZE, train=True, cfg=cfg)
    plain = AVAGDDataset(patch_root, "t.csv", SIZE, train=False, cfg=cfg)[0]
    changed = 0
    for _ in range(6):
        it = ds[0]
        assert torch.equal(it["mask_func"], plain["mask_func"])
        assert torch.equal(it["mask_dep"], plain["mask_dep"])
        changed += int((it["image"] - plain["image"]).abs().mean() > 0.05)
    assert changed >= 5


def test_validation_mode_is_deterministic(patch_root):
    cfg = DataConfig(cache_dir="", affine_prob=1.0, hflip_prob=1.0, jitter_prob=1.0)
    ds = AVAGDDataset(patch_root, "t.csv", SIZE, train=False, cfg=cfg)
    a, b = ds[0], ds[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask_func"], b["mask_func"])
