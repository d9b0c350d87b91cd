"""Calibration: temperature scaling fitted on held-out logits, and its ECE.

Why: a softmax over cosine logits is over- or under-confident by a roughly constant
factor; one temperature fitted on validation data (Guo et al., 2017) makes "confidence
0.9" mean "right about 9 times in 10", which is what a rejection threshold relies on.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> float:
    """The temperature T > 0 minimising the NLL of ``softmax(logits / T)`` on ``labels``."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> float:
    """ECE of the top-1 confidence: sum over equal-width bins of |accuracy - confidence|
    weighted by the bin's share of samples."""
    if probs.shape[0] == 0:
        return float("nan")
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    ece = torch.zeros(())
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs()
    return float(ece)


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> list[dict]:
    """Per-bin confidence, accuracy and count: the data of a reliability diagram."""
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        n = int(in_bin.sum())
        rows.append({
            "lo": float(lo), "hi": float(hi), "n": n,
            "confidence": float(conf[in_bin].mean()) if n else float("nan"),
            "accuracy": float(correct[in_bin].mean()) if n else float("nan"),
        })  # fmt: skip
    return rows
