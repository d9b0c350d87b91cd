"""Convert a state dict saved from the reference implementation (jscslld/AVAGFormer,
``model/AVAGFormer.py``) onto our modules.

The reference builds several modules that its forward pass never calls; their keys are
left out and reported:

* ``audio_proj1``: a Linear(256*20 -> 256) (its call is commented out);
* ``head.in_proj.0``: the projection of the stride-4 level (only levels 1-3 are used);
* ``head.transformer.decoder``: a 6-layer transformer decoder (only ``encode`` is used);
* ``head.decode_func.film`` / ``head.decode_dep.film``: FiLM layers, called only with a
  structure prompt, which the head never receives;
* ``vggish.pproc``: the PCA post-processor, disabled in the reference config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avag_core.errors import AvagError
from avag_core.weights.pretrained import read_state_dict

# Reference prefixes whose modules are built but never used.
UNUSED_PREFIXES = (
    "audio_proj1.",
    "head.in_proj.0.",
    "head.transformer.decoder.",
    "head.decode_func.film.",
    "head.decode_dep.film.",
    "vggish.pproc.",
)

# (reference prefix, our prefix), first match wins.
PREFIX_MAP = (
    ("vggish.", "audio_encoder."),
    ("audio_proj.", "audio_proj."),
    ("head.level_embed", "pixel_encoder.level_embed"),
    ("head.transformer.encoder.layers.", "pixel_encoder.layers."),
    ("head.fpn.", "fpn."),
    ("head.mixer.", "mixer."),
    ("head.query_generator.", "query_generator."),
    ("head.learnable_query.", "learnable_query."),
    ("head.decode_func.", "decoder.decode_func."),
    ("head.decode_dep.", "decoder.decode_dep."),
    ("head.func_head.", "decoder.func_head."),
    ("head.dep_head.", "decoder.dep_head."),
    ("head.mask_conditioned_attn.", "decoder.mask_conditioned_attn."),
    ("head.learnable_upsample_func.", "seg_func."),
    ("head.learnable_upsample_dep.", "seg_dep."),
)


@dataclass
class ConversionReport:
    loaded: int = 0
    left_out: list[str] = field(default_factory=list)  # reference keys we do not use
    missing: list[str] = field(default_factory=list)  # our keys the file did not provide

    def summary(self) -> str:
        return (
            f"loaded {self.loaded} tensors; left out {len(self.left_out)} unused reference keys "
            f"({', '.join(sorted({_group(k) for k in self.left_out}))}); missing {len(self.missing)}"
        )


def _group(key: str) -> str:
    for p in UNUSED_PREFIXES:
        if key.startswith(p):
            return p.rstrip(".")
    return key


def _backbone_key(key: str, own: dict[str, torch.Tensor]) -> str | None:
    """``backbone.<release-layout key>`` -> our ``backbone.body.<timm features key>``."""
    k = key[len("backbone.") :]
    if (
        "backbone.body.patch_embed.proj.weight" not in own
    ):  # non-PVT backbone: keys already in timm layout
        cand = "backbone.body." + k
        return cand if cand in own else None
    k = k.replace("patch_embed1", "patch_embed")
    k = re.sub(r"^patch_embed(\d)", lambda m: f"stages.{int(m.group(1)) - 1}.downsample", k)
    k = k.replace("dwconv.dwconv", "dwconv")
    k = re.sub(
        r"^block(\d+)\.(\d+)", lambda m: f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}", k
    )
    k = re.sub(r"^norm(\d+)", lambda m: f"stages.{int(m.group(1)) - 1}.norm", k)
    for cand in (
        "backbone.body." + k,
        "backbone.body." + re.sub(r"^stages\.(\d+)", r"stages_\1", k),
    ):
        if cand in own:
            return cand
    return None


def convert_reference_state_dict(
    ref: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename reference keys to ours. ``own``: our model's state dict (for names and shapes)."""
    own_shapes = {k: v for k, v in own.items()}
    out: dict[str, torch.Tensor] = {}
    report = ConversionReport()
    unknown: list[str] = []
    for key, value in ref.items():
        if key.startswith(UNUSED_PREFIXES) or key.startswith("head.positional_encoding"):
            report.left_out.append(key)
            continue
        new: str | None = None
        if key.startswith("backbone."):
            new = _backbone_key(key, own_shapes)
        elif key.startswith("head.in_proj."):
            idx, rest = key[len("head.in_proj.") :].split(".", 1)
            new = f"pixel_encoder.in_proj.{int(idx) - 1}.{rest}"
        else:
            for src, dst in PREFIX_MAP:
                if key.startswith(src):
                    new = dst + key[len(src) :]
                    break
        if new is None or new not in own_shapes:
            unknown.append(key)
            continue
        if tuple(value.shape) != tuple(own_shapes[new].shape):
            raise AvagError(
                f"reference key {key} has shape {tuple(value.shape)} but {new} expects "
                f"{tuple(own_shapes[new].shape)} (was the model built with the same preset?)"
            )
        out[new] = value
    if unknown:
        raise AvagError(
            f"{len(unknown)} reference key(s) have no counterpart, e.g. {', '.join(unknown[:3])}"
        )
    report.loaded = len(out)
    report.missing = [k for k in own if k not in out]
    return out, report


def load_reference_checkpoint(
    model: torch.nn.Module, source: str | Path | dict[str, torch.Tensor], strict: bool = True
) -> ConversionReport:
    """Load a reference state dict (a dict or a .pth/.safetensors file) into ``model``.

    With ``strict`` every one of our tensors must be provided. Returns the report of keys
    loaded, left out (built-but-unused reference modules) and missing.
    """
    where = "reference state dict" if isinstance(source, dict) else f"reference checkpoint {source}"
    ref = source if isinstance(source, dict) else read_state_dict(source, "reference checkpoint")
    ref = {k[7:] if k.startswith("module.") else k: v for k, v in ref.items()}
    own = model.state_dict()
    try:
        converted, report = convert_reference_state_dict(ref, own)
    except AvagError as exc:
        raise AvagError(f"{where}: {exc}") from None
    if strict and report.missing:
        raise AvagError(
            f"{where}: {len(report.missing)} of our tensors are not in it, e.g. "
            f"{', '.join(report.missing[:3])}"
        )
    model.load_state_dict(converted, strict=False)
    return report
