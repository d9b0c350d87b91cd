"""`avag heard`: what was heard in a clip (`recognize`) and training the action head (`train`)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("heard", help="name the action in sound clips, or train the action head")
    inner = p.add_subparsers(dest="heard_command", metavar="ACTION", required=True)
    r = inner.add_parser("recognize", help="label clips: action name, confidence, masks or rejected")
    r.add_argument("--checkpoint", required=True, help="model checkpoint; its action head lies beside it")
    r.add_argument("--head", default="", help="action head file (default: beside the checkpoint)")
    r.add_argument("--enrollment", default="", help="enrollment file from `avag enroll`")
    r.add_argument("--threshold", type=float, default=None, help="rejection threshold (default: the head's)")
    r.add_argument("clips", nargs="+", help="audio files")
    r.set_defaults(func=run_recognize)
    t = inner.add_parser("train", help="train the action head on cached audio-token embeddings")
    add_train_arguments(t)
    t.set_defaults(func=run_train)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `avag heard train` (also `python -m avag_core.hearing.train`)."""
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors)")
    p.add_argument("--data", required=True,
                   help="AVAGD-layout data with train.csv and val.csv, e.g. `avag data synth` output")
    p.add_argument("--out", default="",
                   help="head file (default: <checkpoint stem>.actions.safetensors beside it)")
    p.add_argument("--work", default="runs/heard", help="embedding cache folder")
    p.add_argument("--max-action-loss", type=float, default=0.01,
                   help="share of validation actions the default threshold may reject on top of those "
                        "whose top class is none")
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--distractors-per-kind", type=int, default=60,
                   help="training distractor clips per kind (validation gets 25/60 of it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (the head is tiny: more threads only add contention)")


def run_train(args: argparse.Namespace) -> int:
    from avag_core.hearing.train import run

    return run(args)


def run_recognize(args: argparse.Namespace) -> int:
    from avag_core.data.audio_io import load_audio
    from avag_core.errors import AvagError
    from avag_core.hearing import ActionRecognizer
    from avag_core.weights.checkpoint import load_model_checkpoint

    rec = ActionRecognizer.load(args.checkpoint, enrollment_path=args.enrollment or None,
                                head_path=args.head or None)
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise AvagError(f"--threshold must be in [0, 1], got {args.threshold}")
        rec.threshold = args.threshold
    model, _ = load_model_checkpoint(args.checkpoint)
    print(f"threshold {rec.threshold:.2f}; classes: {', '.join(rec.classes)}")
    for path in args.clips:
        wave, rate = load_audio(path)
        h = rec.recognize(model, wave, rate)
        verdict = "action -> masks" if h.is_action else "rejected (no masks)"
        top = ", ".join(f"{n} {p:.2f}" for n, p in h.top)
        print(f"{path}: {h.label} {h.confidence:.2f}  {verdict}  [{top}]")
    return 0
