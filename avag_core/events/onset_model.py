"""The learned onset model: a tiny causal dilated 1-D CNN over per-frame features.

Why this shape: a per-frame projection followed by ``valid`` dilated convolutions sees
``RECEPTIVE`` frames (~1 s of context) and has no padding, so scoring a whole recording
in one pass (training) and scoring the last ``RECEPTIVE - 1 + n`` frames for ``n`` new
ones (streaming) give the same outputs. Output ``t`` speaks about frame ``t - LOOKAHEAD``
(a few frames of hindsight make "a new sound starts here" far easier to tell from a
syllable or a drum note). Two logits per frame: "an action starts in this frame" and
"an action is sounding".
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avag_core.errors import AvagError
from avag_core.events.onset_features import FEATURES

CHANNELS = 48
DILATIONS = (1, 2, 4, 8, 16)
RECEPTIVE = 1 + 2 * sum(DILATIONS)  # frames one output sees
LOOKAHEAD = 3  # output t is about frame t - LOOKAHEAD
FORMAT = "avag-onset-1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "checkpoints" / "onset.safetensors"


class OnsetNet(nn.Module):
    """[batch, FEATURES, frames] -> [batch, 2, frames - RECEPTIVE + 1] logits (onset, active)."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.proj = nn.Conv1d(FEATURES, channels, 1)
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, 3, dilation=d) for d in DILATIONS)
        self.head = nn.Conv1d(channels, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.proj(x))
        for conv in self.convs:
            out = torch.relu(conv(h))
            h = out + h[..., h.shape[-1] - out.shape[-1]:]  # residual: the newest frames
        return self.head(h)


def save_onset_model(model: OnsetNet, path: str | Path, meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, **meta})


def load_onset_model(path: str | Path | None = None) -> OnsetNet:
    """The model in ``path`` (default: the shipped weights); one-line AvagError otherwise."""
    from avag_core.weights.checkpoint import load_state_strict, read_safetensors

    path = Path(path) if path else DEFAULT_WEIGHTS
    tensors, meta = read_safetensors(path, "onset model")
    if meta.get("format") != FORMAT:
        raise AvagError(f"onset model {path} is not an avag onset model (no '{FORMAT}' metadata)")
    model = OnsetNet()
    load_state_strict(model, tensors, str(path))
    return model.eval()
