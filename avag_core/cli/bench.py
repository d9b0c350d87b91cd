"""`avag bench model`: latency, throughput and peak memory of the model per preset/device."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (model speed and memory)")
    kinds = p.add_subparsers(dest="bench", metavar="KIND")
    m = kinds.add_parser(
        "model",
        help="median/p95 latency (full forward and audio-conditioned part), throughput, peak memory",
    )
    m.add_argument(
        "--config",
        default="realtime,paper",
        help="comma-separated presets or YAML files (default: realtime,paper)",
    )
    m.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting for every config, e.g. --set model.num_queries=32",
    )
    m.add_argument("--device", default="cpu", help="comma-separated devices, e.g. cpu,cuda")
    m.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    m.add_argument("--iters", type=int, default=10)
    m.add_argument("--warmup", type=int, default=2)
    m.add_argument("--batch", type=int, default=1, help="batch size for the throughput run")
    m.add_argument("--patches", type=int, default=5, help="audio patches (0.96 s each)")
    m.add_argument(
        "--dtype", choices=["fp32", "fp16", "bf16"], default="fp32", help="autocast dtype (CUDA)"
    )
    m.add_argument("--json", dest="json_out", default="bench_model.json")
    m.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def run(args: argparse.Namespace) -> int:
    from avag_core.benchmarks.model_bench import run_bench
    from avag_core.errors import AvagError

    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    if any(d.startswith("cuda") for d in devices):
        import torch

        if not torch.cuda.is_available():
            raise AvagError("--device cuda requested but CUDA is not available")
    if args.dtype != "fp32" and not all(d.startswith("cuda") for d in devices):
        raise AvagError(f"--dtype {args.dtype} is autocast on CUDA only")
    run_bench(
        [c.strip() for c in args.config.split(",") if c.strip()],
        devices,
        overrides=args.overrides,
        json_out=args.json_out,
        threads=args.threads,
        batch=args.batch,
        patches=args.patches,
        iters=args.iters,
        warmup=args.warmup,
        dtype=None if args.dtype == "fp32" else args.dtype,
    )
    return 0
