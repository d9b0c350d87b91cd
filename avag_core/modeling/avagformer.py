"""AVAGFormer: image + action sound -> function and dependency mask logits.

The model is split in two paths so that one frame can serve several sounds:
``encode_image`` (backbone, deformable encoder, FPN) depends on the image only, and
``decode`` (audio encoder, mixer, query generator, dual-head decoder, segmentation heads)
adds the audio. ``forward`` = ``decode(encode_image(image), audio, audio_mask)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avag_core.modeling.audio_encoder import LightAudioEncoder, VGGishEncoder, encode_real_patches
from avag_core.modeling.backbone import VisualBackbone
from avag_core.modeling.config import ModelConfig
from avag_core.modeling.decoder import DualHeadDecoder
from avag_core.modeling.deformable_encoder import PixelEncoder
from avag_core.modeling.fpn import SimpleFPN
from avag_core.modeling.mixer import CrossModalMixer
from avag_core.modeling.query_generator import QueryGenerator
from avag_core.modeling.seg_head import SegmentationHead


class AVAGFormer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.backbone = VisualBackbone(
            cfg.backbone,
            cfg.backbone_out_indices,
            cfg.backbone_pretrained,
            cfg.backbone_weights,
            cfg.backbone_drop_path,
        )
        n_scales = len(self.backbone.channels)
        self.pixel_encoder = PixelEncoder(
            self.backbone.channels,
            d,
            cfg.encoder_layers,
            cfg.encoder_heads,
            cfg.encoder_points,
            cfg.encoder_ffn_dim,
            cfg.dropout,
            cfg.group_norm_groups,
        )
        self.fpn = SimpleFPN([d] * n_scales, cfg.fpn_dim)
        if cfg.audio_encoder == "vggish":
            self.audio_encoder: nn.Module = VGGishEncoder()
            audio_dim = VGGishEncoder.out_dim
        elif cfg.audio_encoder == "light":
            self.audio_encoder = LightAudioEncoder(cfg.light_audio_channels, cfg.audio_dim)
            audio_dim = cfg.audio_dim
        else:
            raise ValueError(
                f"model.audio_encoder must be 'vggish' or 'light', got {cfg.audio_encoder!r}"
            )
        self.audio_dim = audio_dim
        self.audio_proj = nn.Linear(audio_dim, d)
        self.mixer = CrossModalMixer(n_scales, cfg.fpn_dim, d, cfg.mixer_heads)
        self.query_generator = QueryGenerator(
            cfg.num_queries, d, cfg.query_layers, cfg.query_heads, cfg.query_ffn_dim
        )
        self.learnable_query = (
            nn.Embedding(cfg.num_queries, d) if cfg.use_learnable_queries else None
        )
        self.decoder = DualHeadDecoder(
            cfg.fpn_dim, d, cfg.decoder_dim, cfg.decoder_heads, n_scales, d
        )
        self.seg_func = SegmentationHead(cfg.num_queries, cfg.seg_hidden_dim, cfg.seg_upsamples)
        self.seg_dep = SegmentationHead(cfg.num_queries, cfg.seg_hidden_dim, cfg.seg_upsamples)
        self.set_backbone_trainable(not cfg.freeze_backbone)
        self.set_audio_encoder_trainable(not cfg.freeze_audio_encoder)

    # --- freezing -------------------------------------------------------------------
    def set_backbone_trainable(self, trainable: bool) -> None:
        """The reference trains with a frozen backbone first, then unfreezes it."""
        for p in self.backbone.parameters():
            p.requires_grad_(trainable)
        # A frozen backbone also keeps its normalisation statistics (eval mode).
        self.backbone.train(self.training and trainable)

    def set_audio_encoder_trainable(self, trainable: bool) -> None:
        for p in self.audio_encoder.parameters():
            p.requires_grad_(trainable)
        self.audio_encoder.train(self.training and trainable)

    def train(self, mode: bool = True) -> AVAGFormer:
        super().train(mode)
        # A frozen encoder also keeps its batch-norm statistics fixed.
        if mode and not any(p.requires_grad for p in self.audio_encoder.parameters()):
            self.audio_encoder.eval()
        if mode and not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self

    # --- the two paths --------------------------------------------------------------
    def encode_image(self, image: torch.Tensor) -> list[torch.Tensor]:
        """[B, 3, H, W] normalised image -> FPN maps (finest first). Audio-independent."""
        if self.cfg.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(image)
        return self.fpn(self.pixel_encoder(feats))

    def encode_audio(self, audio: torch.Tensor, audio_mask: torch.Tensor) -> torch.Tensor:
        """[B, T, 96, 64] log-mel patches -> [B, T, embed_dim] audio tokens."""
        frozen = not any(p.requires_grad for p in self.audio_encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            emb = encode_real_patches(self.audio_encoder, audio, audio_mask, self.audio_dim)
        return self.audio_proj(emb)

    def decode(
        self,
        features: list[torch.Tensor],
        audio: torch.Tensor,
        audio_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """FPN maps + audio -> logits; output size = finest map x 2**seg_upsamples, or the
        ``out_size`` stored by ``forward``."""
        return self._decode(features, audio, audio_mask, None)

    def _decode(self, features, audio, audio_mask, out_size):
        if audio_mask is None:
            audio_mask = torch.ones(audio.shape[:2], dtype=torch.bool, device=audio.device)
        audio_mask = audio_mask.to(torch.bool)
        tokens = self.encode_audio(audio, audio_mask)
        func_v, func_a, dep_v, dep_a = self.mixer(features, tokens, audio_mask)
        # Query generator keys: the audio tokens and their per-scale mixed versions.
        keys_mask = audio_mask.repeat(1, 1 + len(func_a))
        q_func = self.query_generator(torch.cat([tokens, *func_a], 1), keys_mask)
        q_dep = self.query_generator(torch.cat([tokens, *dep_a], 1), keys_mask)
        if self.learnable_query is not None:
            q_func = q_func + self.learnable_query.weight.unsqueeze(0)
            q_dep = q_dep + self.learnable_query.weight.unsqueeze(0)
        pred_func, pred_dep = self.decoder(func_v, func_a, dep_v, dep_a, q_func, q_dep, ~audio_mask)
        func = self.seg_func(pred_func)
        dep = self.seg_dep(pred_dep)
        if out_size is not None and tuple(func.shape[-2:]) != tuple(out_size):
            func = F.interpolate(func, size=out_size, mode="bilinear", align_corners=False)
            dep = F.interpolate(dep, size=out_size, mode="bilinear", align_corners=False)
        return {
            "function": func,
            "dependency": dep,
            "function_aux": pred_func.mean(dim=1, keepdim=True),
            "dependency_aux": pred_dep.mean(dim=1, keepdim=True),
        }

    def forward(
        self, image: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """image [B,3,H,W], audio [B,T,96,64], audio_mask [B,T] bool (True = real patch).

        Returns logits ``function``/``dependency`` [B,1,H,W] and the mean-query logits
        ``function_aux``/``dependency_aux`` at the decoder resolution (H/8).
        """
        return self._decode(self.encode_image(image), audio, audio_mask, tuple(image.shape[-2:]))


def build_model(cfg: ModelConfig) -> AVAGFormer:
    """Build AVAGFormer and load the local pretrained files named in ``cfg``."""
    model = AVAGFormer(cfg)  # loads cfg.backbone_weights / timm hub weights itself
    if cfg.audio_weights:
        from avag_core.weights.pretrained import load_audio_weights

        load_audio_weights(model, cfg.audio_weights)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
