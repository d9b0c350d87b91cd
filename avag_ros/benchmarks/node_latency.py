"""Reaction latency, model time and CPU of avag_node while a camera and a microphone stream.

    python -m avag_ros.benchmarks.node_latency [--scenes 8] [--size 640x480] [--burn 2] [--json out.json]

A feeder (avag_ros/benchmarks/live_feed.py) publishes camera + depth + camera_info at
30 Hz and 16 kHz audio in real time, first ``--idle`` seconds of background only (the
node's CPU while nothing happens), then one action sound every 3 s. A subscriber records
when each AffordanceDetection arrives. Latency = arrival - ``event_decided`` (the audio
time the event was known to be over), so it is what the node adds after the sound.

The model's own time inside the node (its /diagnostics: visual encoder and audio-
conditioned part) is printed next to the same model timed standalone in this process,
before and after the node run, on the same frames and sounds. ``--burn N`` runs N
CPU-burning processes beside the node for the whole streaming phase.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def standalone_model_ms(cfg, scenes: list, size: tuple[int, int], reps: int = 2) -> dict[str, float]:
    """Median ms of set_image (visual encoder) and predict (audio part) in this process,
    with the node's own model loading (same backend, device and dtype)."""
    import cv2

    from avag_ros.adapter import load_predictor

    pred = load_predictor(cfg)
    enc, dec = [], []
    for _ in range(reps):
        for s in scenes:
            rgb = cv2.resize(s.rgb, size, interpolation=cv2.INTER_LINEAR)
            t0 = time.perf_counter()
            pred.set_image(rgb)
            t1 = time.perf_counter()
            pred.predict(s.sound[:16000], 16000)
            t2 = time.perf_counter()
            enc.append((t1 - t0) * 1e3)
            dec.append((t2 - t1) * 1e3)
    return {"encode_ms": float(np.median(enc)), "audio_ms": float(np.median(dec))}


