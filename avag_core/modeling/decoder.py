"""Dual-head decoder: audio-guided multi-scale decoding, query-conditioned mask maps, and
the function -> dependency guidance (the dependency features attend to the function map).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avag_core.modeling.attention import MultiheadAttention, sdpa


class AudioGuidedDecoder(nn.Module):
    """Per scale: project, cross-attend image -> audio, fuse, then sum all scales at the finest."""

    def __init__(
        self, in_dim: int, audio_dim: int, out_dim: int, heads: int, num_scales: int
    ) -> None:
        super().__init__()
        self.proj_vis = nn.ModuleList(nn.Conv2d(in_dim, out_dim, 1) for _ in range(num_scales))
        self.proj_audio = nn.ModuleList(nn.Linear(audio_dim, out_dim) for _ in range(num_scales))
        self.cross_attn = nn.ModuleList(
            MultiheadAttention(out_dim, heads) for _ in range(num_scales)
        )
        self.conv_fuse = nn.ModuleList(
            nn.Conv2d(out_dim * 2, out_dim, 3, padding=1) for _ in range(num_scales)
        )
        self.norms = nn.ModuleList(
            nn.GroupNorm(min(4, out_dim), out_dim) for _ in range(num_scales)
        )

    def forward(
        self, vis: list[torch.Tensor], audio: list[torch.Tensor], pad: torch.Tensor
    ) -> torch.Tensor:
        out = None
        for i, (v, a) in enumerate(zip(vis, audio, strict=True)):
            b, _, h, w = v.shape
            vp = self.proj_vis[i](v)
            ap = self.proj_audio[i](a)
            q = vp.flatten(2).transpose(1, 2)
            att = self.cross_attn[i](q, ap, ap, key_padding_mask=pad)
            att = att.transpose(1, 2).reshape(b, -1, h, w)
            x = F.relu(self.norms[i](self.conv_fuse[i](torch.cat([vp, att], 1))))
            if out is None:
                out = x
            else:
                out = out + F.interpolate(
                    x, size=out.shape[-2:], mode="bilinear", align_corners=False
                )
        assert out is not None
        return out


class QueryMaskHead(nn.Module):
    """One mask map per query: ``conv1x1(relu(conv3x3(feat + query)))``.

    The query is constant over the map, so ``conv3x3(feat + q) = conv3x3(feat) + conv3x3(q)``
    and ``conv3x3(q)`` only differs at the borders (zero padding). It is computed on a
    <= 3x3 map and broadcast, which avoids running the 3x3 conv once per query (the same
    result, ~Q times cheaper).
    """

    def __init__(self, feat_dim: int, query_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, feat_dim)
        self.mask_head = nn.Sequential(
            nn.Conv2d(feat_dim, feat_dim, 3, padding=1), nn.ReLU(), nn.Conv2d(feat_dim, 1, 1)
        )

    def forward(self, feat: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """feat [B, C, H, W], query [B, Q, D] -> [B, Q, H, W] logits."""
        b, c, h, w = feat.shape
        conv3, conv1 = self.mask_head[0], self.mask_head[2]
        q = self.query_proj(query)  # [B, Q, C]
        nq = q.shape[1]
        fmap = conv3(feat)  # [B, C, H, W], includes the bias
        # conv3x3 of the constant query map: <= 3x3 distinct values (corner/edge/interior).
        hs, ws = min(h, 3), min(w, 3)
        qsmall = q.reshape(b * nq, c, 1, 1).expand(b * nq, c, hs, ws)
        qc = F.conv2d(qsmall, conv3.weight, None, padding=1).view(b, nq, c, hs, ws)
        # An exported graph multiplies by a [C, 1] matrix: onnxruntime runs a MatMul whose
        # second operand is a vector one row at a time (7x slower at 300 queries), while
        # torch is fastest with the vector. Same products, so the same logits.
        exporting = torch.onnx.is_in_onnx_export()
        w1 = conv1.weight.view(c, 1) if exporting else conv1.weight.view(c)

        def head(f: torch.Tensor, qv: torch.Tensor) -> torch.Tensor:
            # f [B, 1, C, N] + qv [B, Q, C, 1 or N] -> [B, Q, N]. Channels last and a few
            # queries at a time: the [Q, N, C] intermediate (80 MB at 300 queries, 64x64)
            # never leaves the cache, ~10x faster on a CPU than one broadcast.
            ft, qt = f.transpose(2, 3).contiguous(), qv.transpose(2, 3)  # [B, 1, N, C], [B, Q, 1 or N, C]
            step = 16
            parts = []
            for s in range(0, nq, step):
                x = torch.relu(ft + qt[:, s : s + step])
                parts.append(torch.matmul(x.reshape(-1, c), w1).view(x.shape[:-1]) if exporting else torch.matmul(x, w1))
            return torch.cat(parts, 1) + conv1.bias

        ci = 1 if ws > 1 else 0
        ri = 1 if hs > 1 else 0
        out = head(fmap.reshape(b, 1, c, h * w), qc[:, :, :, ri, ci, None]).view(b, nq, h, w)
        # Border rows/columns see part of the kernel only: recompute them exactly. Along a
        # border the query's conv is its first value, the interior one repeated, its last
        # (views and one concatenation: no index tensor made from Python numbers, which a
        # CUDA graph could not capture).
        def along(v: torch.Tensor, n: int, inner: int) -> torch.Tensor:  # v [B, Q, C, <=3] -> [B, Q, C, n]
            if n == 1:
                return v[..., :1]
            mid = v[..., inner : inner + 1].expand(*v.shape[:-1], n - 2)
            return torch.cat([v[..., :1], mid, v[..., -1:]], -1)

        for y, r in ((0, 0), (h - 1, hs - 1)):
            qv = along(qc[:, :, :, r], w, ci)  # [B, Q, C, W]
            out[:, :, y, :] = head(fmap[:, None, :, y, :], qv)
        for x, cc in ((0, 0), (w - 1, ws - 1)):
            qv = along(qc[:, :, :, :, cc], h, ri)  # [B, Q, C, H]
            out[:, :, :, x] = head(fmap[:, None, :, :, x], qv)
        return out


class MaskGuidedAttention(nn.Module):
    """Dependency features (queries) attend to the function map (keys/values): HW x HW
    attention, run as one fused scaled_dot_product_attention call."""

    def __init__(self, dep_dim: int, mask_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Conv2d(dep_dim, attn_dim, 1)
        self.key_proj = nn.Conv2d(mask_dim, attn_dim, 1)
        self.value_proj = nn.Conv2d(mask_dim, attn_dim, 1)
        self.out_proj = nn.Conv2d(attn_dim, dep_dim, 1)
        self.scale = 1.0 / math.sqrt(attn_dim)  # fixed: see MultiheadAttention

    def forward(self, dep: torch.Tensor, mask_map: torch.Tensor) -> torch.Tensor:
        b, _, h, w = dep.shape
        # [B, 1, HW, C] with unit stride on C: otherwise SDPA falls back from the fused
        # kernel to the math path, which builds the HW x HW matrix (64 MB at 64x64)
        q, k, v = (
            proj(x).flatten(2).transpose(1, 2).unsqueeze(1).contiguous()
            for proj, x in ((self.query_proj, dep), (self.key_proj, mask_map), (self.value_proj, mask_map))
        )
        fused = sdpa(q, k, v, scale=self.scale).squeeze(1)
        return self.out_proj(fused.transpose(1, 2).reshape(b, -1, h, w))


class DualHeadDecoder(nn.Module):
    def __init__(
        self,
        fpn_dim: int,
        audio_dim: int,
        out_dim: int,
        heads: int,
        num_scales: int,
        query_dim: int,
    ):
        super().__init__()
        self.decode_func = AudioGuidedDecoder(fpn_dim, audio_dim, out_dim, heads, num_scales)
        self.decode_dep = AudioGuidedDecoder(fpn_dim, audio_dim, out_dim, heads, num_scales)
        self.func_head = QueryMaskHead(out_dim, query_dim)
        self.mask_conditioned_attn = MaskGuidedAttention(out_dim, 1, out_dim)
        self.dep_head = QueryMaskHead(out_dim, query_dim)

    def forward(self, func_v, func_a, dep_v, dep_a, query_func, query_dep, pad):
        """Returns per-query logits [B, Q, h, w] for function and dependency."""
        feat_func = self.decode_func(func_v, func_a, pad)
        feat_dep = self.decode_dep(dep_v, dep_a, pad)
        pred_func = self.func_head(feat_func, query_func)
        guide = pred_func.mean(dim=1, keepdim=True)
        feat_dep = feat_dep + self.mask_conditioned_attn(feat_dep, guide)
        pred_dep = self.dep_head(feat_dep, query_dep)
        return pred_func, pred_dep
