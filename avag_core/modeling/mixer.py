"""Semantic-conditioned cross-modal mixer.

For every FPN scale and for each task (0 = function, 1 = dependency) a learned task
embedding conditions a bidirectional cross-attention block: audio tokens attend to the
image, then image tokens attend to the updated audio. An MLP over [task embedding,
spatial scalar, temporal scalar] adds a per-head bias to the attention logits, and a
sigmoid gate from the task embedding mixes the attended features into the residual.

Padded audio patches are masked out of every attention over audio and of the temporal
scalar, so they cannot change the result.
"""

from __future__ import annotations

import torch
from torch import nn

from avag_core.modeling.attention import attention, sdpa


def key_mask_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, T] bool (True = real) -> [B, 1, 1, T] additive bias (0 or -inf)."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    bias = bias.masked_fill(~mask, float("-inf"))
    return bias[:, None, None, :]


class CrossModalFusionBlock(nn.Module):
    def __init__(self, img_dim: int, aud_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj_image = nn.Linear(img_dim, img_dim)
        self.k_proj_image = nn.Linear(img_dim, img_dim)
        self.v_proj_image = nn.Linear(img_dim, img_dim)
        self.out_proj_image = nn.Linear(aud_dim, img_dim)
        self.q_proj_audio = nn.Linear(aud_dim, aud_dim)
        self.k_proj_audio = nn.Linear(aud_dim, aud_dim)
        self.v_proj_audio = nn.Linear(aud_dim, aud_dim)
        self.out_proj_audio = nn.Linear(img_dim, aud_dim)
        self.cond_proj_img = nn.Sequential(
            nn.Linear(img_dim + 2, img_dim), nn.ReLU(), nn.Linear(img_dim, heads)
        )
        self.cond_proj_aud = nn.Sequential(
            nn.Linear(aud_dim + 2, aud_dim), nn.ReLU(), nn.Linear(aud_dim, heads)
        )
        self.gate_fc_img = nn.Sequential(nn.Linear(img_dim, img_dim), nn.Sigmoid())
        self.gate_fc_aud = nn.Sequential(nn.Linear(aud_dim, aud_dim), nn.Sigmoid())
        self.scale_img = (img_dim // heads) ** -0.5
        self.scale_aud = (aud_dim // heads) ** -0.5

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def project_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Task-independent image projections (queries, keys, values), split into heads.

        Both tasks start from the same image tokens, so these are computed once per scale
        instead of once per task (same result, half the work on the largest tensors)."""
        return (
            self._split(self.q_proj_image(image)),
            self._split(self.k_proj_image(image)),
            self._split(self.v_proj_image(image)),
        )

    def forward(
        self,
        image: torch.Tensor,
        image_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        audio: torch.Tensor,
        prompt_img: torch.Tensor,
        prompt_aud: torch.Tensor,
        spatial: torch.Tensor,
        temporal: torch.Tensor,
        audio_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, n_a, _ = audio.shape
        n_v = image.shape[1]
        q_img, k_img, v_img = image_qkv
        # Audio attends to the image (every image token is real: no key mask).
        cond_aud = self.cond_proj_aud(torch.cat([prompt_aud, spatial, temporal], -1))[
            :, :, None, None
        ]
        fused = sdpa(
            self._split(self.q_proj_audio(audio)),
            k_img,
            v_img,
            attn_mask=cond_aud.expand(b, self.heads, n_a, n_v),
            scale=self.scale_aud,
        )
        fused = self.out_proj_audio(fused.transpose(1, 2).reshape(b, n_a, -1))
        gate = self.gate_fc_aud(prompt_aud).unsqueeze(1)
        audio = gate * fused + (1 - gate) * audio
        # The image attends to the updated audio; padded patches are masked out.
        cond_img = self.cond_proj_img(torch.cat([prompt_img, spatial, temporal], -1))[
            :, :, None, None
        ]
        fused = attention(
            q_img,
            self._split(self.k_proj_audio(audio)),
            self._split(self.v_proj_audio(audio)),
            attn_mask=cond_img + audio_bias,
            scale=self.scale_img,
        )
        fused = self.out_proj_image(fused.transpose(1, 2).reshape(b, n_v, -1))
        gate = self.gate_fc_img(prompt_img).unsqueeze(1)
        image = gate * fused + (1 - gate) * image
        return image, audio


class CrossModalMixer(nn.Module):
    """Returns per-scale (function image, function audio, dependency image, dependency audio)."""

    def __init__(self, num_scales: int, vision_dim: int, audio_dim: int, heads: int) -> None:
        super().__init__()
        self.vision_proj_in = nn.ModuleList(
            nn.Linear(vision_dim, audio_dim) for _ in range(num_scales)
        )
        self.vision_proj_out = nn.ModuleList(
            nn.Linear(audio_dim, vision_dim) for _ in range(num_scales)
        )
        # One fusion block shared by all scales and both tasks (as in the reference).
        self.fusion = nn.ModuleList([CrossModalFusionBlock(audio_dim, audio_dim, heads)])
        self.task_prompt_img = nn.Embedding(2, audio_dim)
        self.task_prompt_aud = nn.Embedding(2, audio_dim)

    def forward(self, vision: list[torch.Tensor], audio: torch.Tensor, mask: torch.Tensor):
        func_v, func_a, dep_v, dep_a = [], [], [], []
        maskf = mask.to(audio.dtype)
        # Temporal scalar: mean token norm over the real patches only.
        temporal = (audio.norm(dim=-1) * maskf).sum(1, keepdim=True) / maskf.sum(1, keepdim=True)
        audio_bias = key_mask_bias(mask, audio.dtype)
        for idx, feat in enumerate(vision):
            b, c, h, w = feat.shape
            v = self.vision_proj_in[idx](feat.flatten(2).transpose(1, 2))
            spatial = v.norm(dim=-1).mean(dim=1, keepdim=True)
            block = self.fusion[0]
            qkv = block.project_image(v)
            for task in range(2):
                p_img = self.task_prompt_img.weight[task].unsqueeze(0).expand(b, -1)
                p_aud = self.task_prompt_aud.weight[task].unsqueeze(0).expand(b, -1)
                vt, at = block(v, qkv, audio, p_img, p_aud, spatial, temporal, audio_bias)
                vt = self.vision_proj_out[idx](vt).transpose(1, 2).reshape(b, c, h, w)
                (func_v if task == 0 else dep_v).append(vt)
                (func_a if task == 0 else dep_a).append(at)
        return func_v, func_a, dep_v, dep_a
