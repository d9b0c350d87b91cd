"""What avag_node's memory is made of: each part the node loads, one after another, with the
process's RSS split into its own memory and the pages of mapped files after each.

    python -m avag_ros.benchmarks.node_memory [--backend B] [--json node_memory.json]

One process, one part at a time, nothing loaded before the first line: Python and numpy,
rclpy, torch, timm (the backbone's library; it imports torchvision), avag's modules, the
model on the node's backend (`load_predictor`: with onnxruntime's library where the backend
runs on it, and only there, as in the node), the action head, then the
adapter with its event detector (the learned onset model), as `avag_node` builds them
with the same NodeConfig. "anon" is what the process itself allocated; "file" is pages of
shared libraries and other mapped files, which every process using the same library
shares and the kernel drops first when memory runs short. `node_latency` prints the running
node's peak and its memory at the end with the same split (its streams add the frame cache
and DDS buffers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avag_ros.benchmarks.live_feed import proc_memory


def _parts(cfg: Any, held: dict[str, Any]) -> list[tuple[str, Callable[[], object]]]:
    """(name, load), each part after the ones it needs; ``held`` keeps what was loaded alive."""

    def predictor() -> str:
        from avag_ros.adapter import load_predictor

        held["predictor"] = load_predictor(cfg, warn=lambda m: None)
        return held["predictor"].backend.name

    def head() -> str:
        from avag_ros.adapter import load_recognizer

        held["recognizer"] = load_recognizer(cfg, warn=lambda m: None)
        return "none" if held["recognizer"] is None else "loaded"

    def adapter() -> str:
        from avag_ros.adapter import GroundingAdapter

        held["adapter"] = GroundingAdapter(cfg, held["predictor"], lambda m: None, held["recognizer"])
        return cfg.events.detector

    return [
        ("rclpy", lambda: __import__("rclpy").__name__),
        ("torch", lambda: __import__("torch").__version__),
        ("timm (imports torchvision)", lambda: __import__("timm").__version__),
        ("avag modules", lambda: __import__("avag_ros.adapter").__name__),
        ("model on its backend", predictor),
        ("action head", head),
        ("adapter and event detector", adapter),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=None, help="NodeConfig.backend (default: the node's default)")
    ap.add_argument("--json", type=Path, default=Path("node_memory.json"))
    args = ap.parse_args(argv)
    import numpy  # noqa: F401  (counted in the first line, with Python)

    from avag_ros.params import NodeConfig

    cfg = NodeConfig() if args.backend is None else NodeConfig(backend=args.backend)
    pid, held = os.getpid(), {}
    rows = [{"part": "python and numpy", "detail": sys.version.split()[0], "s": 0.0, **proc_memory(pid)}]
    for name, load in _parts(cfg, held):
        t0 = time.perf_counter()
        detail = str(load())
        rows.append({"part": name, "detail": detail, "s": time.perf_counter() - t0, **proc_memory(pid)})

    print(f"{'part':<28} {'detail':<16} {'RSS':>6} {'anon':>6} {'+anon':>6} {'file':>6} {'+file':>6} {'peak':>6} {'s':>5}")
    prev = {"anon": 0.0, "file": 0.0}
    for r in rows:
        print(f"{r['part']:<28} {r['detail'][:16]:<16} {r['rss']:>6.0f} {r['anon']:>6.0f} {r['anon'] - prev['anon']:>+6.0f} "
              f"{r['file']:>6.0f} {r['file'] - prev['file']:>+6.0f} {r['peak']:>6.0f} {r['s']:>5.1f}")
        prev = r
    print("MB; anon: the process's own memory; file: mapped files (shared libraries), shared and reclaimable")
    loaded_ort = "onnxruntime" in sys.modules
    print(f"onnxruntime loaded: {'yes' if loaded_ort else 'no'} (backend {cfg.backend})")
    args.json.write_text(json.dumps({"backend": cfg.backend, "device": cfg.device, "onnxruntime_loaded": loaded_ort,
                                     "parts": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
