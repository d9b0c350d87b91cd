"""Query generator: learned queries refined by self-attention and cross-attention to audio."""

from __future__ import annotations

import torch
from torch import nn

from avag_core.modeling.attention import MultiheadAttention


class QueryLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, heads, bias=False)
        self.cross_attn = MultiheadAttention(dim, heads, bias=False)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, q: torch.Tensor, audio: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        q = self.norm1(q + self.self_attn(q, q, q))
        q = self.norm2(q + self.cross_attn(q, audio, audio, key_padding_mask=pad))
        return self.norm3(q + self.ffn(q))


class QueryGenerator(nn.Module):
    def __init__(self, num_queries: int, dim: int, layers: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.query = nn.Embedding(num_queries, dim)
        self.layers = nn.ModuleList(QueryLayer(dim, heads, ffn_dim) for _ in range(layers))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """audio [B, N, D] with mask [B, N] (True = real) -> queries [B, Q, D]."""
        q = self.query.weight.unsqueeze(0).expand(audio.shape[0], -1, -1)
        pad = ~mask
        for layer in self.layers:
            q = layer(q, audio, pad)
        return q
