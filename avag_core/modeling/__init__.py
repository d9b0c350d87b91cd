"""AVAGFormer model: components, config and builder."""

from avag_core.modeling.avagformer import AVAGFormer, build_model, count_parameters
from avag_core.modeling.config import ModelConfig

# ImageNet statistics: every supported backbone was pretrained with them.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGE_MEAN",
    "IMAGE_STD",
    "AVAGFormer",
    "ModelConfig",
    "build_model",
    "count_parameters",
]
