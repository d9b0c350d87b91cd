"""AVAGFormer model: components, config and builder.

The model classes load on first use (PEP 562): reading a config (``avag_core.modeling.config``)
must not import torch, timm and torchvision, which cost seconds before ``avag --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avag_core.lazy import lazy_attributes
from avag_core.modeling.config import ModelConfig

if TYPE_CHECKING:
    from avag_core.modeling.avagformer import AVAGFormer, build_model, count_parameters

# ImageNet statistics: every supported backbone was pretrained with them.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

__getattr__ = lazy_attributes(
    __name__, {n: ".avagformer" for n in ("AVAGFormer", "build_model", "count_parameters")})

__all__ = [
    "IMAGE_MEAN",
    "IMAGE_STD",
    "AVAGFormer",
    "ModelConfig",
    "build_model",
    "count_parameters",
]

