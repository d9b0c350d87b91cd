"""A few training steps of a preset on random data: items/s and peak memory
(``python -m avag_core.benchmarks.train_step_bench --config paper --batch 8 --device cuda``).

Same loss, optimiser and AMP handling as ``avag train`` (autocast + GradScaler for fp16),
so it shows whether a GPU fits the preset's batch and how fast it trains, without a
dataset. The backbone is unfrozen (the expensive phase of the schedule)."""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import time
from pathlib import Path

import torch


def run(preset: str, device: str, batch: int, steps: int, amp: str, overrides: list[str]) -> dict:
    from avag_core.config import load_config
    from avag_core.modeling import build_model
    from avag_core.training.losses import compute_losses
    from avag_core.training.schedule import build_optimizer

    dev = torch.device(device)
    cfg = load_config(preset, overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model).to(dev).train()
    model.set_backbone_trainable(True)
    opt = build_optimizer(model, cfg.train)
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)
    s = cfg.model.image_size
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, s, s, generator=g).to(dev)
    audio = (torch.randn(batch, 5, 96, 64, generator=g) - 4).to(dev)
    mask = torch.ones(batch, 5, dtype=torch.bool, device=dev)
    target = (torch.rand(batch, 2, s, s, generator=g) > 0.7).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times, losses = [], []
    for _ in range(steps):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(image, audio, mask)
            loss = compute_losses(out, target[:, :1], target[:, 1:], cfg.train)["total"]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"training diverged: losses {losses}")
    steady = times[1:] or times  # the first step pays for cuDNN autotuning and allocation
    return {
        "preset": preset, "device": str(dev), "amp": amp, "batch": batch, "steps": steps,
        "image_size": s, "step_s_median": statistics.median(steady),
        "items_per_s": batch / statistics.median(steady), "losses": losses,
        "peak_memory_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--amp", choices=["fp32", "fp16", "bf16"], default="fp16")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    row = run(a.config, a.device, a.batch, a.steps, a.amp, a.overrides)
    print(f"{row['preset']} {row['device']} amp={row['amp']} batch {row['batch']}: "
          f"{row['step_s_median'] * 1000:.0f} ms/step, {row['items_per_s']:.1f} items/s, "
          f"peak {row['peak_memory_mib']:.0f} MiB")
    if a.json:
        a.json.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
