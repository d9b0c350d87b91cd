"""Multi-scale deformable-attention encoder in pure PyTorch.

Deformable DETR's attention samples a few learned points per head and level around each
token's reference point. The bilinear sampling (zero padding, ``align_corners=False``) is
a weighted gather-sum with ``embedding_bag`` in PyTorch and ``grid_sample`` while exporting
to ONNX (GridSample, opset >= 16): no compiled op, CPU and CUDA, the two paths agree to
float rounding (tested).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avag_core.modeling.attention import softmax_last


def sine_position_encoding(h: int, w: int, num_feats: int, device: torch.device) -> torch.Tensor:
    """DETR's unnormalised sine encoding of pixel indices 1..h, 1..w -> [1, 2*num_feats, h, w]."""
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)[:, None].expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)[None, :].expand(h, w)
    i = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = 10000.0 ** (2 * torch.div(i, 2, rounding_mode="floor") / num_feats)

    def encode(v: torch.Tensor) -> torch.Tensor:
        p = v[..., None] / dim_t  # [h, w, F]
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=3).reshape(h, w, -1)

    return torch.cat((encode(y), encode(x)), dim=2).permute(2, 0, 1).unsqueeze(0)


def reference_points(shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """Normalised pixel centres of every level, concatenated: [N_tokens, 2] as (x, y)."""
    pts = []
    for h, w in shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        pts.append(torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=-1))
    return torch.cat(pts, dim=0)


def grid_sample_levels(
    values: list[torch.Tensor], grids: list[torch.Tensor], weights: list[torch.Tensor]
) -> torch.Tensor:
    """Per level: value map [B*M, d, h, w], grid [B*M, Nq, P, 2] in grid_sample's [-1, 1],
    weights [B*M, 1, Nq, P]; zero padding, ``align_corners=False``. Returns [B*M, d, Nq]."""
    out = None
    for v, g, wl in zip(values, grids, weights, strict=True):
        sampled = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        o = (sampled * wl).sum(-1)
        out = o if out is None else out + o
    assert out is not None
    return out


def sample_with_grid_sample(
    value: torch.Tensor, loc: torch.Tensor, weights: torch.Tensor, shapes: list[tuple[int, int]]
) -> torch.Tensor:
    """Weighted bilinear sampling with one ``grid_sample`` per level: the definition the
    fast paths are tested against. value [B, N, M*d], loc [B, Nq, M, L, P, 2] in [0, 1],
    weights [B, Nq, M, L, P] -> [B, Nq, M*d]."""
    b, nq, m, _, p, _ = loc.shape
    d = value.shape[-1] // m
    grids = 2.0 * loc - 1.0
    values, level_grids, level_weights, start = [], [], [], 0
    for lid, (h, w) in enumerate(shapes):
        v = value[:, start : start + h * w].reshape(b, h * w, m, d)
        values.append(v.permute(0, 2, 3, 1).reshape(b * m, d, h, w))
        start += h * w
        level_grids.append(grids[:, :, :, lid].permute(0, 2, 1, 3, 4).reshape(b * m, nq, p, 2))
        level_weights.append(weights[:, :, :, lid].permute(0, 2, 1, 3).reshape(b * m, 1, nq, p))
    out = grid_sample_levels(values, level_grids, level_weights)
    return out.view(b, m * d, nq).transpose(1, 2)


