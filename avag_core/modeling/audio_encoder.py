"""Audio encoders: one embedding per 0.96 s log-mel patch.

``VGGishEncoder`` is the reference's encoder (72 M parameters, torchvggish weight layout);
``LightAudioEncoder`` is a small CNN for robots, trained from scratch.
"""

from __future__ import annotations

import torch
from torch import nn


class VGGishEncoder(nn.Module):
    """VGGish: 4 conv stages over [96, 64] -> 128-d, state-dict compatible with torchvggish."""

    out_dim = 128

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1),
                    nn.ReLU(inplace=True),
                ]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(True),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Linear(4096, 128),
            nn.ReLU(True),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """[N, 96, 64] -> [N, 128]."""
        x = self.features(patches.unsqueeze(1))  # [N, 512, 6, 4]
        # VGGish (a TF model) flattens in height-width-channel order.
        x = x.permute(0, 2, 3, 1).flatten(1)
        return self.embeddings(x)


class LightAudioEncoder(nn.Module):
    """Conv-BN-ReLU-pool stages, then global average pooling and a linear layer."""

    def __init__(self, channels: list[int], out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for ch in channels:
            layers += [
                nn.Conv2d(in_ch, ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_ch = ch
        self.features = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Linear(in_ch, out_dim), nn.ReLU(inplace=True))
        self.out_dim = out_dim

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """[N, 96, 64] -> [N, out_dim]."""
        x = self.features(patches.unsqueeze(1))
        return self.embed(x.mean(dim=(2, 3)))


def encode_real_patches(
    encoder: nn.Module, audio: torch.Tensor, mask: torch.Tensor, out_dim: int
) -> torch.Tensor:
    """[B, T, 96, 64] + mask -> [B, T, D]; only real patches are encoded (padding costs
    nothing and cannot leak into batch-norm statistics), padded rows are zero."""
    b, t = mask.shape
    flat = audio.reshape(b * t, audio.shape[-2], audio.shape[-1])
    capturing = audio.is_cuda and torch.cuda.is_current_stream_capturing()
    if (torch.compiler.is_compiling() or capturing) and not encoder.training:
        # A compiled graph or a captured CUDA graph cannot size a tensor by the mask's content:
        # encode every patch (rows are independent in eval) and zero the padded ones - the same rows.
        emb = encoder(flat) * mask.reshape(-1, 1).to(flat.dtype)
        return emb.reshape(b, t, out_dim)
    idx = torch.nonzero(mask.reshape(-1), as_tuple=False).squeeze(1)
    emb = encoder(flat.index_select(0, idx))
    out = emb.new_zeros(b * t, out_dim).index_copy(0, idx, emb)
    return out.reshape(b, t, out_dim)
