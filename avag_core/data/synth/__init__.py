"""Synthetic audio-visual affordance data in the AVAGD layout (``avag data synth``)."""

from .generate import SIZES, generate
from .sounds import SOUND_FAMILIES, synth_action_sound
from .world import AFFORDANCES, SEEN, UNSEEN

__all__ = [
    "AFFORDANCES",
    "SEEN",
    "SIZES",
    "SOUND_FAMILIES",
    "UNSEEN",
    "generate",
    "synth_action_sound",
]
