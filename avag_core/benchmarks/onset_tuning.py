"""Choose the learned detector's event settings on held-out training-style streams.

Why not on the hearing benchmark: it must stay an honest test of settings chosen
elsewhere. These streams come from ``avag_core.events.onset_data`` (recordings the
benchmark never plays) with a seed the training never draws (the shipped members: 0-5), are fed
to ``AudioEventTracker`` exactly as the benchmark feeds it, and are scored with the
benchmark's matching (``hearing_bench.score``). Every setting in the grid sees the same
streams; the table is sorted by event F1.

    python -m avag_core.benchmarks.onset_tuning --streams 300 \\
        --grid learned_gap_s=0.25,0.1 --grid learned_on=0.5,0.6 --json tuning.json
    # two weights files on the same streams (values without commas):
    python -m avag_core.benchmarks.onset_tuning --grid onset_weights=,mine.safetensors

Needs the Debian packages listed in ``avag_core/checkpoints/onset.md`` (as training).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from avag_core.benchmarks.hearing_bench import event_config, run_detector, score
from avag_core.errors import AvagError
from avag_core.events import EventConfig
from avag_core.events.onset_data import (
    HOP,
    SHORT_ACTION_P,
    SR,
    StreamRecipe,
    load_library,
    make_stream,
    training_sources,
)
from avag_core.events.train_onset import share_arg
from avag_core.user_cache import default_cache_dir

# the previous shipped file's recipe (no retakes), kept so that figures stay comparable
# across files (checkpoints/onset.md, "Why this file"); drawn with a seed training never uses
_RECIPE = StreamRecipe(short_action_p=SHORT_ACTION_P)


def onsets_of(labels: np.ndarray) -> list[float]:
    """Reference onsets (s) of a stream from its frame labels: the first frame of each
    onset run holds the onset in its newest hop."""
    on = labels[:, 0] > 0.5
    starts = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
    return [float((k + 1) * HOP / SR) for k in starts]


def heldout_streams(n: int, seed: int, cache: Path, retake_p: float = 0.0,
                    headroom: bool = False, gate_p: float = 0.0) -> list[tuple[np.ndarray, list[float]]]:
    """``n`` streams of ``_RECIPE``, with a share ``retake_p`` of backgrounds and actions
    played as another take (``onset_data._retake``), with ``headroom`` each mix within
    full scale, and a share ``gate_p`` heard through a noise gate (``onset_data._gate``):
    streams like those recipes' training."""
    lib = load_library(cache, 0)  # the training library (its speech track is seed 0's)
    rng = np.random.default_rng(seed)
    recipe = replace(_RECIPE, retake_p=retake_p, headroom=headroom, gate_p=gate_p)
    return [(audio, onsets_of(labels)) for audio, labels in (make_stream(lib, rng, recipe) for _ in range(n))]


def evaluate(streams: list[tuple[np.ndarray, list[float]]], cfg: EventConfig) -> dict[str, float]:
    hits = dets = actions = 0
    errors: list[float] = []
    for audio, onsets in streams:
        events = run_detector(audio, cfg).events
        s = score(events, onsets)
        hits, dets, actions = hits + s["hits"], dets + s["detections"], actions + s["actions"]
        errors += s["onset_errors_ms"]
    recall = hits / actions if actions else 1.0
    precision = hits / dets if dets else 1.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {"actions": actions, "detections": dets, "recall": recall, "precision": precision, "f1": f1,
            "onset_p90_ms": float(np.percentile(errors, 90)) if errors else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=300, help="held-out 12 s streams")
    ap.add_argument("--seed", type=int, default=1000, help="stream seed (the shipped members were trained with seeds 0-5)")
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="an EventConfig setting and the values to try (detector is 'learned')")
    ap.add_argument("--retakes", type=share_arg, default=0.0, metavar="P",
                    help="share of the streams' backgrounds and actions played as another take (as train_onset "
                    "--retakes); 0 = the previous file's recipe, the figures in checkpoints/onset.md")
    ap.add_argument("--headroom", action="store_true",
                    help="each stream within full scale before the deliberate hot inputs (as train_onset "
                    "--headroom; without it, as the figures in checkpoints/onset.md)")
    ap.add_argument("--gated", type=share_arg, default=0.0, metavar="P",
                    help="share of the streams heard through a noise gate (as train_onset --gated)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=default_cache_dir() / "onset_train")
    args = ap.parse_args(argv)
    axes = []
    for g in args.grid:
        name, sep, values = g.partition("=")
        if not sep or not name:
            ap.error(f"--grid {g}: expected an EventConfig setting NAME=V1,V2,...")
        # each value read and checked as --set reads it (hearing_bench), before any stream is drawn
        axis = []
        for v in values.split(","):
            try:
                value = getattr(event_config({"detector": "learned", name: yaml.safe_load(v)}), name)
            except (AvagError, ValueError, yaml.YAMLError) as e:
                ap.error(f"--grid {g}: {str(e).splitlines()[0]}")
            axis.append((name, value))
        axes.append(axis)
    missing = [kind for kind, paths in training_sources().items() if not paths]
    if missing or shutil.which("espeak-ng") is None:
        what = ", ".join(missing + ([] if shutil.which("espeak-ng") else ["espeak-ng"]))
        print(f"onset_tuning: no training recordings for: {what}; install the packages listed in "
              "avag_core/checkpoints/onset.md", file=sys.stderr)
        return 2
    streams = heldout_streams(args.streams, args.seed, args.cache, args.retakes, args.headroom, args.gated)
    rows = []
    for combo in itertools.product(*axes) if axes else [()]:
        cfg = event_config({"detector": "learned", **dict(combo)})
        rows.append({"settings": dict(combo), **evaluate(streams, cfg)})
    rows.sort(key=lambda r: -r["f1"])
    drawn = f", {args.retakes:g} of them other takes" if args.retakes else ""
    if args.headroom:
        drawn += ", within full scale"
    if args.gated:
        drawn += f", {args.gated:g} of them gated"
    print(f"{len(streams)} held-out streams (seed {args.seed}{drawn}), {rows[0]['actions']} actions")
    print(f"{'settings':<48} {'recall':>6} {'precision':>9} {'F1':>6} {'p90 ms':>7} {'detections':>10}")
    for r in rows:
        p90 = "-" if r["onset_p90_ms"] is None else f"{r['onset_p90_ms']:.0f}"
        label = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in r["settings"].items()) or "defaults"
        print(f"{label:<48} {r['recall']:>6.3f} {r['precision']:>9.3f} {r['f1']:>6.3f} {p90:>7} "
              f"{r['detections']:>10}")
    if args.json:
        args.json.write_text(json.dumps({"streams": len(streams), "seed": args.seed, "retakes": args.retakes,
                                         "headroom": args.headroom, "gated": args.gated, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
