"""Top-down feature pyramid: lateral 1x1 convs, upsample-and-add, 3x3 output convs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SimpleFPN(nn.Module):
    def __init__(self, in_dims: list[int], out_dim: int) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_dim, 1) for c in in_dims)
        self.output_convs = nn.ModuleList(
            nn.Conv2d(out_dim, out_dim, 3, padding=1) for _ in in_dims
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """feats finest first; returns maps at the same scales with ``out_dim`` channels."""
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats, strict=True)]
        for i in range(len(lat) - 1, 0, -1):
            up = F.interpolate(
                lat[i], size=lat[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
            lat[i - 1] = lat[i - 1] + up
        return [conv(x) for conv, x in zip(self.output_convs, lat, strict=True)]
