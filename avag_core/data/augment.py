"""Paired augmentation: one random geometric transform for the image and both masks.

torchvision's v2 transforms draw their random parameters once per call and apply them
to every input, resampling ``Mask`` inputs with nearest-neighbour and leaving them out of
colour transforms; so geometry stays aligned and colour jitter touches the image only.
"""

from __future__ import annotations

import torch

from .config import DataConfig


class PairedAugment:
    """Random affine + horizontal flip on (image, masks), colour jitter on the image."""

    def __init__(self, cfg: DataConfig) -> None:
        from torchvision.transforms import v2

        self.transform = v2.Compose(
            [
                v2.RandomApply(
                    [
                        v2.RandomAffine(
                            degrees=cfg.affine_degrees,
                            translate=(cfg.affine_translate, cfg.affine_translate),
                            scale=(cfg.affine_scale_min, cfg.affine_scale_max),
                            shear=cfg.affine_shear,
                            # Masks are always resampled nearest-neighbour by v2.
                            interpolation=v2.InterpolationMode.BILINEAR,
                        )
                    ],
                    p=cfg.affine_prob,
                ),
                v2.RandomHorizontalFlip(p=cfg.hflip_prob),
                v2.RandomApply(
                    [
                        v2.ColorJitter(
                            brightness=cfg.brightness,
                            contrast=cfg.contrast,
                            saturation=cfg.saturation,
                            hue=cfg.hue,
                        )
                    ],
                    p=cfg.jitter_prob,
                ),
            ]
        )

    def __call__(self, image: torch.Tensor, *masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``image`` uint8 [3,H,W]; masks uint8 [1,H,W]; returns the same types and shapes."""
        from torchvision import tv_tensors

        out = self.transform(tv_tensors.Image(image), *(tv_tensors.Mask(m) for m in masks))
        return tuple(t.as_subclass(torch.Tensor) for t in out)
