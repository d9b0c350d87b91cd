"""Segmentation head: squeeze the per-query maps to one (SE-weighted), then 2x upsampling
stages (conv + BN + ReLU + bilinear) back towards the input resolution."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExciteFusion(nn.Module):
    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)
        )
        mid = max(hidden // 8, 1)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(hidden, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, hidden, 1),
            nn.Sigmoid(),
        )
        self.final = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.final(x * self.se(x))


class ProgressiveUpsample(nn.Module):
    def __init__(self, steps: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 1
        for _ in range(steps):
            layers += [
                nn.Conv2d(ch, ch * 2, 3, padding=1),
                nn.BatchNorm2d(ch * 2),
                nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 1))
        self.up = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class SegmentationHead(nn.Module):
    def __init__(self, num_queries: int, hidden: int, upsamples: int) -> None:
        super().__init__()
        self.fuse = SqueezeExciteFusion(num_queries, hidden)
        self.upsample = ProgressiveUpsample(upsamples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, Q, h, w] -> [B, 1, h * 2**upsamples, w * 2**upsamples]."""
        return self.upsample(self.fuse(x))
