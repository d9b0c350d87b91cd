"""Checkpoint round trip and errors, pretrained-file loading and the reference converter."""

import dataclasses
import gzip
import json
import re
from pathlib import Path

import pytest
import torch

from avag_core.config import load_config
from avag_core.errors import AvagError
from avag_core.modeling import AVAGFormer, build_model
from avag_core.weights.checkpoint import (
    checkpoint_extra,
    load_model_checkpoint,
    save_model_checkpoint,
)
from avag_core.weights.reference import convert_reference_state_dict, load_reference_checkpoint

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = load_config("tiny")
    return cfg, build_model(cfg.model).eval()


def test_checkpoint_round_trip(tiny, tmp_path):
    cfg, model = tiny
    path = save_model_checkpoint(tmp_path / "m.safetensors", model, cfg, {"epoch": 7, "note": "x"})
    loaded, cfg2 = load_model_checkpoint(path)
    assert cfg2 == cfg and checkpoint_extra(path) == {"epoch": "7", "note": "x"}
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)
    image, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 2, 96, 64)
    with torch.inference_mode():
        torch.testing.assert_close(
            loaded(image, audio)["function"], model(image, audio)["function"]
        )


def test_checkpoint_errors_name_the_file(tiny, tmp_path):
    cfg, model = tiny
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(AvagError, match=r"nope\.safetensors not found"):
        load_model_checkpoint(missing)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(AvagError, match=r"corrupt\.safetensors is not a readable"):
        load_model_checkpoint(corrupt)
    good = save_model_checkpoint(tmp_path / "good.safetensors", model, cfg)
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(AvagError, match=r"trunc\.safetensors"):
        load_model_checkpoint(truncated)
    # Weights that do not fit the stored config: a shape mismatch is listed by key.
    other_cfg = load_config("tiny", ["model.num_queries=6"])
    mismatched = save_model_checkpoint(tmp_path / "mis.safetensors", model, other_cfg)
    with pytest.raises(AvagError) as err:
        load_model_checkpoint(mismatched)
    msg = str(err.value)
    assert "mis.safetensors" in msg and "shape mismatch" in msg and "\n" not in msg
    assert "query_generator.query.weight" in msg or "learnable_query.weight" in msg


def _pvt_release_layout(state):
    """timm PVT-v2 names -> the original release names (the layout of pvt_v2_b*.pth)."""
    out = {}
    for k, v in state.items():
        if k.startswith("head."):
            continue
        k = k.replace("dwconv", "dwconv.dwconv")
        k = re.sub(r"^stages\.(\d+)\.downsample", lambda m: f"patch_embed{int(m.group(1)) + 1}", k)
        k = re.sub(r"^patch_embed\.", "patch_embed1.", k)
        k = re.sub(r"^stages\.(\d+)\.blocks\.", lambda m: f"block{int(m.group(1)) + 1}.", k)
        k = re.sub(r"^stages\.(\d+)\.norm", lambda m: f"norm{int(m.group(1)) + 1}", k)
        out[k] = v
    return out


def test_pvt_release_weights_file_loads(tmp_path):
    import timm

    torch.manual_seed(1)
    src = timm.create_model("pvt_v2_b0")
    path = tmp_path / "pvt_v2_b0.pth"
    torch.save(_pvt_release_layout(src.state_dict()), path)
    cfg = load_config(
        "tiny",
        [
            "model.backbone=pvt_v2_b0",
            "model.backbone_out_indices=[1,2,3]",
            f"model.backbone_weights={path}",
        ],
    ).model
    model = build_model(cfg)
    ours = model.backbone.body.state_dict()
    assert torch.equal(ours["patch_embed.proj.weight"], src.state_dict()["patch_embed.proj.weight"])
    assert torch.equal(
        ours["stages_2.blocks.1.mlp.dwconv.weight"],
        src.state_dict()["stages.2.blocks.1.mlp.dwconv.weight"],
    )
    with pytest.raises(AvagError, match=r"missing\.pth not found"):
        build_model(
            load_config("tiny", [f"model.backbone_weights={tmp_path / 'missing.pth'}"]).model
        )


def test_vggish_release_weights_load(tmp_path):
    from avag_core.modeling.audio_encoder import VGGishEncoder

    torch.manual_seed(2)
    src = VGGishEncoder().state_dict()
    path = tmp_path / "vggish-10086976.pth"
    torch.save(src, path)
    cfg = load_config("tiny", ["model.audio_encoder=vggish", f"model.audio_weights={path}"]).model
    model = build_model(cfg)
    assert torch.equal(
        model.audio_encoder.state_dict()["embeddings.4.weight"], src["embeddings.4.weight"]
    )
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(AvagError, match=r"bad\.pth"):
        build_model(
            load_config("tiny", ["model.audio_encoder=vggish", f"model.audio_weights={bad}"]).model
        )


def _reference_keys():
    with gzip.open(DATA / "reference_keys_paper.json.gz", "rt") as f:
        return [(k, tuple(s)) for k, s in json.load(f)]


