"""Model hyper-parameters (owned by the modeling package).

The defaults are the ``paper`` configuration (the reference AVAGFormer); the
``realtime`` and ``tiny`` presets override them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    """Every architectural choice of AVAGFormer, so one YAML file rebuilds the same model."""

    name: str = "avagformer"
    # Square input size used for training and inference (images are resized to it).
    image_size: int = 512
    # Visual backbone: any timm model that supports ``features_only``.
    backbone: str = "pvt_v2_b5"
    # Which backbone feature levels feed the head (three levels, finest first, stride 8/16/32).
    backbone_out_indices: list[int] = field(default_factory=lambda: [1, 2, 3])
    # Local weights file (PVT-v2 release layout or timm layout); empty = random init.
    backbone_weights: str = ""
    # Ask timm for its pretrained weights (needs a reachable hub or a filled cache).
    backbone_pretrained: bool = False
    freeze_backbone: bool = True
    # Stochastic depth inside the backbone while it trains (the reference uses 0.1 for PVT).
    backbone_drop_path: float = 0.0
    # Training: feed images in channels-last layout (inference always uses it: Predictor).
    channels_last: bool = False

    # Audio encoder: "vggish" (the reference, 72 M params) or "light" (a small CNN).
    audio_encoder: str = "vggish"
    audio_weights: str = ""  # torchvggish release file, e.g. vggish-10086976.pth
    freeze_audio_encoder: bool = True
    audio_dim: int = 128  # per-patch embedding size of the audio encoder
    light_audio_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    # Longest clip, in 0.96 s patches; longer clips keep the loudest window of this length.
    max_audio_patches: int = 20

    # Shared token width (deformable encoder, audio tokens, mixer, queries).
    embed_dim: int = 256
    encoder_layers: int = 6
    encoder_heads: int = 8
    encoder_points: int = 4
    encoder_ffn_dim: int = 2048
    dropout: float = 0.1
    group_norm_groups: int = 32

    fpn_dim: int = 128
    mixer_heads: int = 8

    num_queries: int = 300
    query_layers: int = 6
    query_heads: int = 8
    query_ffn_dim: int = 1024
    use_learnable_queries: bool = True

    decoder_dim: int = 16
    decoder_heads: int = 4
    seg_hidden_dim: int = 64
    seg_upsamples: int = 3
