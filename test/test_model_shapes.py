"""AVAGFormer on the tiny preset: shapes, padding invariance, gradients and freezing."""

import pytest
import torch

from avag_core.config import load_config
from avag_core.modeling import IMAGE_MEAN, IMAGE_STD, AVAGFormer, build_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = load_config("tiny").model
    return cfg, build_model(cfg).eval()


def _inputs(b, t, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randn(b, t, 96, 64, generator=g) - 3


@pytest.mark.parametrize("hw", [(64, 64), (96, 96), (64, 128), (72, 88)])
@pytest.mark.parametrize("t", [1, 4, 20, 27])
def test_output_shapes(tiny, hw, t):
    _, model = tiny
    image, audio = _inputs(2, t, *hw)
    with torch.inference_mode():
        out = model(image, audio, torch.ones(2, t, dtype=torch.bool))
    assert out["function"].shape == (2, 1, *hw)
    assert out["dependency"].shape == (2, 1, *hw)
    assert out["function_aux"].shape[:2] == (2, 1) and out["dependency_aux"].shape[:2] == (2, 1)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_padding_does_not_change_output(tiny):
    _, model = tiny
    image, audio = _inputs(1, 3, 64, 64, seed=1)
    with torch.inference_mode():
        alone = model(image, audio, torch.ones(1, 3, dtype=torch.bool))
        padded_audio = torch.cat([audio, torch.randn(1, 5, 96, 64) * 10], 1)
        mask = torch.tensor([[True] * 3 + [False] * 5])
        padded = model(image, padded_audio, mask)
        # The same clip inside a batch next to a longer one.
        other = torch.randn(1, 8, 96, 64)
        batch = model(
            torch.cat([image, image]),
            torch.cat([padded_audio, other]),
            torch.cat([mask, torch.ones(1, 8, dtype=torch.bool)]),
        )
    for key in alone:
        torch.testing.assert_close(padded[key], alone[key], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batch[key][:1], alone[key], atol=1e-5, rtol=1e-5)
    # And the audio does matter.
    with torch.inference_mode():
        changed = model(image, audio.flip(1) + 1, torch.ones(1, 3, dtype=torch.bool))
    assert (changed["function"] - alone["function"]).abs().max() > 1e-6


def test_split_paths_equal_forward(tiny):
    _, model = tiny
    image, audio = _inputs(2, 5, 64, 64, seed=2)
    mask = torch.ones(2, 5, dtype=torch.bool)
    with torch.inference_mode():
        full = model(image, audio, mask)
        feats = model.encode_image(image)
        split = model.decode(feats, audio, mask)
    for key in full:
        torch.testing.assert_close(split[key], full[key])


def test_gradients_reach_trainable_parts_and_frozen_parts_stay_frozen():
    torch.manual_seed(0)
    cfg = load_config(
        "tiny", ["model.freeze_backbone=true", "model.freeze_audio_encoder=true"]
    ).model
    model: AVAGFormer = build_model(cfg).train()
    image, audio = _inputs(2, 3, 64, 64, seed=3)
    out = model(image, audio, torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    loss = sum(v.float().pow(2).mean() for v in out.values())
    loss.backward()
    frozen = [
        n for n, _ in model.named_parameters() if n.startswith(("backbone.", "audio_encoder."))
    ]
    assert frozen and all(p.grad is None for n, p in model.named_parameters() if n in frozen)
    trainable = {n: p for n, p in model.named_parameters() if n not in frozen}
    assert all(p.requires_grad for p in trainable.values())
    no_grad = [
        n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert not no_grad, no_grad
    assert sum(float(p.grad.abs().sum() > 0) for p in trainable.values()) > 0.9 * len(trainable)
    # Unfreezing the backbone (the reference schedule) makes it learn too.
    model.set_backbone_trainable(True)
    model.zero_grad()
    out = model(image, audio, torch.ones(2, 3, dtype=torch.bool))
    out["function"].mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


def test_image_normalisation_constants():
    assert len(IMAGE_MEAN) == 3 and len(IMAGE_STD) == 3 and IMAGE_MEAN[0] == pytest.approx(0.485)


def test_presets_build_with_documented_sizes():
    realtime = load_config("realtime").model
    assert realtime.image_size <= 320 and realtime.num_queries < 300
    model = build_model(realtime)
    assert sum(p.numel() for p in model.parameters()) <= 10_000_000
    paper = load_config("paper").model
    assert (paper.backbone, paper.image_size, paper.num_queries) == ("pvt_v2_b5", 512, 300)
    assert paper.encoder_layers == 6 and paper.query_layers == 6


def test_realtime_is_two_scales_at_256_and_realtime_s8_is_the_shipped_checkpoints_model(shipped_checkpoint):
    """`realtime` drops the stride-8 map (its full 256x256 masks come from one more
    upsampling); `realtime_s8` is exactly the model the shipped checkpoint stores, so the
    command in its card (`learning_check --config realtime_s8`) makes the same architecture."""
    from avag_core.config import to_dict
    from avag_core.weights.checkpoint import checkpoint_config

    realtime = load_config("realtime").model
    torch.manual_seed(0)
    model = build_model(realtime).eval()
    with torch.inference_mode():
        maps = model.encode_image(torch.zeros(1, 3, 256, 256))
        audio = torch.zeros(1, 2, 96, 64)
        out = model(torch.zeros(1, 3, 256, 256), audio, torch.ones(1, 2, dtype=torch.bool))
    assert [tuple(m.shape[-2:]) for m in maps] == [(16, 16), (8, 8)]
    assert out["function"].shape[-2:] == (256, 256)
    assert to_dict(load_config("realtime_s8").model) == to_dict(checkpoint_config(shipped_checkpoint).model)


@pytest.mark.parametrize("preset", ["tiny", "realtime"])
def test_folding_batch_norm_keeps_the_logits(preset):
    """Predictor folds every eval batch norm into its convolution; with non-trivial running
    statistics the logits stay the same, and a second fold changes nothing."""
    import copy

    from avag_core.modeling.fuse import fold_batchnorm

    torch.manual_seed(0)
    model = build_model(load_config(preset).model).eval()
    g = torch.Generator().manual_seed(1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    with torch.no_grad():
        for bn in bns:
            bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            if bn.affine:
                bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
                bn.bias.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == len(bns)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert fold_batchnorm(folded) == 0
    s = model.cfg.image_size
    image = torch.randn(1, 3, s, s, generator=g)
    audio = torch.randn(1, 3, 96, 64, generator=g) - 4
    mask = torch.ones(1, 3, dtype=torch.bool)
    with torch.inference_mode():
        want, got = model(image, audio, mask), folded(image, audio, mask)
    for key in ("function", "dependency", "function_aux", "dependency_aux"):
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4)
