"""Visual backbone: any timm model with multi-scale ``features_only`` outputs."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from avag_core.errors import AvagError

# Backbones known to work with the default out_indices; any timm name with features_only works.
PVT_V2 = [f"pvt_v2_b{i}" for i in range(6)] + ["pvt_v2_b2_li"]
MOBILE = [
    "mobilenetv4_conv_small",
    "mobilenetv3_large_100",
    "mobilenetv3_small_100",
    "efficientnet_lite0",
    "mobilevitv2_050",
]


class VisualBackbone(nn.Module):
    """Wraps ``timm.create_model(features_only=True)``; returns three maps, finest first."""

    def __init__(
        self,
        name: str,
        out_indices: list[int],
        pretrained: bool = False,
        weights_file: str = "",
        drop_path: float = 0.0,
    ) -> None:
        """``weights_file``: a local file in timm's layout or the model's original release
        layout (timm's filter converts e.g. ``pvt_v2_b5.pth``); ``pretrained``: timm hub."""
        super().__init__()
        kwargs: dict = {}
        if weights_file:
            if not Path(weights_file).is_file():
                raise AvagError(f"model.backbone_weights: file {weights_file} not found")
            kwargs = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(weights_file)}}
        else:
            kwargs = {"pretrained": pretrained}
        if drop_path:
            kwargs["drop_path_rate"] = drop_path
        try:
            self.body = timm.create_model(
                name, features_only=True, out_indices=tuple(out_indices), **kwargs
            )
        except RuntimeError as exc:  # unknown name, unsupported features_only, bad weights
            where = f"weights {weights_file}" if weights_file else f"model.backbone={name!r}"
            raise AvagError(f"{where}: {str(exc).splitlines()[0]}") from None
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.strides: list[int] = list(self.body.feature_info.reduction())

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(image))
