"""`avag train`: train AVAGFormer on an AVAGD-layout data root (CPU, one GPU or torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path

from avag_core.config import add_config_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (single process, or several under torchrun)",
        description=(
            "Train on <data>/train.csv, validate on <data>/val.csv. For several GPUs or "
            "nodes start it with torchrun, e.g. `torchrun --nproc-per-node 4 -m "
            "avag_core.cli.main train ...`. Checkpoints are atomic; --resume continues a "
            "killed run exactly (same config, sample order and RNG states)."
        ),
    )
    add_config_args(p)
    p.add_argument("--data", required=True, help="data root holding train.csv and val.csv")
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from CKPT (default: <out>/checkpoint.pt); the saved config "
                        "is used, --config/--set are ignored")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="fine-tune: start from the weights of model checkpoint CKPT "
                        "(.safetensors, e.g. the shipped realtime_synth.safetensors or a "
                        "best.safetensors); its architecture is used, optimiser and schedule "
                        "start fresh from --config")
    p.add_argument("--freeze", action="append", default=[], choices=["backbone", "audio"],
                   help="keep this part fixed for the whole run (repeatable): backbone "
                        "(visual encoder) or audio (audio encoder)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("--train-csv", default="train.csv")
    p.add_argument("--val-csv", default=None, help="default: <train.val_split>.csv")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avag_core.config import load_config
    from avag_core.training.trainer import STATE_FILE, Trainer

    resume = args.resume
    if resume == "auto":
        resume = str(Path(args.out) / STATE_FILE)
    cfg = load_config(args.config, args.overrides)
    if resume is not None and (args.init_from or args.freeze):
        print("--resume continues the saved run as it was: --init-from/--freeze are ignored")
    elif args.init_from or args.freeze:
        from avag_core.training.finetune import describe_freeze, finetune_config, freeze_config

        if args.init_from:
            cfg = finetune_config(cfg, args.init_from, args.overrides, args.freeze)
            print(f"fine-tuning from {args.init_from}: {describe_freeze(cfg)}", flush=True)
        else:
            cfg = freeze_config(cfg, args.freeze)
    trainer = Trainer(
        cfg,
        args.data,
        args.out,
        resume=resume,
        device=args.device,
        train_csv=args.train_csv,
        val_csv=args.val_csv,
        progress=not args.no_progress,
    )
    result = trainer.fit()
    if trainer.dist.is_main:
        print(f"finished epoch {result.epoch} step {result.step}"
              + (" (stopped early)" if result.stopped_early else ""))
        if result.last_val:
            v = result.last_val
            print(f"val mIoU_f {100 * v['miou_function']:.2f}  F_f {100 * v['fscore_function']:.2f}")
        print(f"checkpoints in {result.out_dir}")
    return 0


if __name__ == "__main__":  # allows `torchrun -m avag_core.cli.train ...`
    import sys

    from avag_core.cli.main import main

    sys.exit(main(["train", *sys.argv[1:]]))
