"""`avag eval`: score a checkpoint on a split with the field's metric protocol."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (mIoU, F-score; overall and per category)",
        description=(
            "Per-image mIoU (sigmoid > 0.5) and max F-score (beta^2 = 0.3, 255 thresholds); "
            "function metrics over all samples, dependency metrics over samples with a "
            "non-empty dependency mask. Every sample is scored, whatever the batch size."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors)")
    p.add_argument("--data", required=True, help="data root holding <split>.csv")
    p.add_argument("--split", default="val", help="val, unseen, train or a CSV name (default val)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--shuffle-audio", action="store_true",
                   help="give every sample another sample's audio (does the model listen?)")
    p.add_argument("--shuffle-seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", help="write results JSON here "
                   "(default: <checkpoint stem>_<split>[_shuffled].json next to --out-dir)")
    p.add_argument("--out-dir", default=None, help="folder for JSON and plot (default: none)")
    p.add_argument("--plot", default=None, help="PNG bar plot per category")
    p.add_argument("--save-overlays", default=None, metavar="DIR",
                   help="write image | prediction | ground truth PNGs here")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unusable CSV rows (each printed with its line and reason; listed "
                        "in the JSON) instead of failing; the scores cover the rest")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept CSV paths that are absolute or leave the data root with '..'")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avag_core.evaluation.run import evaluate_checkpoint, headline

    json_out, plot = args.json_out, args.plot
    if args.out_dir:
        stem = Path(args.checkpoint).stem + f"_{Path(args.split).stem}"
        stem += "_shuffled" if args.shuffle_audio else ""
        json_out = json_out or str(Path(args.out_dir) / f"{stem}.json")
        plot = plot or str(Path(args.out_dir) / f"{stem}.png")
    payload = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        shuffle_audio=args.shuffle_audio,
        shuffle_seed=args.shuffle_seed,
        save_overlays=args.save_overlays,
        json_out=json_out,
        plot_out=plot,
        progress=not args.no_progress,
        threads=args.threads,
        skip_bad=args.skip_bad,
        allow_outside_root=args.allow_outside_root,
    )
    print(payload["table"])
    print(headline(payload["overall"]))
    if payload.get("actions", {}).get("n"):
        a = payload["actions"]
        print(f"what was heard ({a['n']} clips, action head beside the checkpoint): top-1 {100 * a['top1']:.1f} %, "
              f"ECE {a['ece']:.3f}, true actions the gate drops at {a['threshold']:.2f}: "
              f"{100 * a['action_loss']:.1f} % (confusion matrix and reliability bins in the JSON)")
    if payload["skipped_rows"]:
        print(f"skipped {len(payload['skipped_rows'])} bad row(s) (listed above and in the JSON)")
    if json_out:
        print(f"wrote {json_out}")
    if plot:
        print(f"wrote {plot}")
    return 0