def main(argv: list[str] | None = None) -> int:
    from avag_core.backends import BACKENDS, DTYPES
    from avag_ros.params import NodeConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=8, help="sound events (one every 3 s)")
    p.add_argument("--size", default="640x480", help="camera WIDTHxHEIGHT")
    p.add_argument("--idle", type=float, default=8.0, help="seconds of streams without events first")
    p.add_argument("--burn", type=int, default=0, help="CPU-burning processes beside the node")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="cpu", help="node parameter device (cpu, cuda, cuda:N)")
    node = NodeConfig()  # the node's own defaults: measure what a user launches
    p.add_argument("--backend", default=node.backend, choices=BACKENDS,
                   help=f"node parameter backend (default: the node's, {node.backend})")
    p.add_argument("--dtype", default=node.dtype, choices=DTYPES, help=f"node parameter dtype (default: {node.dtype})")
    p.add_argument("--dds", choices=("avag", "default"), default="avag",
                   help="Fast DDS profile: avag's single-host profile (as launched) or Fast DDS defaults")
    p.add_argument("--json", type=Path)
    p.add_argument("--domain", type=int, default=77)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the node sets it for itself
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    work = Path(tempfile.mkdtemp(prefix="avag_latency_"))
    os.environ.setdefault("ROS_LOG_DIR", str(work / "log"))
    from avag_ros.dds_profile import use_single_host_profile

    if args.dds == "avag":
        use_single_host_profile()
    else:
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)

    import rclpy
    import rclpy.executors
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from avag.msg import AffordanceDetection
    from avag_core.data.synth import generate
    from avag_ros.adapter import default_checkpoint
    from avag_ros.bag.synth_bag import load_scenes
    from avag_ros.benchmarks.live_feed import FeedConfig, LiveFeed, proc_memory, proc_stats
    from avag_ros.conversions import stamp_to_ns
    from avag_ros.param_files import node_config

    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    data = generate(work / "data", seed=11, size="tiny")
    scenes = load_scenes(data, "val", limit=args.scenes)
    node_params = [f"checkpoint:={ckpt}", f"device:={args.device}", f"backend:={args.backend}", f"dtype:={args.dtype}"]
    cfg = node_config(overrides=[p.replace(":=", "=", 1) for p in node_params])
    before = standalone_model_ms(cfg, scenes, (width, height))

    node_proc = subprocess.Popen(
        [sys.executable, "-m", "avag_ros.nodes.avag_node", "--ros-args", *[a for p in node_params for a in ("-p", p)]],
        stdout=(work / "node.log").open("w"), stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("avag_latency_bench")
    feed = LiveFeed(node, scenes, FeedConfig(width=width, height=height, idle_s=args.idle))
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    arrivals: list[tuple[int, AffordanceDetection]] = []
    diag: dict[str, str] = {}
    node.create_subscription(AffordanceDetection, "/avag_node/detection",
                             lambda m: arrivals.append((time.time_ns(), m)), qos)
    from diagnostic_msgs.msg import DiagnosticArray

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.startswith("/avag_node:"):
                diag.update({kv.key: kv.value for kv in s.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burn)]
    try:
        if not feed.wait_for_subscribers(120, lambda: node_proc.poll() is None):
            raise SystemExit(f"avag_node did not come up; see {work / 'node.log'}")
        idle_box: dict[str, float] = {}

        def sample_idle() -> None:  # node CPU over the event-free lead-in (1 s margin each side)
            time.sleep(1.0)
            c0, t0 = proc_stats(node_proc.pid)[0], time.monotonic()
            time.sleep(max(args.idle - 2.0, 1.0))
            idle_box["cpu"] = 100.0 * (proc_stats(node_proc.pid)[0] - c0) / (time.monotonic() - t0)

        sampler = threading.Thread(target=sample_idle, daemon=True)
        sampler.start()
        cpu0 = proc_stats(node_proc.pid)[0]
        wall0 = time.monotonic()
        duration = args.idle + args.scenes * feed.cfg.scene_s + 0.5
        events = feed.run(duration)
        # the last detection arrives after its release time
        deadline = time.monotonic() + 10.0
        while len(arrivals) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.2)  # one more diagnostics period for the final counters
        cpu1 = proc_stats(node_proc.pid)[0]
        mem = proc_memory(node_proc.pid)
        peak_mb = mem["peak"]
        busy_s = time.monotonic() - wall0
        sampler.join(timeout=5)
    finally:
        for b in burners:
            b.kill()
        node_proc.send_signal(2)
        node_proc.wait(timeout=20)
        executor.shutdown()
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.shutdown()
    after = standalone_model_ms(cfg, scenes, (width, height))

    lat = np.array([(a - stamp_to_ns(m.event_decided)) / 1e6 for a, m in arrivals])
    q = lambda x, k: float(np.percentile(x, k)) if np.size(x) else float("nan")  # noqa: E731
    standalone = {k: float(np.mean([before[k], after[k]])) for k in before}
    in_node = {"encode_ms": float(diag.get("model.encode_ms_median", "nan")),
               "audio_ms": float(diag.get("model.audio_ms_median", "nan"))}
    detected = sum(any(abs(stamp_to_ns(m.event_onset) - e.onset_ns) < 400_000_000 for _a, m in arrivals)
                   for e in events)
    r = {
        "size": f"{width}x{height}", "burners": args.burn, "device": args.device, "backend": args.backend,
        "dtype": args.dtype, "events": len(events), "detections": len(arrivals),
        "events_detected": detected, "checkpoint": str(ckpt),
        "latency_ms_median": q(lat, 50), "latency_ms_p95": q(lat, 95),
        "model_in_node": in_node, "model_standalone": standalone, "standalone_before": before,
        "standalone_after": after,
        "model_ratio": (in_node["encode_ms"] + in_node["audio_ms"]) / (standalone["encode_ms"] + standalone["audio_ms"]),
        "node_cpu_idle_percent": idle_box.get("cpu", float("nan")),
        "node_cpu_percent": 100.0 * (cpu1 - cpu0) / busy_s, "node_peak_rss_mb": peak_mb,
        "node_memory_at_end_mb": mem,
        "dds_profile": args.dds, "frames_published": feed.frames_published,
        "frames_received": int(float(diag.get("input.images", 0))),
        "release_s": 0.8, "cpu_count": os.cpu_count(), "node_diagnostics": diag,
        "per_event_latency_ms": lat.tolist(),
    }
    print(f"{'camera':>9} {'burn':>4} {'events':>6} {'detected':>8} {'latency p50':>11} {'p95':>7} "
          f"{'model in node':>13} {'standalone':>10} {'ratio':>5} {'CPU idle':>8} {'CPU all':>7} {'peak RSS':>8}")
    print(f"{r['size']:>9} {args.burn:>4} {len(events):>6} {detected:>8} {r['latency_ms_median']:>9.1f}ms "
          f"{r['latency_ms_p95']:>5.1f}ms {in_node['encode_ms'] + in_node['audio_ms']:>11.1f}ms "
          f"{standalone['encode_ms'] + standalone['audio_ms']:>8.1f}ms {r['model_ratio']:>5.2f} "
          f"{r['node_cpu_idle_percent']:>7.1f}% {r['node_cpu_percent']:>6.1f}% {peak_mb:>6.0f}MB")
    print(f"model = visual encoder (set_image) + audio-conditioned part (predict): in node "
          f"{in_node['encode_ms']:.1f} + {in_node['audio_ms']:.1f} ms, standalone {standalone['encode_ms']:.1f} + "
          f"{standalone['audio_ms']:.1f} ms (before {sum(before.values()):.1f}, after {sum(after.values()):.1f})")
    print(f"camera frames received by the node: {r['frames_received']} of {r['frames_published']} "
          f"(best effort, DDS profile: {args.dds})")
    print(f"node memory at the end: RSS {mem['rss']:.0f} MB = {mem['anon']:.0f} MB its own + {mem['file']:.0f} MB "
          f"mapped files (shared libraries) + {mem['shmem']:.0f} MB shared memory; parts: "
          "python -m avag_ros.benchmarks.node_memory")
    print("latency is measured from the moment the event was known to be over (its end + 0.8 s release)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0 if detected == len(events) else 1


if __name__ == "__main__":
    sys.exit(main())
