"""Learning check: does the realtime model learn the synthetic task on a small CPU?

Steps (each one an ordinary CLI call, printed so it can be run again by hand):
  1. ``avag data synth --size medium`` (skipped when the folder already has train.csv);
  2. ``avag train --config realtime`` under a wall-clock budget (default 30 min);
  3. ``avag eval`` of the best checkpoint on val, unseen, and val with shuffled audio.
Prints a table and writes ``learning_check.json``. Targets: function mIoU >= 0.5 on val,
>= 0.3 on unseen, and shuffled audio costing >= 0.15 function mIoU on val.

  python -m avag_core.benchmarks.learning_check --work runs/learning_check
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"val_miou_f": 0.5, "unseen_miou_f": 0.3, "shuffle_drop": 0.15}


def _run(cmd: list[str]) -> float:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - t0


def warm_feature_cache(data: Path, config: str, overrides: list[str]) -> float:
    """Compute every clip's log-mel patches once (data preprocessing, outside the budget)."""
    from avag_core.config import load_config
    from avag_core.data import AVAGDDataset

    t0 = time.monotonic()
    cfg = load_config(config, overrides)
    for split in ("train.csv", "val.csv", "unseen.csv"):
        ds = AVAGDDataset(data, split, cfg.model.image_size, train=False, cfg=cfg.data)
        for i in range(len(ds)):
            ds.audio_patches(i)
    dt = time.monotonic() - t0
    print(f"feature cache warm in {dt:.0f} s", flush=True)
    return dt


