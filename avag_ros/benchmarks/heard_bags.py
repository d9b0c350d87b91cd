"""What was heard, on sound events cut from a stream: demo bags of many seeds, offline.

    python -m avag_ros.benchmarks.heard_bags [--seeds 1-10] [--backgrounds speech,music] \\
        [--background-snr-db 20] [--json heard_bags.json]

Each seed is the demo's bag (`avag demo --seed S`: 6 scenes, each an action sound and then
a sound that is not an action: speech, a cough, clapping, music, an alarm, footsteps),
replayed offline through the node's own path (detector, pinned inputs, action head, masks)
with the node's default parameters. Prints per seed and in total: actions detected and
accepted (named, given masks), actions rejected, sounds that are not actions rejected, not
heard as an event, or given masks; writes JSON. Targets (issue "What was heard"): at least
95 % of the non-actions without masks, at most 3 % of the actions lost.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def parse_seeds(text: str) -> list[int]:
    """``1-10`` or ``1,4,7`` (or both, comma-separated)."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def run_seeds(work: Path, seeds: list[int], args: argparse.Namespace, backgrounds: tuple[str, ...]) -> list[dict]:
    """One demo bag per seed in ``work``, replayed offline; prints and returns a row each."""
    from avag_core.data.synth import generate
    from avag_ros.bag.evaluate import evaluate_bag
    from avag_ros.bag.synth_bag import demo_bag_config, load_scenes, write_synth_bag

    rows = []
    print(f"{'seed':>5} {'actions':>7} {'detected':>8} {'rejected':>8} {'others':>6} {'rejected':>8} "
          f"{'no event':>8} {'masks':>5}")
    for seed in seeds:
        data = generate(work / f"data{seed}", seed=seed, size="tiny")
        bag = work / f"bag{seed}"
        write_synth_bag(load_scenes(data, "val", limit=args.scenes), bag,
                        demo_bag_config(seed, backgrounds, args.background_snr_db))
        r = evaluate_bag(bag, None, work / f"report{seed}", overrides=args.overrides)["offline"]
        ev, h = r["events"], r["heard"]
        row = {"seed": seed, "actions": ev["ground_truth"], "detected": ev["matched"],
               "actions_rejected": h["actions_rejected"], "others": h["distractors"],
               "others_rejected": h["rejected"], "others_not_heard": h["not_heard"],
               "others_given_masks": h["given_masks"]}
        rows.append(row)
        print(f"{seed:>5} {row['actions']:>7} {row['detected']:>8} {row['actions_rejected']:>8} {row['others']:>6} "
              f"{row['others_rejected']:>8} {row['others_not_heard']:>8} {row['others_given_masks']:>5}")
    return rows


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see avag_core/cli/main.py)
    from avag_ros.bag.synth_bag import DEMO_BACKGROUND_SNR_DB

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 3,7,11")
    p.add_argument("--scenes", type=int, default=6)
    p.add_argument("--backgrounds", default="", help="comma-separated: speech, music or audio files")
    p.add_argument("--background-snr-db", type=float, default=DEMO_BACKGROUND_SNR_DB)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override one node parameter")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    backgrounds = tuple(b.strip() for b in args.backgrounds.split(",") if b.strip())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="avag_heard_bags_") as tmp:
        rows = run_seeds(Path(tmp), parse_seeds(args.seeds), args, backgrounds)
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "seed"}
    lost = 1.0 - total["detected"] / total["actions"]
    kept_out = 1.0 - total["others_given_masks"] / total["others"]
    print(f"total: actions {total['detected']}/{total['actions']} detected and named (lost {lost:.1%}: "
          f"{total['actions_rejected']} turned away by the head, "
          f"{total['actions'] - total['detected'] - total['actions_rejected']} not heard); sounds that are not actions "
          f"{total['others'] - total['others_given_masks']}/{total['others']} without masks ({kept_out:.1%}: "
          f"{total['others_rejected']} rejected, {total['others_not_heard']} not an event); "
          f"{time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "total": total, "actions_lost": lost,
                                         "others_without_masks": kept_out, "backgrounds": list(backgrounds),
                                         "background_snr_db": args.background_snr_db,
                                         "overrides": args.overrides}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
