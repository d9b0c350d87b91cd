"""Model hyper-parameters (owned by the modeling package).

The defaults are the ``paper`` configuration (the reference AVAGFormer); the
``realtime`` and ``tiny`` presets override them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avag_core.settings import setting


@dataclass
class ModelConfig:
    """Every architectural choice of AVAGFormer, so one YAML file rebuilds the same model."""

    name: str = "avagformer"
    # Square input size used for training and inference (images are resized to it).
    image_size: int = setting(512, "square input size in pixels", lo=32, hi=2048)
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
    backbone_drop_path: float = setting(0.0, "backbone stochastic depth", lo=0.0, hi=1.0)
    # Training: feed images in channels-last layout (inference always uses it: Predictor).
    channels_last: bool = False

    # Audio encoder: "vggish" (the reference, 72 M params) or "light" (a small CNN).
    audio_encoder: str = setting("vggish", "audio encoder", choices=("vggish", "light"))
    audio_weights: str = ""  # torchvggish release file, e.g. vggish-10086976.pth
    freeze_audio_encoder: bool = True
    audio_dim: int = setting(128, "per-patch embedding size of the audio encoder", lo=1, hi=4096)
    light_audio_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    # Longest clip, in 0.96 s patches; longer clips keep the loudest window of this length.
    max_audio_patches: int = setting(20, "longest clip in 0.96 s patches (0: no limit)", lo=0, hi=1000)

    # Shared token width (deformable encoder, audio tokens, mixer, queries).
    embed_dim: int = setting(256, "shared token width", lo=1, hi=4096)
    encoder_layers: int = setting(6, "deformable encoder layers", lo=0, hi=64)
    encoder_heads: int = setting(8, "deformable encoder heads", lo=1, hi=64)
    encoder_points: int = setting(4, "sampling points per head and level", lo=1, hi=64)
    encoder_ffn_dim: int = setting(2048, "encoder FFN width", lo=1, hi=65536)
    dropout: float = setting(0.1, "dropout probability", lo=0.0, hi=1.0)
    group_norm_groups: int = setting(32, "GroupNorm groups", lo=1, hi=1024)

    fpn_dim: int = setting(128, "FPN channels", lo=1, hi=4096)
    mixer_heads: int = setting(8, "cross-modal mixer heads", lo=1, hi=64)

    num_queries: int = setting(300, "learnable queries", lo=1, hi=4096)
    query_layers: int = setting(6, "query generator layers", lo=0, hi=64)
    query_heads: int = setting(8, "query generator heads", lo=1, hi=64)
    query_ffn_dim: int = setting(1024, "query generator FFN width", lo=1, hi=65536)
    use_learnable_queries: bool = True

    decoder_dim: int = setting(16, "decoder width", lo=1, hi=4096)
    decoder_heads: int = setting(4, "decoder heads", lo=1, hi=64)
    seg_hidden_dim: int = setting(64, "segmentation head width", lo=1, hi=4096)
    seg_upsamples: int = setting(3, "2x upsamplings in the segmentation head", lo=0, hi=8)