def ship(ckpt: Path, dest: Path, payload: dict, argv: list[str]) -> None:
    """Copy the checkpoint into the package with a README that says how it was made."""
    import shutil

    from avag_core.config import to_dict
    from avag_core.weights.checkpoint import checkpoint_config, checkpoint_extra

    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "realtime_synth.safetensors"
    shutil.copyfile(ckpt, target)
    cfg = checkpoint_config(target)
    extra = checkpoint_extra(target)
    import yaml

    t = payload["timings"]
    train_cmd = payload["train_command"].replace(sys.executable, "python")
    per_cat = ""
    val_json = ckpt.parent.parent / "eval_val.json"
    if val_json.is_file():
        per_cat = json.loads(val_json.read_text()).get("table", "")
    readme = f"""# realtime_synth.safetensors

A small AVAGFormer (``{payload.get('config', 'realtime')}`` preset, {cfg.model.image_size} px) trained from scratch on the
synthetic AVAGD-layout data set (``avag data synth --size {payload['size']} --seed
{payload['data_seed']}``) on a 2-core CPU within a {payload['budget_s']:.0f} s training
budget. It is a demonstration and test model for the synthetic world only: it has never
seen a real image. Size: {target.stat().st_size / 1e6:.1f} MB. Checkpoint metadata:
{json.dumps(extra)}.

## How it was made

```
python -m avag_core.benchmarks.learning_check {" ".join(shlex.quote(a) for a in argv)}
```

which ran (training seed ``train.seed={cfg.train.seed}``, data seed {payload['data_seed']}):

```
{train_cmd}
```

Wall time: feature cache {t.get('feature_cache_s', 0):.0f} s (0 to a few minutes, depending
on whether the clips' log-mel patches were already cached), training
{t.get('train_wall_s', 0):.0f} s (process, including start-up and the final
validation), evaluations {sum(v for k, v in t.items() if k.startswith('eval_')):.0f} s.
The machine was shared with other jobs during the run.

## Evaluation (metrics x100; `avag eval`, per-image protocol)

{payload['table']}

`val_shuffled` is val with every sample's audio swapped for another sample's
(`avag eval --shuffle-audio`). Scores are computed at the model's {cfg.model.image_size}x{cfg.model.image_size} output against
masks resized with nearest-neighbour; dependency metrics use only samples whose dependency
mask is non-empty.

### val per category

{per_cat}

## Config

```yaml
{yaml.safe_dump(to_dict(cfg), sort_keys=False).strip()}
```
"""
    (dest / "README.md").write_text(readme)
    print(f"shipped {target} ({target.stat().st_size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", default="runs/learning_check", help="folder for data, run, results")
    p.add_argument("--data", default=None, help="synthetic data folder (default <work>/synth)")
    p.add_argument("--size", default="medium")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--config", default="realtime")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--budget-s", type=float, default=1800.0, help="training wall-clock budget")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--skip-train", action="store_true", help="only evaluate <work>/run")
    p.add_argument("--ship", default=None, metavar="DIR",
                   help="copy the checkpoint to DIR/realtime_synth.safetensors with a README")
    p.add_argument("--ship-only", action="store_true",
                   help="with --ship: ship the finished run in <work> without re-running anything")
    args = p.parse_args(argv)
    if args.ship_only:
        payload = json.loads((Path(args.work) / "learning_check.json").read_text())
        ship(Path(args.work) / "run" / "best.safetensors", Path(args.ship), payload,
             payload.get("argv", []))
        return 0

    work = Path(args.work)
    data = Path(args.data) if args.data else work / "synth"
    run_dir = work / "run"
    avag = [sys.executable, "-m", "avag_core.cli.main"]
    timings: dict[str, float] = {}
    if not (data / "train.csv").is_file():
        timings["synth_s"] = _run([*avag, "data", "synth", "--out", str(data),
                                   "--seed", str(args.data_seed), "--size", args.size])
    if not args.skip_train:
        timings["feature_cache_s"] = warm_feature_cache(data, args.config, args.overrides)
    train_cmd = [*avag, "train", "--config", args.config, "--data", str(data),
                 "--out", str(run_dir), "--no-progress",
                 "--set", f"train.time_budget_s={args.budget_s}",
                 "--set", f"train.threads={args.threads}"]
    for o in args.overrides:
        train_cmd += ["--set", o]
    if not args.skip_train:
        timings["train_wall_s"] = _run(train_cmd)
    ckpt = run_dir / "best.safetensors"
    results = {}
    for name, split, shuffled in (("val", "val", False), ("unseen", "unseen", False),
                                  ("val_shuffled", "val", True)):
        out = work / f"eval_{name}.json"
        cmd = [*avag, "eval", "--checkpoint", str(ckpt), "--data", str(data), "--split", split,
               "--batch-size", str(args.eval_batch_size), "--threads", str(args.threads),
               "--json", str(out), "--plot", str(work / f"eval_{name}.png"), "--no-progress"]
        if shuffled:
            cmd.append("--shuffle-audio")
        timings[f"eval_{name}_s"] = _run(cmd)
        results[name] = json.loads(out.read_text())["overall"]

    val_f = results["val"]["miou_function"]
    unseen_f = results["unseen"]["miou_function"]
    drop = val_f - results["val_shuffled"]["miou_function"]
    checks = {
        "val_miou_f": (val_f, val_f >= TARGETS["val_miou_f"]),
        "unseen_miou_f": (unseen_f, unseen_f >= TARGETS["unseen_miou_f"]),
        "shuffle_drop": (drop, drop >= TARGETS["shuffle_drop"]),
    }

    def pct(v):
        return "n/a" if v is None or v != v else f"{100 * v:.2f}"

    lines = ["| split | n | mIoU_f | F_f | mIoU_d | F_d |", "|---|---|---|---|---|---|"]
    for name, s in results.items():
        lines.append(f"| {name} | {s['num_samples']} | {pct(s['miou_function'])} | "
                     f"{pct(s['fscore_function'])} | {pct(s['miou_dependency'])} | "
                     f"{pct(s['fscore_dependency'])} |")
    lines.append("")
    lines.append("| check | value | target | pass |")
    lines.append("|---|---|---|---|")
    for k, (v, ok) in checks.items():
        lines.append(f"| {k} | {pct(v)} | >= {100 * TARGETS[k]:.0f} | {'yes' if ok else 'NO'} |")
    table = "\n".join(lines)
    print(table)
    payload = {
        "train_command": " ".join(shlex.quote(c) for c in train_cmd),
        "config": args.config, "data": str(data), "data_seed": args.data_seed, "size": args.size,
        "budget_s": args.budget_s, "timings": timings, "results": results,
        "checks": {k: {"value": v, "target": TARGETS[k], "pass": ok} for k, (v, ok) in checks.items()},
        "table": table,
        "argv": list(argv) if argv is not None else sys.argv[1:],
    }
    (work / "learning_check.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {work / 'learning_check.json'}")
    if args.ship:
        ship(ckpt, Path(args.ship), payload, payload["argv"])
    return 0 if all(ok for _, ok in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
