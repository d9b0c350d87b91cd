"""The learned onset model: a tiny causal dilated 1-D CNN over per-frame features.

Why this shape: a per-frame projection followed by ``valid`` dilated convolutions sees
``shape.receptive`` frames (1 s of context for the first weights, 4 s for the shipped ones)
and has no padding, so scoring a whole recording in one pass (training) and scoring the
last ``receptive - 1 + n`` frames for ``n`` new ones (streaming) give the same outputs.
Output ``t`` speaks about frame ``t - shape.lookahead`` (a few frames of hindsight make
"a new sound starts here" far easier to tell from a syllable or a drum note). Two logits
per frame: "an action starts in this frame" and "an action is sounding". The shape is
stored in the weights file's metadata, so a file says how to run it.

With ``shape.across`` channels, each frame's per-band inputs first go through a
convolution along the mel bands (``ACROSS_KERNEL`` bands wide, one frame long: no time
context, so streaming is unchanged), whose outputs join the inputs of the projection.
Why: the projection alone weighs each band on its own, so a click a few bands higher is a
pattern it never saw, and "this band rose while its neighbours did not" (a harmonic, a
voice) is hard to build from it. Six of the shipped file's twelve members have it (checkpoints/onset.md).

A file may hold several members (``OnsetEnsemble``: the same recipe trained with other
seeds); their logits are averaged. Why: one training run's noise is as large as the
differences between training recipes, and averaging two or three runs keeps what they agree
on, which is fewer false onsets on music and speech. Members read one input on one timeline
but may differ in ``across`` (metadata ``member_across``): members with and without the
convolution along the bands hear different things, and their mean beat either kind alone
(checkpoints/onset.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from avag_core.errors import AvagError
from avag_core.events.onset_features import (
    CLIP_DB,
    FRAME,
    HOP,
    MELS,
    OnsetFeatures,
    band_starts,
    feature_count,
)

FORMAT = "avag-onset-1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "checkpoints" / "onset.safetensors"
ACROSS_KERNEL = 5  # mel bands one output of the convolution along the bands reads


@dataclass(frozen=True)
class OnsetShape:
    """Width, dilations, hindsight and input of an OnsetNet (defaults: the first weights'
    shape, which wrote no shape metadata)."""

    channels: int = 48
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    lookahead: int = 3  # output t is about frame t - lookahead
    peaks: bool = False  # input includes the levels against each band's recent peaks (OnsetFeatures)
    clip_db: float = CLIP_DB  # input levels clipped at +-clip_db (OnsetFeatures)
    percussive: int = 0  # window in samples of the broadband part the input includes (BroadbandPart; 0: none)
    across: int = 0  # channels of the convolution along the mel bands (0: none)

    def __post_init__(self) -> None:
        # the broadband part's window: whole hops of the frames every onset model reads
        window_ok = self.percussive == 0 or (self.percussive >= FRAME and self.percussive % HOP == 0)
        if self.channels < 1 or not self.dilations or min(self.dilations) < 1 or self.lookahead < 0 \
                or not 0 < self.clip_db <= 200 or not window_ok or self.across < 0:
            raise ValueError(f"channels and dilations must be >= 1, lookahead and across >= 0, clip_db in (0, 200] "
                             f"and percussive 0 or a multiple of {HOP} from {FRAME} up, got "
                             f"channels={self.channels}, dilations={','.join(map(str, self.dilations))}, "
                             f"lookahead={self.lookahead}, clip_db={self.clip_db}, percussive={self.percussive}, "
                             f"across={self.across}")

    def features(self, frame: int, hop: int, sample_rate: int) -> OnsetFeatures:
        """The input this shape was trained on: the one place training and the live scorer
        turn a shape into features, so a new input field cannot reach only one of them."""
        return OnsetFeatures(frame, hop, sample_rate, peaks=self.peaks, percussive=self.percussive,
                             clip_db=self.clip_db)

    @property
    def inputs(self) -> int:
        """Features per frame this shape reads."""
        return feature_count(self.peaks, self.percussive)

    @property
    def receptive(self) -> int:
        """Frames one output sees."""
        return 1 + 2 * sum(self.dilations)

    def to_meta(self) -> dict[str, str]:
        return {"channels": str(self.channels), "dilations": ",".join(map(str, self.dilations)),
                "lookahead": str(self.lookahead), "peaks": str(int(self.peaks)), "clip_db": f"{self.clip_db:g}",
                "percussive": str(self.percussive), "across": str(self.across)}

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> OnsetShape:
        d = cls()
        dil = meta.get("dilations")
        return cls(channels=int(meta.get("channels", d.channels)),
                   dilations=tuple(int(v) for v in dil.split(",")) if dil else d.dilations,
                   lookahead=int(meta.get("lookahead", d.lookahead)),
                   peaks=_flag(meta.get("peaks", "0")),
                   percussive=int(meta.get("percussive", "0")),
                   across=int(meta.get("across", "0")),
                   clip_db=float(meta.get("clip_db", d.clip_db)))


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"peaks must be 0 or 1, got {text!r}")
    return text == "1"


class OnsetNet(nn.Module):
    """[batch, shape.inputs, frames] -> [batch, 2, frames - receptive + 1] logits (onset, active)."""

    def __init__(self, *, shape: OnsetShape | None = None) -> None:
        super().__init__()
        self.shape = shape or OnsetShape()
        c, across = self.shape.channels, self.shape.across
        self.starts = band_starts(self.shape.peaks)
        self.across = (nn.Conv2d(len(self.starts), across, (ACROSS_KERNEL, 1), padding=(ACROSS_KERNEL // 2, 0))
                       if across else None)
        self.proj = nn.Conv1d(self.shape.inputs + across * MELS, c, 1)
        self.convs = nn.ModuleList(nn.Conv1d(c, c, 3, dilation=d) for d in self.shape.dilations)
        self.head = nn.Conv1d(c, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.across is not None:  # [B, groups, MELS, T] -> [B, across * MELS, T], joined to the inputs
            bands = torch.stack([x[:, s:s + MELS] for s in self.starts], dim=1)
            x = torch.cat([x, torch.relu(self.across(bands)).flatten(1, 2)], dim=1)
        h = torch.relu(self.proj(x))
        for conv in self.convs:
            out = torch.relu(conv(h))
            h = out + h[..., h.shape[-1] - out.shape[-1]:]  # residual: the newest frames
        return self.head(h)


def shares_input(a: OnsetShape, b: OnsetShape) -> bool:
    """Whether members of these shapes can be one ensemble: the same input, width, layers and
    hindsight, so one set of features feeds both and their outputs speak of the same frames;
    only the convolution along the bands (``across``) may differ."""
    return replace(a, across=0) == replace(b, across=0)


class OnsetEnsemble(nn.Module):
    """Members run side by side: the mean of their logits (OnsetNet's output). ``shape`` is
    the first member's; every member shares its input and timing (``shares_input``), each
    has its own ``across`` in ``member.shape``."""

    def __init__(self, *, members: list[OnsetNet]) -> None:
        super().__init__()
        if not members or any(not shares_input(m.shape, members[0].shape) for m in members):
            raise ValueError("an ensemble needs one or more members of one input and timing "
                             "(their shapes may differ in across only)")
        self.shape = members[0].shape
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def save_onset_model(model: OnsetNet | OnsetEnsemble, path: str | Path, meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    members = {"members": str(len(model.members))} if isinstance(model, OnsetEnsemble) else {}
    if members and any(m.shape.across != model.shape.across for m in model.members):
        members["member_across"] = ",".join(str(m.shape.across) for m in model.members)
    save_file(state, str(path), metadata={"format": FORMAT, **meta, **members, **model.shape.to_meta()})


def load_onset_model(path: str | Path | None = None) -> OnsetNet | OnsetEnsemble:
    """The model in ``path`` (default: the shipped weights); one-line AvagError otherwise.
    A file with ``members`` in its metadata is an OnsetEnsemble, else one OnsetNet."""
    from avag_core.weights.checkpoint import load_state_strict, read_safetensors

    path = Path(path) if path else DEFAULT_WEIGHTS
    tensors, meta = read_safetensors(path, "onset model")
    if meta.get("format") != FORMAT:
        raise AvagError(f"onset model {path} is not an avag onset model (no '{FORMAT}' metadata)")
    try:
        shape = OnsetShape.from_meta(meta)
    except ValueError as e:
        raise AvagError(f"onset model {path} has a malformed shape in its metadata ({e})") from None
    members = meta.get("members")
    if members is not None and not (members.isdigit() and int(members) >= 1):
        raise AvagError(f"onset model {path} has a malformed member count in its metadata ({members!r})")
    across = meta["member_across"].split(",") if "member_across" in meta else None
    if across is not None and (members is None or len(across) != int(members) or not all(a.isdigit() for a in across)):
        raise AvagError(f"onset model {path} has a malformed member_across in its metadata "
                        f"({meta['member_across']!r} for {members or 'no'} members)")
    model: OnsetNet | OnsetEnsemble = (
        OnsetNet(shape=shape) if members is None
        else OnsetEnsemble(members=[OnsetNet(shape=replace(shape, across=int(across[i])) if across else shape)
                                    for i in range(int(members))]))
    load_state_strict(model, tensors, str(path))
    return model.eval()
