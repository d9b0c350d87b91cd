"""`avag bench model`: latency, throughput, memory and agreement per preset, image size,
device, backend and dtype, in one interleaved run (one table, one JSON)."""

from __future__ import annotations

import argparse


def _bench_backends() -> tuple[str, ...]:
    """Backends a table can name (``auto`` would hide which one ran)."""
    from avag_core.backends import BACKENDS

    return tuple(b for b in BACKENDS if b != "auto")


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from avag_core.backends import DTYPES

    p = sub.add_parser("bench", help="benchmarks (model speed and memory)")
    kinds = p.add_subparsers(dest="bench", metavar="KIND")
    m = kinds.add_parser(
        "model",
        help="median/p95 latency (full forward and audio-conditioned part), throughput, memory, "
        "agreement with torch fp32; presets x sizes x devices x backends x dtypes",
    )
    m.add_argument(
        "--config",
        default="realtime,paper",
        help="comma-separated presets or YAML files, PRESET@SIZE for one size of one preset "
        "(default: realtime,paper)",
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
    m.add_argument("--backend", default="torch",
                   help=f"comma-separated backends from {', '.join(_bench_backends())} (default torch)")
    m.add_argument("--dtype", default="fp32",
                   help=f"comma-separated dtypes from {', '.join(DTYPES)}; combinations a device "
                   "cannot run are listed as skipped (default fp32)")
    m.add_argument("--sizes", default="",
                   help="comma-separated input sizes in pixels (default: each preset's own)")
    m.add_argument("--threads", type=int, default=0, help="CPU threads, torch and onnxruntime (0: default)")
    m.add_argument("--iters", type=int, default=10, help="timed rounds (every case once per round)")
    m.add_argument("--warmup", type=int, default=2)
    m.add_argument("--batch", type=int, default=1, help="batch size for the throughput run")
    m.add_argument("--patches", type=int, default=5, help="audio patches (0.96 s each)")
    m.add_argument("--engine-cache-dir", default="", help="TensorRT engine cache folder")
    m.add_argument("--onnx-cache-dir", default="", help="exported ONNX graphs folder")
    m.add_argument("--reference", default="",
                   help="Python file (outside this repo) with make_reference(image_size, patches) "
                   "to time the reference implementation in the same rounds")
    m.add_argument("--json", dest="json_out", default="bench_model.json")
    m.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def run(args: argparse.Namespace) -> int:
    from avag_core.backends import normalise_dtype
    from avag_core.benchmarks.model_bench import run_bench
    from avag_core.errors import AvagError

    devices = _list(args.device)
    if any(d.startswith("cuda") for d in devices):
        import torch

        if not torch.cuda.is_available():
            raise AvagError("--device cuda requested but CUDA is not available")
    backends = _list(args.backend)
    for b in backends:
        if b not in _bench_backends():
            raise AvagError(f"--backend {b}: use {', '.join(_bench_backends())}")
    dtypes = [normalise_dtype(d) for d in _list(args.dtype)]
    try:
        sizes = [int(s) for s in _list(args.sizes)]
    except ValueError:
        raise AvagError(f"--sizes {args.sizes!r}: comma-separated integers, e.g. 128,256") from None
    options = {k: v for k, v in (("engine_cache_dir", args.engine_cache_dir),
                                 ("cache_dir", args.onnx_cache_dir)) if v}
    run_bench(
        _list(args.config),
        devices,
        overrides=args.overrides,
        json_out=args.json_out,
        threads=args.threads,
        backends=backends,
        dtypes=dtypes,
        sizes=sizes,
        batch=args.batch,
        patches=args.patches,
        iters=args.iters,
        warmup=args.warmup,
        backend_options=options,
        reference=args.reference or None,
    )
    return 0