def test_reference_converter_covers_every_key_of_the_paper_model():
    """Key names and shapes recorded from the reference AVAGFormer (paper config)."""
    ref = {k: torch.empty(s, device="meta") for k, s in _reference_keys()}
    with torch.device("meta"):
        model = AVAGFormer(load_config("paper").model)
    converted, report = convert_reference_state_dict(ref, model.state_dict())
    assert report.missing == []
    assert len(converted) == len(model.state_dict())
    left_groups = {
        k.split(".")[0] if k.startswith("audio_proj1") else ".".join(k.split(".")[:3])
        for k in report.left_out
    }
    assert left_groups == {
        "audio_proj1",
        "head.in_proj.0",
        "head.transformer.decoder",
        "head.decode_func.film",
        "head.decode_dep.film",
    }
    assert (
        converted["pixel_encoder.in_proj.0.0.weight"].shape == ref["head.in_proj.1.0.weight"].shape
    )
    assert "backbone.body.stages_2.blocks.39.mlp.dwconv.weight" in converted
    # A wrong shape is reported with the key.
    bad = dict(ref)
    bad["head.fpn.lateral_convs.0.weight"] = torch.empty(1, 2, 1, 1, device="meta")
    with pytest.raises(AvagError, match=r"head\.fpn\.lateral_convs\.0\.weight"):
        convert_reference_state_dict(bad, model.state_dict())


def test_load_reference_checkpoint_reports_and_loads_values(tiny, tmp_path):
    _, model = tiny
    # A reference-named dict for the tiny model (names follow the reference's modules).
    inverse = {
        "pixel_encoder.layers.": "head.transformer.encoder.layers.",
        "fpn.": "head.fpn.",
        "mixer.": "head.mixer.",
        "query_generator.": "head.query_generator.",
        "learnable_query.": "head.learnable_query.",
        "decoder.": "head.",
        "seg_func.": "head.learnable_upsample_func.",
        "seg_dep.": "head.learnable_upsample_dep.",
        "audio_encoder.": "vggish.",
        "audio_proj.": "audio_proj.",
        "pixel_encoder.level_embed": "head.level_embed",
        "backbone.body.": "backbone.",
    }
    ref = {}
    for k, v in model.state_dict().items():
        if k.startswith("pixel_encoder.in_proj."):
            i, rest = k[len("pixel_encoder.in_proj.") :].split(".", 1)
            ref[f"head.in_proj.{int(i) + 1}.{rest}"] = torch.randn_like(v.float()).to(v.dtype)
            continue
        src = next(s for s in inverse if k.startswith(s))
        ref[inverse[src] + k[len(src) :]] = torch.randn_like(v.float()).to(v.dtype)
    ref["audio_proj1.weight"] = torch.zeros(2, 2)
    ref["head.transformer.decoder.layers.0.norm1.weight"] = torch.zeros(2)
    path = tmp_path / "ref.pth"
    torch.save({"model": {"module." + k: v for k, v in ref.items()}}, path)
    fresh = build_model(load_config("tiny").model)
    report = load_reference_checkpoint(fresh, path)
    assert report.missing == [] and sorted(report.left_out) == [
        "audio_proj1.weight",
        "head.transformer.decoder.layers.0.norm1.weight",
    ]
    assert torch.equal(
        fresh.state_dict()["mixer.task_prompt_img.weight"], ref["head.mixer.task_prompt_img.weight"]
    )
    partial = {k: v for k, v in ref.items() if not k.startswith("head.fpn.")}
    with pytest.raises(AvagError, match="fpn"):
        load_reference_checkpoint(fresh, partial)


def test_checkpoint_with_nan_weights_is_refused(tiny, tmp_path):
    cfg, model = tiny
    path = save_model_checkpoint(tmp_path / "nan.safetensors", model, cfg)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    meta = {"format": "avag-checkpoint-v1", "config": json.dumps(dataclasses.asdict(cfg))}
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[1] = float("nan")
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(AvagError, match=rf"nan\.safetensors: tensor {re.escape(key)} holds NaN"):
        load_model_checkpoint(path)


@pytest.mark.parametrize("key,value,msg", [
    ("image_size", 16384, r"model\.image_size must be <= 2048, got 16384"),
    ("num_queries", 0, r"model\.num_queries must be >= 1, got 0"),
    ("audio_encoder", "wav2vec", r"model\.audio_encoder must be one of vggish, light"),
])  # fmt: skip
def test_checkpoint_config_out_of_range_is_one_line(tiny, tmp_path, key, value, msg):
    from safetensors.torch import save_file

    cfg, model = tiny
    raw = dataclasses.asdict(cfg)
    raw["model"][key] = value
    path = tmp_path / "big.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "avag-checkpoint-v1",
                                          "config": json.dumps(raw)})
    with pytest.raises(AvagError, match=msg) as err:
        load_model_checkpoint(path)
    assert "\n" not in str(err.value) and "big.safetensors" in str(err.value)


def test_pretrained_file_with_inf_is_refused(tmp_path):
    from avag_core.weights.pretrained import read_state_dict

    path = tmp_path / "vggish.pth"
    torch.save({"features.0.weight": torch.tensor([1.0, float("inf")])}, path)
    with pytest.raises(AvagError, match=r"vggish\.pth: tensor features\.0\.weight holds NaN"):
        read_state_dict(path, "model.audio_weights")
