"""`avag data`: make a synthetic dataset (`synth`), validate an AVAGD CSV (`check`), import
a corrected LabelMe annotation project (`import`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="synthesise or check AVAGD-format datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    synth = sub.add_parser(
        "synth",
        help="write a synthetic audio-visual affordance dataset in the AVAGD layout",
        description="Write train.csv, val.csv, unseen.csv, metadata.json and the images, "
        "masks and WAV clips they name. The same seed always gives identical files.",
    )
    synth.add_argument(
        "--out", required=True, help="output folder (replaced if it holds a previous synth output)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument(
        "--size",
        default="small",
        choices=["tiny", "small", "medium"],
        help="tiny: ~70 samples (tests); small: ~340; medium: ~2,600 (default small)",
    )
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_synth)

    check = sub.add_parser(
        "check",
        help="validate an AVAGD CSV and list its bad rows with their line numbers",
        description="Checks every row: files exist, images and masks decode and agree in "
        "size, audio decodes. Exit status 1 when any row is bad.",
    )
    check.add_argument("--data", required=True, help="data root (CSV paths are relative to it)")
    check.add_argument(
        "--csv",
        required=True,
        action="append",
        help="CSV file (repeatable); relative to --data if not found as given",
    )
    check.add_argument(
        "--shallow", action="store_true", help="read file headers only (fast), do not decode"
    )
    check.add_argument(
        "--pkl", action="store_true", help="check the pkl feature files instead of the audio"
    )
    check.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="accept CSV paths that are absolute or leave the data root with '..'",
    )
    check.add_argument(
        "--skip-bad",
        action="store_true",
        help="report bad rows but exit 0 when some rows are usable",
    )
    check.set_defaults(func=_check)
    imp = sub.add_parser(
        "import",
        help="turn a corrected LabelMe project (avag bag extract) into AVAGD samples + CSVs",
        description="Reads every <stem>.json (shapes labelled function / dependency, polygons "
        "or rectangles) in PROJECT, checks them all, then writes <object>/<affordance>/ images, "
        "clips and masks under --out plus the CSV(s). Run `avag data check` on the result.",
    )
    imp.add_argument("project", help="folder of images, clips and LabelMe .json files")
    imp.add_argument("--out", required=True, help="data root to write (AVAGD layout)")
    imp.add_argument("--csv", default="train.csv", help="CSV to write (default train.csv)")
    imp.add_argument("--val-every", type=int, default=0, metavar="K",
                     help="send every K-th sample to val.csv instead (default 0: none)")
    imp.set_defaults(func=_import)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 1)[1])


def _synth(args: argparse.Namespace) -> int:
    import time

    from avag_core.data.synth import generate

    start = time.perf_counter()
    root = generate(args.out, seed=args.seed, size=args.size, progress=not args.quiet)
    import json

    meta = json.loads((root / "metadata.json").read_text())
    counts = ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    print(f"wrote {root} ({counts} samples) in {time.perf_counter() - start:.1f} s")
    return 0


def _import(args: argparse.Namespace) -> int:
    from avag_core.data.labelme import import_project
    from avag_core.errors import AvagError

    if args.val_every < 0:
        raise AvagError(f"--val-every must be >= 0, got {args.val_every}")
    info = import_project(args.project, args.out, args.val_every, args.csv)
    csvs = ", ".join(f"{name} ({n})" for name, n in info["csv"])
    print(f"imported {info['samples']} sample(s) into {info['out']}: {csvs}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from avag_core.data.rows import check_row, read_rows, resolve_csv

    total_bad = total_ok = 0
    for csv_arg in args.csv:
        path = resolve_csv(args.data, csv_arg)
        rows = read_rows(args.data, path, allow_outside=args.allow_outside_root)
        bad = []
        for row in rows:
            reason = check_row(row, use_pkl=args.pkl, deep=not args.shallow)
            if reason:
                bad.append((row.line, reason))
                print(f"{path} line {row.line}: {reason}")
        ok = len(rows) - len(bad)
        cats = len({r.category for r in rows})
        print(f"{path}: {len(rows)} rows, {ok} ok, {len(bad)} bad, {cats} categories")
        total_bad += len(bad)
        total_ok += ok
    if total_bad and not (args.skip_bad and total_ok):
        return 1
    return 0
