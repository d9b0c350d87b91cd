"""A member's training state between epochs, so ``train_onset --resume`` continues a killed run.

Why: a member of the shipped recipe trains for 40 minutes or more on one core, and an ensemble
for hours; a run stopped by a reboot, the OOM killer or the end of a shift should lose at most
one epoch, not the members trained so far. After each epoch a member writes its weights, its
optimiser and learning-rate schedule, the state of its two generators (stream order, band
masks) and the epoch, atomically (``atomic_torch_save``: a kill at any instant leaves the
previous state or the new one). Its streams are not stored: they are drawn again from the
member's seed, the same numbers, so the resumed member's tensors are those of a run that was
never stopped. A state records the recipe it was trained with, and one written by another
recipe is refused, not continued.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from avag_core.errors import AvagError
from avag_core.training.state import atomic_torch_save

FORMAT = "avag-onset-member-state-1"
_KEYS = {"format", "seed", "recipe", "epoch", "model", "opt", "sched", "gens"}
# arguments that do not change what a member learns: where it goes, how many train at once
_NOT_RECIPE = ("out", "jobs", "resume", "cache", "join", "seed")


def state_path(out: Path, seed: int) -> Path:
    """The state of the member with this seed, next to the file the command writes."""
    return out.with_name(f"{out.name}.seed{seed}.state.pt")


def recipe_of(args: argparse.Namespace) -> dict[str, str]:
    """What a member learns from, as text: every argument but where the file goes, how many
    members train at once and the seed (the state's own)."""
    return {k: str(v) for k, v in sorted(vars(args).items()) if k not in _NOT_RECIPE}


def save_member_state(path: Path, *, seed: int, recipe: dict[str, str], epoch: int, model: torch.nn.Module,
                      opt: torch.optim.Optimizer, sched: Any, gens: list[torch.Generator]) -> None:
    """The member after ``epoch`` epochs (atomically)."""
    atomic_torch_save({"format": FORMAT, "seed": seed, "recipe": recipe, "epoch": epoch,
                       "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                       "gens": [g.get_state() for g in gens]}, path)


def load_member_state(path: Path, seed: int, recipe: dict[str, str]) -> dict[str, Any] | None:
    """The state at ``path`` (None when there is none); one that cannot be read or was written
    for another seed or recipe is an AvagError naming why."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a foreign or damaged file
        raise AvagError(f"{path} cannot be read as a member's training state: {e}".splitlines()[0]) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not state.keys() >= _KEYS:
        raise AvagError(f"{path} is not a member's training state of train_onset")
    if state["seed"] != seed:
        raise AvagError(f"{path} holds the member of seed {state['seed']}, not {seed}")
    differ = [k for k in sorted(set(recipe) | set(state["recipe"])) if recipe.get(k) != state["recipe"].get(k)]
    if differ:
        k = differ[0]
        raise AvagError(f"{path} was trained with --{k.replace('_', '-')} {state['recipe'].get(k)}, this run "
                        f"has {recipe.get(k)}: run it as it was, or without --resume to start anew")
    return state