def sample_with_embedding_bag(
    value: torch.Tensor, loc: torch.Tensor, weights: torch.Tensor, shapes: list[tuple[int, int]]
) -> torch.Tensor:
    """The same sampling as ``sample_with_grid_sample`` as one weighted gather-sum per level.

    Each sample is 4 bilinear taps; the attention weight is folded into the tap weights and
    ``embedding_bag`` sums all taps of a (query, head) in one pass, so the [B*M, d, Nq, P]
    intermediate of grid_sample is never built (about 5x faster on a CPU, differentiable).
    Every level's map gets a one-pixel zero border: clamping a tap into the border
    reproduces grid_sample's zero padding without masks. Coordinates stay float32 under
    autocast (as grid_sample's do): fp16 cannot address a 128-pixel map to a tenth of a pixel.
    """
    loc, weights = loc.float(), weights.float()
    b, nq, m, _, p, _ = loc.shape
    d = value.shape[-1] // m
    v = value.view(b, -1, m, d)
    tables, bases, start, base = [], [], 0, 0
    for h, w in shapes:
        level = v[:, start : start + h * w].reshape(b, h, w, m, d).permute(0, 3, 1, 2, 4)
        tables.append(F.pad(level, (0, 0, 1, 1, 1, 1)).reshape(b * m, (h + 2) * (w + 2), d))
        bases.append(base)
        start += h * w
        base += (h + 2) * (w + 2)
    table = torch.cat(tables, 1)  # [B*M, padded tokens, d]
    head_base = (torch.arange(b * m, device=value.device) * table.shape[1]).view(b, 1, m, 1, 1)
    table = table.reshape(-1, d)
    if torch.is_grad_enabled() and (loc.requires_grad or weights.requires_grad) and not table.requires_grad:
        # torch 2.4/2.5 (JetPack 6) fail an internal assert when only embedding_bag's
        # per_sample_weights need a gradient: give the table one (computed, then dropped)
        table = table.detach().requires_grad_()
    out = None
    for lid, (h, w) in enumerate(shapes):
        # pixel coordinates as grid_sample(align_corners=False) computes them; a NaN
        # location (diverging training) reads the zero border instead of a bad index
        px = torch.nan_to_num(loc[:, :, :, lid, :, 0] * w - 0.5, nan=-2.0)  # [B, Nq, M, P]
        py = torch.nan_to_num(loc[:, :, :, lid, :, 1] * h - 0.5, nan=-2.0)
        x0, y0 = px.floor(), py.floor()
        fx, fy = px - x0, py - y0
        a = weights[:, :, :, lid]
        wy1 = fy * a
        wy0 = a - wy1
        xa, xb = x0.clamp(-1, w) + 1, (x0 + 1).clamp(-1, w) + 1
        ya = (y0.clamp(-1, h) + 1) * (w + 2) + bases[lid]
        yb = ((y0 + 1).clamp(-1, h) + 1) * (w + 2) + bases[lid]
        idx = torch.stack((ya + xa, ya + xb, yb + xa, yb + xb), -1).long() + head_base
        w01, w11 = wy0 * fx, wy1 * fx
        taps = torch.stack((wy0 - w01, w01, wy1 - w11, w11), -1).to(table.dtype)
        o = F.embedding_bag(idx.view(b * nq * m, 4 * p), table, per_sample_weights=taps.view(b * nq * m, 4 * p),
                            mode="sum")
        out = o if out is None else out + o
    return out.view(b, nq, m * d)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (state-dict names follow Deformable DETR)."""

    def __init__(self, dim: int, levels: int, heads: int, points: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.levels, self.heads, self.points = dim, levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()
        self._norm: tuple[tuple, torch.Tensor] | None = None  # (map sizes, device) -> (w, h) per level

    def _pixel_norm(self, shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
        """(w, h) of each level, float32 on ``device``, made once per map sizes: a tensor made
        from Python numbers in every call is a host-to-device copy, which a CUDA graph cannot
        capture (``CudaGraphBackend``), and one more launch per layer besides."""
        key = (tuple(shapes), str(device))
        if self._norm is not None and self._norm[0] == key:
            return self._norm[1]
        norm = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32, device=device)
        if not torch.compiler.is_compiling():  # a tensor made while tracing belongs to the trace
            self._norm = (key, norm)
        return norm

    def _reset_parameters(self) -> None:
        # Offsets start as a ring of points around the reference, one direction per head.
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        grid = torch.stack([theta.cos(), theta.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        ref: torch.Tensor,
        value_in: torch.Tensor,
        shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """query, value_in: [B, N, D]; ref: [N, 2] in [0, 1]; shapes: (h, w) per level."""
        if torch.onnx.is_in_onnx_export():  # GridSample is a standard ONNX op; EmbeddingBag is not
            return self.forward_grid_sample(query, ref, value_in, shapes)
        b, n, _ = query.shape
        m, lv, p = self.heads, self.levels, self.points
        value = self.value_proj(value_in)
        offsets = self.sampling_offsets(query).view(b, n, m, lv, p, 2)
        weights = softmax_last(self.attention_weights(query).view(b, n, m, lv * p))
        weights = weights.view(b, n, m, lv, p)
        # Offsets are in pixels of each level: divide by (w, h). Locations in float32
        # whatever the weights' dtype: bf16 cannot address a 64-pixel map to a tenth of a pixel.
        norm = self._pixel_norm(shapes, query.device)
        loc = ref.float()[None, :, None, None, None, :] + offsets.float() / norm[None, None, None, :, None, :]
        return self.output_proj(sample_with_embedding_bag(value, loc, weights, shapes))

    def forward_grid_sample(
        self,
        query: torch.Tensor,
        ref: torch.Tensor,
        value_in: torch.Tensor,
        shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """``forward`` with grid_sample, laid out for an exported graph: the sampling grid
        is one matrix product plus a constant (reference points, bias and the pixel scale
        folded in) and the value projection writes head-major maps directly, so no 6-D
        broadcast runs per call (onnxruntime spent more time on those than on sampling)."""
        b, n, dim = query.shape
        m, lv, p = self.heads, self.levels, self.points
        d = dim // m
        # grid = 2 * (ref + offset / (w, h)) - 1 = offset * 2 / (w, h) + (2 * ref - 1)
        scale = torch.tensor([[2.0 / w, 2.0 / h] for h, w in shapes], dtype=query.dtype, device=query.device)
        scale = scale.view(lv, 1, 1, 2).expand(lv, 1, p, 2).reshape(lv, 1, p * 2)
        w_off = self.sampling_offsets.weight.view(m, lv, p * 2, dim).transpose(0, 1) * scale[..., None]
        b_off = self.sampling_offsets.bias.view(m, lv, p * 2).transpose(0, 1) * scale
        centre = (2.0 * ref.to(query.dtype) - 1.0).repeat(1, p)  # [N, P*2]
        const = (b_off[:, :, None, :] + centre).permute(2, 0, 1, 3).reshape(n, lv * m * p * 2)
        grids = torch.matmul(query, w_off.reshape(-1, dim).t()) + const  # [B, N, L*M*P*2]
        grids = grids.view(b, n, lv, m, p * 2).permute(0, 2, 3, 1, 4)  # [B, L, M, N, P*2]
        logits = self.attention_weights(query).view(b, n, m, lv * p).transpose(1, 2)
        attn = softmax_last(logits)  # [B, M, N, L*P]
        w_val = self.value_proj.weight.view(m, d, dim)
        value = torch.matmul(w_val, value_in.transpose(1, 2)[:, None]) + self.value_proj.bias.view(m, d, 1)
        values, level_grids, level_weights, start = [], [], [], 0
        for lid, (h, w) in enumerate(shapes):
            values.append(value[..., start : start + h * w].reshape(b * m, d, h, w))
            start += h * w
            level_grids.append(grids[:, lid].reshape(b * m, n, p, 2))
            level_weights.append(attn[..., lid * p : (lid + 1) * p].reshape(b * m, 1, n, p))
        out = grid_sample_levels(values, level_grids, level_weights)
        return self.output_proj(out.view(b, dim, n).transpose(1, 2))


class DeformableEncoderLayer(nn.Module):
    """Post-norm layer: deformable self-attention, then a GELU FFN."""

    def __init__(
        self, dim: int, ffn_dim: int, dropout: float, levels: int, heads: int, points: int
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, levels, heads, points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.activation = nn.GELU()
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, ref: torch.Tensor, shapes
    ) -> torch.Tensor:
        src = self.norm1(src + self.dropout1(self.self_attn(src + pos, ref, src, shapes)))
        return self.norm2(src + self.dropout3(self._ffn(src)))

    def _ffn(self, x: torch.Tensor, rows: int = 1024) -> torch.Tensor:
        """The FFN, a block of tokens at a time: the [tokens, ffn_dim] hidden activation
        (44 MB for the paper preset) then stays in cache, and the bias copy and GELU,
        memory-bound over the whole tensor, cost a fraction (rows are independent: same result)."""
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            # a traced loop would freeze the block count for the example batch size
            return self.linear2(self.dropout2(self.activation(self.linear1(x))))
        flat = x.reshape(-1, x.shape[-1])
        parts = [
            self.linear2(self.dropout2(self.activation(self.linear1(flat[s : s + rows]))))
            for s in range(0, flat.shape[0], rows)
        ]
        return torch.cat(parts).view(x.shape)


class PixelEncoder(nn.Module):
    """Backbone maps -> 1x1 conv + GroupNorm -> deformable encoder -> maps at the same scales."""

    def __init__(
        self,
        in_channels: list[int],
        dim: int,
        layers: int,
        heads: int,
        points: int,
        ffn_dim: int,
        dropout: float,
        groups: int,
    ) -> None:
        super().__init__()
        self.in_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dim, kernel_size=1), nn.GroupNorm(groups, dim))
            for c in in_channels
        )
        self.level_embed = nn.Parameter(torch.randn(len(in_channels), dim))
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(dim, ffn_dim, dropout, len(in_channels), heads, points)
            for _ in range(layers)
        )
        self.dim = dim
        # Sine encodings and reference points depend only on the map sizes: cache them.
        self._geometry: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _sine_and_refs(self, shapes, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(shapes), str(device), dtype)
        if key not in self._geometry:
            sine = [
                sine_position_encoding(h, w, self.dim // 2, device)
                .to(dtype)
                .flatten(2)
                .transpose(1, 2)
                for h, w in shapes
            ]
            self._geometry = {key: (torch.cat(sine, 1), reference_points(shapes, device))}
        return self._geometry[key]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        srcs = [proj(f) for proj, f in zip(self.in_proj, feats, strict=True)]
        b = srcs[0].shape[0]
        shapes = [(int(s.shape[2]), int(s.shape[3])) for s in srcs]
        sine, ref = self._sine_and_refs(shapes, srcs[0].device, srcs[0].dtype)
        x = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        level = torch.cat(
            [
                self.level_embed[lvl].view(1, -1).expand(h * w, -1)
                for lvl, (h, w) in enumerate(shapes)
            ]
        )
        pos_all = sine + level.unsqueeze(0)
        for layer in self.layers:
            x = layer(x, pos_all, ref, shapes)
        outs, start = [], 0
        for h, w in shapes:
            outs.append(x[:, start : start + h * w].transpose(1, 2).reshape(b, -1, h, w))
            start += h * w
        return outs
