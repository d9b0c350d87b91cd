"""The deformable encoder's two sampling paths (embedding_bag for PyTorch, grid_sample for
ONNX) compute the same bilinear, zero-padded sampling, forward and backward."""

from __future__ import annotations

import pytest
import torch

from avag_core.modeling.deformable_encoder import (
    MSDeformAttn,
    reference_points,
    sample_with_embedding_bag,
    sample_with_grid_sample,
)

SHAPES = [(16, 12), (8, 6), (4, 3), (1, 1)]


def _inputs(b: int = 2, m: int = 4, d: int = 8, p: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = sum(h * w for h, w in SHAPES)
    value = torch.randn(b, n, m * d, generator=g, dtype=torch.float64)
    # locations well outside [0, 1] too: taps off the map must read zeros
    loc = torch.rand(b, 7, m, len(SHAPES), p, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    weights = torch.rand(b, 7, m, len(SHAPES), p, generator=g, dtype=torch.float64)
    return value, loc, weights


def test_paths_agree_forward():
    value, loc, weights = _inputs()
    a = sample_with_grid_sample(value, loc, weights, SHAPES)
    b = sample_with_embedding_bag(value, loc, weights, SHAPES).to(a.dtype)
    assert a.shape == b.shape == (2, 7, 32)
    assert torch.allclose(a, b, atol=1e-5, rtol=0)  # embedding_bag works on float32 coordinates
    assert a.abs().max() > 0.1


@pytest.mark.parametrize("shapes", [SHAPES, [(32, 32), (16, 16), (8, 8)]])
def test_export_layout_equals_forward(shapes):
    """The layout exported to ONNX (offsets, reference points and scale folded into one
    product, head-major projections) computes the module's forward."""
    torch.manual_seed(0)
    attn = MSDeformAttn(32, len(shapes), 4, 3)
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.3)  # points well off their reference
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.3)
    torch.nn.init.normal_(attn.sampling_offsets.bias, std=2.0)
    n = sum(h * w for h, w in shapes)
    query, value = torch.randn(2, n, 32), torch.randn(2, n, 32)
    ref = reference_points(shapes, query.device)
    want = attn(query, ref, value, shapes)
    got = attn.forward_grid_sample(query, ref, value, shapes)
    assert got.shape == want.shape == (2, n, 32)
    assert torch.allclose(got, want, atol=2e-5, rtol=0)
    assert want.abs().max() > 0.1


def test_points_off_the_map_read_zero_and_corners_read_pixels():
    value, loc, weights = _inputs(b=1, m=1, d=2, p=1)
    far = torch.full_like(loc, 2.0)  # every tap beyond the right/bottom border
    assert sample_with_embedding_bag(value, far, weights, SHAPES).abs().max() == 0
    # the centre of pixel (0, 0) of level 0 returns that pixel times the weight
    loc0 = torch.zeros_like(loc)
    loc0[..., 0, :, 0] = 0.5 / SHAPES[0][1]
    loc0[..., 0, :, 1] = 0.5 / SHAPES[0][0]
    w0 = torch.zeros_like(weights)
    w0[..., 0, :] = 1.0
    out = sample_with_embedding_bag(value, loc0, w0, SHAPES)
    assert torch.allclose(out[0, 0].double(), value[0, 0], atol=1e-6)


@pytest.mark.parametrize("wrt", ["value", "loc", "weights"])
def test_paths_agree_backward(wrt):
    grads = []
    for fn in (sample_with_grid_sample, sample_with_embedding_bag):
        value, loc, weights = _inputs(seed=1)
        loc = loc.clamp(0.01, 0.99)  # away from pixel-centre kinks where the two differ by a subgradient
        t = {"value": value, "loc": loc, "weights": weights}
        t[wrt].requires_grad_(True)
        out = fn(t["value"], t["loc"], t["weights"], SHAPES)
        (out.double() * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        grads.append(t[wrt].grad)
    scale = grads[0].abs().max()
    assert scale > 0
    assert ((grads[0] - grads[1]).abs().max() / scale) < 1e-4


def test_non_finite_locations_never_index_outside_the_table():
    value, loc, weights = _inputs(b=1, m=2, d=4, p=2)
    loc = loc.clone()
    loc[0, 0, 0, 0, 0] = float("nan")
    loc[0, 1, 0, 0, 0, 0] = float("inf")
    loc[0, 2, 0, 0, 0, 1] = -float("inf")
    out = sample_with_embedding_bag(value, loc, weights, SHAPES)  # no IndexError
    ok = sample_with_grid_sample(value, loc, weights, SHAPES)
    finite = torch.isfinite(ok)
    assert torch.allclose(out[:, 3:], ok[:, 3:].to(out.dtype), atol=1e-5)  # other queries unaffected
    assert finite[:, 3:].all() and out[:, 3:].abs().max() > 0
