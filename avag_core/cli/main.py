"""`avag` entry point.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser
sets ``func(args) -> int``. Modules import heavy dependencies (torch, rclpy) inside
``func`` so that ``avag --help`` stays fast. Subcommands whose module cannot be imported
(e.g. ROS tools on a training server) are listed as unavailable instead of crashing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from avag_core.errors import AvagError

# OpenMP worker threads that sleep instead of spinning when idle (read when torch loads,
# later): on a machine busy with other work, spinning threads made `avag bag eval` of the
# demo bag 2x slower (12.5 s vs 6.4 s wall, median of 3 pairs at load average 2-4) and
# single inferences up to 40x slower (2.5 s vs 61 ms beside one other busy process).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# name -> module; order is the order shown in --help.
SUBCOMMANDS: dict[str, str] = {
    "demo": "avag_ros.cli.demo",
    "data": "avag_core.cli.data",
    "train": "avag_core.cli.train",
    "eval": "avag_core.cli.evaluate",
    "predict": "avag_core.cli.predict",
    "heard": "avag_core.cli.heard",
    "enroll": "avag_core.cli.enroll",
    "export": "avag_core.cli.export",
    "bench": "avag_core.cli.bench",
    "bag": "avag_ros.cli.bag",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avag",
        description="Audio-visual affordance grounding: train, evaluate, export and run AVAGFormer.",
    )
    from avag_core import __version__

    parser.add_argument("--version", action="version", version=f"avag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            p = sub.add_parser(name, help=f"(unavailable: {exc})")
            p.set_defaults(func=_unavailable(name, str(exc)))
            continue
        module.add_parser(sub)
    return parser


def _unavailable(name: str, reason: str):
    def func(_args: argparse.Namespace) -> int:
        raise AvagError(f"'avag {name}' is unavailable here: {reason}")

    return func


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except AvagError as exc:
        print(f"avag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avag {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
