"""Multi-head attention with nn.MultiheadAttention's parameter layout, on the fused
``scaled_dot_product_attention`` and with a key padding mask that stays dynamic when
exported to ONNX (nn.MultiheadAttention bakes the traced key length into its graph)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Up to this many keys, attention on a CPU runs as two matmuls and an explicit softmax:
# PyTorch's CPU flash kernel (and its softmax over a short last dimension) costs 2-3x more
# when many image tokens attend to a few audio tokens.
SHORT_KEYS = 64


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last dimension (deformable attention's levels x points, a few
    audio keys). PyTorch's CPU kernel handles a short last dimension poorly (about 5x
    slower than these three ops); the ONNX export keeps the standard Softmax op."""
    if torch.onnx.is_in_onnx_export() or x.device.type != "cpu":
        return x.softmax(-1)
    x = x.float()  # as autocast runs softmax: in float32
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


# torch 2.4's ONNX export of scaled_dot_product_attention fails on a given float scale
# (JetPack 6.0's torch; fixed in 2.5): there the export spells the attention out instead
ONNX_SDPA_TAKES_A_SCALE = torch.torch_version.TorchVersion(torch.__version__) >= (2, 5)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
         scale: float | None = None) -> torch.Tensor:
    """``F.scaled_dot_product_attention``; exported to ONNX by a torch that cannot export its
    ``scale``, spelled out (the ONNX op's own decomposition: two MatMuls and a Softmax)."""
    if scale is None or ONNX_SDPA_TAKES_A_SCALE or not torch.onnx.is_in_onnx_export():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)
    return _spelled_out(q, k, v, attn_mask, scale)


def _spelled_out(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
                 scale: float | None) -> torch.Tensor:
    """Two matmuls and a softmax, the scores in float32 (as autocast runs softmax)."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float()
    scores = scores * (q.shape[-1] ** -0.5 if scale is None else scale)
    if attn_mask is not None:
        scores = scores + attn_mask
    return torch.matmul(softmax_last(scores).to(v.dtype), v)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` ([B, heads, N, d]) with a faster path for few keys
    on the CPU (same result to float rounding). The ONNX export keeps the standard op."""
    if (
        q.device.type != "cpu"
        or torch.compiler.is_compiling()  # one graph for every audio length; the compiler fuses it
        or torch.onnx.is_in_onnx_export()
        or torch.jit.is_tracing()
        or k.shape[-2] > SHORT_KEYS
    ):
        return sdpa(q, k, v, attn_mask=attn_mask, scale=scale)
    return _spelled_out(q, k, v, attn_mask, scale)


class MultiheadAttention(nn.Module):
    def __init__(self, dim: int, heads: int, bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        # a fixed scale: the exported graph would otherwise recompute 1/sqrt(d) from shapes
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Batch-first [B, N, D]; ``key_padding_mask`` [B, S] bool, True = ignore."""
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq = bk = bv = None
        if self.in_proj_bias is not None:
            bq, bk, bv = self.in_proj_bias.chunk(3)
        q = self._heads(F.linear(query, wq, bq))
        k = self._heads(F.linear(key, wk, bk))
        v = self._heads(F.linear(value, wv, bv))
        mask = None
        if key_padding_mask is not None:
            mask = torch.zeros(key_padding_mask.shape, dtype=q.dtype, device=q.device)
            mask = mask.masked_fill(key_padding_mask, float("-inf"))[:, None, None, :]
        out = attention(q, k, v, attn_mask=mask, scale=self.scale)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))
