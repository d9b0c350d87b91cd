"""Soak test of avag_node: a long live stream with an event every 3 s, watched for lost
events, latency drift and memory growth.

    python -m avag_ros.benchmarks.soak [--minutes 30] [--window 5] [--json soak.json]

Streams 30 Hz 640x480 camera + depth + camera_info and 16 kHz audio in real time
(avag_ros/benchmarks/live_feed.py) into a node process, samples the node's RSS and CPU
from /proc every 10 s, and prints per window: events, detections, reaction latency
p50/p95; then the RSS slope (MB/min, least squares after the first 2 minutes of warm-up)
and the node's CPU. Exits 1 when an event was lost.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--window", type=float, default=5.0, help="minutes per row of the table")
    p.add_argument("--size", default="640x480", help="camera WIDTHxHEIGHT")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--json", type=Path)
    p.add_argument("--domain", type=int, default=78)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    work = Path(tempfile.mkdtemp(prefix="avag_soak_"))
    os.environ.setdefault("ROS_LOG_DIR", str(work / "log"))

    import rclpy
    import rclpy.executors
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from avag.msg import AffordanceDetection
    from avag_core.data.synth import generate
    from avag_ros.adapter import default_checkpoint
    from avag_ros.bag.synth_bag import load_scenes
    from avag_ros.benchmarks.live_feed import (
        FeedConfig,
        LiveFeed,
        proc_stats,
        )
    from avag_ros.conversions import stamp_to_ns
    from avag_ros.dds_profile import use_single_host_profile

    use_single_host_profile()
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    scenes = load_scenes(generate(work / "data", seed=13, size="tiny"), "val", limit=10)
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={ckpt}"],
        stdout=(work / "node.log").open("w"), stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("avag_soak")
    feed = LiveFeed(node, scenes, FeedConfig(width=width, height=height))
    arrivals: list[tuple[int, AffordanceDetection]] = []
    node.create_subscription(AffordanceDetection, "/avag_node/detection",
                             lambda m: arrivals.append((time.time_ns(), m)),
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    samples: list[tuple[float, float, float]] = []  # (minutes, rss MB, cpu s)
    try:
        if not feed.wait_for_subscribers(120, lambda: node_proc.poll() is None):
            raise SystemExit(f"avag_node did not come up; see {work / 'node.log'}")
        done = threading.Event()
        box: dict[str, list] = {}
        feeder = threading.Thread(target=lambda: box.setdefault("events", feed.run(args.minutes * 60)) and done.set(),
                                  daemon=True)
        t0 = time.monotonic()
        feeder.start()
        while feeder.is_alive():
            cpu, rss, _peak = proc_stats(node_proc.pid)
            samples.append(((time.monotonic() - t0) / 60, rss, cpu))
            feeder.join(timeout=10.0)
            if node_proc.poll() is not None:
                raise SystemExit(f"avag_node died; see {work / 'node.log'}")
        deadline = time.monotonic() + 10
        events = box["events"]
        while len(arrivals) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu, rss, peak = proc_stats(node_proc.pid)
        samples.append(((time.monotonic() - t0) / 60, rss, cpu))
    finally:
        node_proc.send_signal(2)
        node_proc.wait(timeout=20)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()

    onsets = [stamp_to_ns(m.event_onset) for _a, m in arrivals]
    wall0 = events[0].onset_ns if events else 0
    rows, lost = [], 0
    n_windows = int(np.ceil(args.minutes / args.window))
    for w in range(n_windows):
        lo, hi = w * args.window * 60e9, (w + 1) * args.window * 60e9
        evs = [e for e in events if lo <= e.onset_ns - wall0 < hi]
        lat = []
        for e in evs:
            hit = [(a - stamp_to_ns(m.event_decided)) / 1e6 for (a, m), on in zip(arrivals, onsets, strict=True)
                   if abs(on - e.onset_ns) < 400_000_000]
            if hit:
                lat.append(hit[0])
        lost += len(evs) - len(lat)
        rows.append({"window_min": [w * args.window, (w + 1) * args.window], "events": len(evs),
                     "detected": len(lat), "latency_ms_p50": float(np.percentile(lat, 50)) if lat else None,
                     "latency_ms_p95": float(np.percentile(lat, 95)) if lat else None})
    s = np.array(samples)
    warm = s[s[:, 0] >= min(2.0, args.minutes / 3)]
    slope = float(np.polyfit(warm[:, 0], warm[:, 1], 1)[0]) if len(warm) >= 3 else float("nan")
    cpu_pct = 100.0 * (s[-1, 2] - s[0, 2]) / ((s[-1, 0] - s[0, 0]) * 60) if len(s) > 1 else float("nan")
    result = {"minutes": args.minutes, "size": args.size, "events": len(events), "detections": len(arrivals),
              "lost_events": lost, "windows": rows, "rss_slope_mb_per_min": slope,
              "rss_mb_first": float(s[0, 1]), "rss_mb_last": float(s[-1, 1]), "peak_rss_mb": peak,
              "node_cpu_percent": cpu_pct, "rss_samples": samples}
    print(f"{'minutes':>11} {'events':>6} {'detected':>8} {'latency p50':>11} {'p95':>8}")
    for r in rows:
        fmt = lambda v: f"{v:.1f}ms" if v is not None else "-"  # noqa: E731
        print(f"{r['window_min'][0]:>5.0f}-{r['window_min'][1]:<5.0f} {r['events']:>6} {r['detected']:>8} "
              f"{fmt(r['latency_ms_p50']):>11} {fmt(r['latency_ms_p95']):>8}")
    print(f"events {len(events)}, detections {len(arrivals)}, lost {lost}; RSS {s[0, 1]:.0f} -> {s[-1, 1]:.0f} MB, "
          f"slope {slope:+.3f} MB/min (after warm-up); node CPU {cpu_pct:.1f} % of one core")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
