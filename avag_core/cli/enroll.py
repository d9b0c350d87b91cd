"""`avag enroll`: teach a new action sound from 3-10 clips (writes or extends an enrollment file)."""

from __future__ import annotations

import argparse
from pathlib import Path

MIN_CLIPS, MAX_CLIPS = 3, 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll", help="enroll a new action from 3-10 clips (few-shot)")
    p.add_argument("--checkpoint", required=True, help="model checkpoint; its action head lies beside it")
    p.add_argument("--name", required=True, help="the action's name (letters, digits, _ or -)")
    p.add_argument("--out", default="enrollment.safetensors",
                   help="enrollment file; extended when it exists (default: %(default)s)")
    p.add_argument("--head", default="", help="action head file (default: beside the checkpoint)")
    p.add_argument("clips", nargs="+", help=f"{MIN_CLIPS}-{MAX_CLIPS} audio files of the action")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avag_core.data.audio_io import load_audio
    from avag_core.errors import AvagError
    from avag_core.hearing import ActionRecognizer
    from avag_core.modeling.audio_frontend import to_mono_16k

    if not MIN_CLIPS <= len(args.clips) <= MAX_CLIPS:
        raise AvagError(f"enroll needs {MIN_CLIPS}-{MAX_CLIPS} clips, got {len(args.clips)}")
    out = Path(args.out)
    rec = ActionRecognizer.load(args.checkpoint, enrollment_path=out if out.is_file() else None,
                                head_path=args.head or None)
    # Clips may differ in rate and channels: bring each to 16 kHz mono first.
    clips = []
    for path in args.clips:
        wave, rate = load_audio(path)
        clips.append(to_mono_16k(wave, rate).numpy())
    total = rec.enroll(args.name, clips, 16000)
    rec.save_enrollment(out)
    print(f"enrolled {args.name!r}: {total} clip(s) in {out}; enrolled actions: "
          + ", ".join(f"{n} ({c})" for n, c in rec.enrollment.counts().items()))
    return 0
