"""Model speed and memory per preset and device (``avag bench model``).

For each configuration: median and p95 latency of the full forward at batch 1, of the
audio-conditioned part alone (audio encoder + mixer + decoder on cached image features,
the ``Predictor.predict`` path) and throughput at ``--batch``; peak memory (CUDA:
max allocated; CPU: process peak RSS). Random weights: speed does not depend on them.
Prints a table and writes JSON.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from avag_core.config import load_config
from avag_core.modeling import build_model, count_parameters


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, iters: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {"median_ms": statistics.median(s), "p95_ms": p95, "min_ms": s[0]}


def bench_one(
    preset: str,
    overrides: list[str],
    device: str = "cpu",
    batch: int = 1,
    patches: int = 5,
    iters: int = 10,
    warmup: int = 2,
    dtype: str | None = None,
) -> dict[str, Any]:
    dev = torch.device(device)
    cfg = load_config(preset, overrides).model
    torch.manual_seed(0)
    model = build_model(cfg).eval().to(dev).to(memory_format=torch.channels_last)  # as Predictor runs it
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype or "")
    ctx = (lambda: torch.autocast(dev.type, dtype=amp)) if amp else nullcontext
    s = cfg.image_size

    def inputs(b: int):
        return (
            torch.randn(b, 3, s, s, device=dev),
            torch.randn(b, patches, 96, 64, device=dev) - 4,
            torch.ones(b, patches, dtype=torch.bool, device=dev),
        )

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    image1, audio1, mask1 = inputs(1)
    with torch.inference_mode(), ctx():
        full = _time(lambda: model(image1, audio1, mask1), dev, iters, warmup)
        feats = model.encode_image(image1)
        audio_only = _time(lambda: model.decode(feats, audio1, mask1), dev, iters, warmup)
        if batch > 1:
            image_b, audio_b, mask_b = inputs(batch)
            batched = _time(lambda: model(image_b, audio_b, mask_b), dev, max(3, iters // 2), 1)
        else:
            batched = full
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    )
    return {
        "preset": preset,
        "overrides": overrides,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "dtype": dtype or "fp32",
        "image_size": s,
        "audio_patches": patches,
        "params_m": count_parameters(model) / 1e6,
        "full": _stats(full),
        "audio_conditioned": _stats(audio_only),
        "batch": batch,
        "throughput_per_s": batch * 1000.0 / statistics.median(batched),
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda_max_allocated" if dev.type == "cuda" else "process_peak_rss",
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'preset':<10} {'device':<6} {'dtype':<5} {'size':>4} {'params M':>8} "
        f"{'full med':>9} {'full p95':>9} {'audio med':>9} {'audio p95':>9} {'batch':>5} "
        f"{'items/s':>8} {'peak MiB':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['preset']:<10} {r['device']:<6} {r['dtype']:<5} {r['image_size']:>4} {r['params_m']:>8.2f} "
            f"{r['full']['median_ms']:>9.1f} {r['full']['p95_ms']:>9.1f} "
            f"{r['audio_conditioned']['median_ms']:>9.1f} {r['audio_conditioned']['p95_ms']:>9.1f} "
            f"{r['batch']:>5} {r['throughput_per_s']:>8.2f} {r['peak_memory_mib']:>9.0f}"
        )
    return "\n".join(lines)


def run_bench(
    presets: list[str],
    devices: list[str],
    overrides: list[str] | None = None,
    json_out: str | Path | None = None,
    threads: int = 0,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for preset in presets:
        for device in devices:
            rows.append(bench_one(preset, list(overrides or []), device, **kwargs))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(
            json.dumps({"torch": torch.__version__, "results": rows}, indent=1)
        )
        print(f"wrote {json_out}")
    return rows
