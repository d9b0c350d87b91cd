"""The action head: clip embedding -> cosine scores against one vector per class.

Why cosine: a class is a direction in a small normalised embedding space, so a new action
enrolled from a few clips is just one more direction (the mean of its clips' normalised
embeddings, a prototype) and is scored exactly like a trained class. The last trained
class is ``NONE`` ("not an action"), learnt from distractor sounds as one sub-class per
distractor kind (speech, music, clapping...) whose probabilities are summed: a single
"none" direction would have to cover sounds that have nothing in common, and the richer
space left by the kinds keeps new actions apart from the trained ones (few-shot benchmark,
two actions enrolled from 5 clips as mean prototypes: trained actions stay 0.95 labelled,
against 0.73 with one "none" vector; held-out actions 0.88 labelled in both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from avag_core.settings import setting

NONE = "none"  # the "not an action" class


@dataclass
class HeadConfig:
    """Architecture of the head; stored in the head file so it can be rebuilt exactly."""

    in_dim: int = setting(320, "clip embedding size (AudioEmbedder.dim)", lo=1, hi=65536)
    hidden_dim: int = setting(256, "hidden width of the projection MLP", lo=1, hi=8192)
    proj_dim: int = setting(256, "size of the normalised embedding classes live in", lo=2, hi=4096)
    dropout: float = setting(0.2, "dropout in the projection MLP (training only)", lo=0.0, hi=0.9)
    scale: float = setting(16.0, "cosine logit scale before temperature", lo=1.0, hi=100.0)
    classes: list[str] = field(default_factory=list)  # trained actions, then NONE
    none_kinds: list[str] = field(default_factory=list)  # sub-classes of NONE (distractor kinds)

    @property
    def rows(self) -> list[str]:
        """One class vector per trained action and per kind of non-action."""
        return [*self.classes[:-1], *(self.none_kinds or [NONE])]


class ActionHead(nn.Module):
    """Standardise -> MLP -> L2-normalise -> scaled cosine to each class vector."""

    def __init__(self, *, cfg: HeadConfig) -> None:
        super().__init__()
        if not cfg.classes or cfg.classes[-1] != NONE:
            raise ValueError(f"head classes must end with {NONE!r}, got {cfg.classes}")
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))
        self.mlp = nn.Sequential(
            nn.Linear(cfg.in_dim, cfg.hidden_dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, cfg.proj_dim),
        )
        self.class_vectors = nn.Parameter(torch.randn(len(cfg.rows), cfg.proj_dim) * 0.1)

    def set_standardisation(self, feats: torch.Tensor) -> None:
        """Per-feature mean/std from the training embeddings (tokens and log-mel differ in scale)."""
        self.feat_mean.copy_(feats.mean(0))
        self.feat_std.copy_(feats.std(0).clamp_min(1e-3))

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """[N, in_dim] -> [N, proj_dim] unit vectors."""
        return F.normalize(self.mlp((feats - self.feat_mean) / self.feat_std), dim=-1)

    def logits(self, z: torch.Tensor, extra_cos: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled cosine of unit vectors ``z`` to the row vectors (``cfg.rows``), then the
        scaled ``extra_cos`` [N, E] (cosines to enrolled actions)."""
        out = self.cfg.scale * z @ F.normalize(self.class_vectors, dim=-1).T
        if extra_cos is not None and extra_cos.numel():
            out = torch.cat([out, self.cfg.scale * extra_cos], 1)
        return out

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Row logits (training)."""
        return self.logits(self.project(feats))

    def merge(self, row_probs: torch.Tensor) -> torch.Tensor:
        """Probabilities over rows (+ enrolled) -> over ``classes`` (+ enrolled): the
        non-action kinds are summed into ``NONE``, which keeps its place after the actions."""
        k = len(self.cfg.classes) - 1
        n_none = len(self.cfg.rows) - k
        none = row_probs[:, k : k + n_none].sum(1, keepdim=True)
        return torch.cat([row_probs[:, :k], none, row_probs[:, k + n_none :]], 1)

    def probs(self, feats: torch.Tensor, temperature: float, enrolled=None) -> torch.Tensor:
        """Calibrated probabilities over ``classes``, then over the actions of ``enrolled``
        (an object with ``cosines(z) -> [N, E]``, e.g. an ``Enrollment``)."""
        z = self.project(feats)
        extra = enrolled.cosines(z) if enrolled is not None else None
        return self.merge(torch.softmax(self.logits(z, extra) / temperature, -1))
