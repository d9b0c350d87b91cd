"""Inference-only folding of batch norm into the convolution before it.

In eval mode a BatchNorm2d is a per-channel affine map; folded into the preceding
convolution's weights and bias it costs nothing (MobileNet backbones, the light audio
encoder and the segmentation heads have dozens of them, each a full pass over memory).
Pairs are found as a Conv2d child immediately followed by a BatchNorm2d child of the same
parent, the order timm's blocks and our ``nn.Sequential`` stacks register and run them;
timm's BatchNormAct2d keeps its dropout and activation. The tests check the logits are
unchanged for every preset.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else torch.rsqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
    new_bias = (bias * scale + shift).to(conv.weight.dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias, requires_grad=False)
    else:
        conv.bias.copy_(new_bias)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What the batch norm module did after normalising (timm's BatchNormAct2d: drop + act)."""
    drop, act = getattr(bn, "drop", None), getattr(bn, "act", None)
    parts = [m for m in (drop, act) if m is not None and not isinstance(m, nn.Identity)]
    return nn.Sequential(*parts) if parts else nn.Identity()


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode (Conv2d, BatchNorm2d) pair in place; returns how many were folded.
    Running it again folds nothing (the batch norms are gone)."""
    if model.training:
        raise ValueError("fold_batchnorm is for inference: call model.eval() first")
    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = parent._modules[a], parent._modules[b]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if bn.running_mean is None or bn.num_features != conv.out_channels:
                continue
            _fold(conv, bn)
            parent._modules[b] = _after_norm(bn)
            folded += 1
    return folded
