"""Model speed and memory, one table in one run (``avag bench model``).

Cases = presets x image sizes x devices x backends x dtypes (``paper@512`` in the preset
list fixes one preset's size). All cases are built first,
then timed in interleaved rounds (round r runs every case once), so a noisy neighbour on a
shared machine slows all of them alike and the medians stay comparable. Per case: median
and p95 latency of the full forward at batch 1 and of the audio-conditioned part alone
(the ``Predictor.predict`` path on cached image features), throughput at ``--batch``,
memory, and agreement with the torch fp32 case of the same preset and size (same seeded
weights): max logit difference and worst mask IoU. Random weights: speed does not depend
on them (agreement does: see the tests for trained weights).

Memory: CUDA = device memory added while the case loads and warms up (``mem_get_info``,
so onnxruntime's allocations count too); CPU = growth of the process RSS over the same
span. ``peak_memory_mib`` is the process-wide peak (CPU peak RSS / CUDA max allocated).

``--reference FILE.py``: a file kept outside this repository that defines
``make_reference(image_size: int, patches: int) -> Callable[[], object]`` (one forward of
the reference implementation on its own inputs; it always takes 20 audio patches, so
compare with ``--patches 20``); it is timed in the same rounds at each size of the
``paper`` cases (the configuration it builds), which get a ``x_vs_reference`` speed-up.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avag_core.backends import make_backend
from avag_core.backends.agreement import compare
from avag_core.config import load_config
from avag_core.errors import AvagError
from avag_core.modeling import build_model, count_parameters

# The reference implementation builds the paper configuration only: speed-ups are quoted
# for that preset.
REFERENCE_PRESET = "paper"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {"median_ms": statistics.median(s), "p95_ms": p95, "min_ms": s[0]}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _used_mib(dev: torch.device) -> float:
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        return (total - free) / 2**20
    return _rss_mib()


@dataclass
class Case:
    preset: str
    size: int
    device: torch.device
    backend: str
    dtype: str
    full: Callable[[], Any] = field(repr=False, default=None)
    audio: Callable[[], Any] | None = field(repr=False, default=None)
    batched: Callable[[], Any] | None = field(repr=False, default=None)
    row: dict[str, Any] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=lambda: {"full": [], "audio": []})


def _inputs(b: int, s: int, patches: int, dev: torch.device):
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(b, 3, s, s, generator=g).to(dev),
        (torch.randn(b, patches, 96, 64, generator=g) - 4).to(dev),
        torch.ones(b, patches, dtype=torch.bool, device=dev),
    )


def build_case(case: Case, overrides: list[str], patches: int, batch: int, options: dict) -> None:
    """Load the model into the case's backend and prepare its timed calls (raises AvagError
    when the device cannot run the backend/dtype)."""
    dev = case.device
    cfg = load_config(case.preset, [*overrides, f"model.image_size={case.size}"]).model
    before = _used_mib(dev)
    torch.manual_seed(0)
    model = build_model(cfg).eval().to(dev).to(memory_format=torch.channels_last)
    opts = options if case.backend in ("onnxruntime", "tensorrt") else {}
    be = make_backend(case.backend, model, cfg.image_size, dev, case.dtype, **opts)
    image, audio, mask = _inputs(1, case.size, patches, dev)

    @torch.inference_mode()
    def full():
        return be.decode(be.encode(image), audio, mask)

    with torch.inference_mode():
        feats = be.encode(image)

    @torch.inference_mode()
    def audio_only():
        return be.decode(feats, audio, mask)

    case.full, case.audio = full, audio_only
    if batch > 1:
        bi, ba, bm = _inputs(batch, case.size, patches, dev)

        @torch.inference_mode()
        def batched():
            return be.decode(be.encode(bi), ba, bm)

        case.batched = batched
    logits = full()
    _sync(dev)
    case.row = {
        "preset": case.preset,
        "image_size": case.size,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "backend": case.backend,
        "backend_detail": be.describe(),
        "dtype": be.dtype,
        "dtype_requested": case.dtype,
        "threads": torch.get_num_threads(),
        "audio_patches": patches,
        "params_m": count_parameters(model) / 1e6,
        "memory_mib": max(0.0, _used_mib(dev) - before),
        "memory_kind": "cuda_device_used_delta" if dev.type == "cuda" else "process_rss_delta",
        "_logits": tuple(t.detach().float().cpu() for t in logits),
    }
    if getattr(be, "probe", None):
        case.row["auto_probe"] = {k: v for k, v in be.probe.items() if k != "agreement"}


def _load_reference(path: str) -> Callable[[int, int], Callable[[], Any]]:
    spec = importlib.util.spec_from_file_location("avag_bench_reference", path)
    if spec is None or spec.loader is None:
        raise AvagError(f"--reference {path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "make_reference"):
        raise AvagError(f"--reference {path} defines no make_reference(image_size, patches)")
    return mod.make_reference


def _timed(fn: Callable[[], Any], dev: torch.device) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return (time.perf_counter() - t0) * 1000.0


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'preset':<9} {'size':>4} {'device':<6} {'backend':<11} {'dtype':<5} {'params M':>8} "
        f"{'full med':>9} {'full p95':>9} {'audio med':>9} {'audio p95':>9} {'batch':>5} "
        f"{'items/s':>8} {'mem MiB':>8} {'IoU fp32':>8} {'dlogit':>8} {'x ref':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['preset']:<9} {r['image_size']:>4} {r['device']:<6} {r['backend']:<11} "
                         f"{r['dtype']:<5} skipped: {r['skipped']}")
            continue
        agree = r.get("vs_torch_fp32") or {}
        iou = f"{agree['min_iou']:.4f}" if agree else "-"
        dl = f"{agree['max_logit_diff']:.1e}" if agree else "-"
        ref = f"{r['x_vs_reference']:.2f}" if r.get("x_vs_reference") else "-"
        items = f"{r['throughput_per_s']:.2f}" if r.get("throughput_per_s") else "-"
        lines.append(
            f"{r['preset']:<9} {r['image_size']:>4} {r['device']:<6} {r['backend']:<11} {r['dtype']:<5} "
            f"{r.get('params_m', 0):>8.2f} {r['full']['median_ms']:>9.1f} {r['full']['p95_ms']:>9.1f} "
            + (f"{r['audio_conditioned']['median_ms']:>9.1f} {r['audio_conditioned']['p95_ms']:>9.1f} "
               if r.get("audio_conditioned") else f"{'-':>9} {'-':>9} ")
            + f"{r.get('batch', 1):>5} {items:>8} {r.get('memory_mib', 0):>8.0f} {iou:>8} {dl:>8} {ref:>6}"
        )
    return "\n".join(lines)


def run_bench(
    presets: list[str],
    devices: list[str],
    overrides: list[str] | None = None,
    json_out: str | Path | None = None,
    threads: int = 0,
    backends: list[str] | None = None,
    dtypes: list[str] | None = None,
    sizes: list[int] | None = None,
    batch: int = 1,
    patches: int = 5,
    iters: int = 10,
    warmup: int = 2,
    backend_options: dict | None = None,
    reference: str | None = None,
) -> list[dict[str, Any]]:
    """Build every case, time them interleaved, print the table, write JSON."""
    if threads:
        torch.set_num_threads(threads)
    options = {"threads": threads, **(backend_options or {})}
    overrides = list(overrides or [])
    cases: list[Case] = []
    skipped: list[dict[str, Any]] = []
    pairs = []  # (preset, size): "paper@512" fixes the size of one preset
    for entry in presets:
        name, _, at = entry.partition("@")
        try:
            pairs += [(name, int(at))] if at else [(name, sz) for sz in sizes or [0]]
        except ValueError:
            raise AvagError(f"--config {entry}: PRESET@SIZE needs an integer size") from None
    for (preset, size), device, backend, dtype in itertools.product(
        pairs, devices, backends or ["torch"], dtypes or ["fp32"]
    ):
        s = size or int(load_config(preset, overrides).model.image_size)
        case = Case(preset, s, torch.device(device), backend, dtype)
        t0 = time.perf_counter()
        try:
            build_case(case, overrides, patches, batch, options)
        except AvagError as exc:
            skipped.append({"preset": preset, "image_size": s, "device": device, "backend": backend,
                            "dtype": dtype, "skipped": str(exc)})
            print(f"skip {preset} {s} {device} {backend} {dtype}: {exc}", flush=True)
            continue
        # load time: an export or a compile (minutes, once per model) shows here, never in the rounds
        case.row["load_s"] = time.perf_counter() - t0
        print(f"built {preset} {s} {case.row['backend_detail']} in {case.row['load_s']:.1f} s "
              f"({case.row['memory_mib']:.0f} MiB)", flush=True)
        cases.append(case)
    refs: dict[int, Case] = {}
    if reference:
        make = _load_reference(reference)
        for s in sorted({c.size for c in cases if c.preset == REFERENCE_PRESET}):
            ref = Case("reference", s, torch.device("cpu"), "reference", "fp32")
            ref.full = make(s, patches)
            ref.row = {"preset": "reference", "image_size": s, "device": "cpu", "backend": "reference",
                       "backend_detail": reference, "dtype": "fp32", "threads": torch.get_num_threads()}
            refs[s] = ref
    timed = [*cases, *refs.values()]
    for c in timed:  # warm-up
        for _ in range(warmup):
            c.full()
            if c.audio:
                c.audio()
    for r in range(iters):
        for c in timed if r % 2 == 0 else timed[::-1]:  # alternate the order as well
            c.times["full"].append(_timed(c.full, c.device))
            if c.audio:
                c.times["audio"].append(_timed(c.audio, c.device))
        print(f"round {r + 1}/{iters} done", flush=True)
    rows = []
    fp32 = {(c.preset, c.size, str(c.device)): c for c in cases if c.backend == "torch" and c.row["dtype"] == "fp32"}
    base = {(c.preset, c.size): c for c in cases if c.backend == "torch" and c.row["dtype"] == "fp32"}
    for c in timed:
        row = dict(c.row)
        logits = row.pop("_logits", None)
        row["full"] = _stats(c.times["full"])
        if c.audio:
            row["audio_conditioned"] = _stats(c.times["audio"])
        if c.batched is not None:
            b = [_timed(c.batched, c.device) for _ in range(max(3, iters // 2))]
            row["batch"], row["throughput_per_s"] = batch, batch * 1000.0 / statistics.median(b)
        else:
            row["batch"], row["throughput_per_s"] = 1, 1000.0 / row["full"]["median_ms"]
        ref_case = fp32.get((c.preset, c.size, str(c.device))) or base.get((c.preset, c.size))
        if logits is not None and ref_case is not None and ref_case is not c:
            row["vs_torch_fp32"] = compare(ref_case.row["_logits"], logits)
        if c.size in refs and c.preset == REFERENCE_PRESET:
            row["x_vs_reference"] = statistics.median(refs[c.size].times["full"]) / row["full"]["median_ms"]
        rows.append(row)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if any(c.device.type == "cuda" for c in cases):
        peak = max(torch.cuda.max_memory_allocated(c.device) / 2**20 for c in cases if c.device.type == "cuda")
    for row in rows:
        row["peak_memory_mib"] = peak
    rows += skipped
    print()
    print(format_table(rows))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "iters": iters,
                "warmup": warmup, "interleaved": True, "cpu": platform.processor() or platform.machine()}
        try:
            import onnxruntime

            meta["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            pass
        Path(json_out).write_text(json.dumps({**meta, "results": rows}, indent=1, default=str))
        print(f"wrote {json_out}")
    return rows
