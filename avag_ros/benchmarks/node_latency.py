"""End-to-end reaction latency of avag_node while a 30 Hz camera and a microphone stream flow.

    python -m avag_ros.benchmarks.node_latency [--scenes 8] [--checkpoint CKPT] [--json out.json]

A feeder re-stamps synthetic scenes (camera 30 Hz, depth, camera_info, 16 kHz audio in
32 ms frames with action sounds) to the wall clock and publishes them in real time; a
subscriber records when each AffordanceDetection arrives. Latency = arrival time -
``event_decided`` (the audio time at which the event was known to be over), so it is
what the node adds after the sound: the detector's release time is reported separately.
Overhead = latency - the model's own time (``inference_ms``). The node runs in its own
process; its CPU and peak memory are read from /proc.
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


def _proc_stats(pid: int) -> tuple[float, float]:
    """(cpu seconds, peak RSS MB) of a process from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def _checkpoint(path: str | None, work: Path) -> Path:
    if path:
        return Path(path)
    from avag_ros.adapter import default_checkpoint

    shipped = default_checkpoint()
    if shipped.exists():
        return shipped
    # Same architecture, random weights: identical cost.
    import torch

    from avag_core.config import load_config
    from avag_core.modeling import build_model
    from avag_core.weights.checkpoint import save_model_checkpoint

    torch.manual_seed(0)
    cfg = load_config("realtime")
    out = work / "realtime_random.safetensors"
    save_model_checkpoint(out, build_model(cfg.model), cfg)
    print(f"(no shipped checkpoint: using random realtime weights {out})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--json", type=Path)
    p.add_argument("--domain", type=int, default=77)
    args = p.parse_args(argv)

    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    work = Path(tempfile.mkdtemp(prefix="avag_latency_"))
    os.environ.setdefault("ROS_LOG_DIR", str(work / "log"))

    import rclpy
    import rclpy.executors
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import CameraInfo, Image

    from avag.msg import AffordanceDetection, AudioFrame
    from avag_core.data.synth import generate
    from avag_core.events import EventConfig
    from avag_ros.bag.synth_bag import TOPICS, SynthBagConfig, load_scenes, write_synth_bag
    from avag_ros.conversions import ns_to_stamp, stamp_to_ns
    from avag_ros.msg_types import get_message_class

    ckpt = _checkpoint(args.checkpoint, work)
    data = generate(work / "data", seed=11, size="tiny")
    scenes = load_scenes(data, "val", limit=args.scenes)
    bag = work / "bag"
    write_synth_bag(scenes, bag, SynthBagConfig(seed=11))
    msgs = []
    with Reader(bag) as reader:
        for conn, t, raw in reader.messages():
            if conn.topic != TOPICS["ground_truth"][0]:
                msgs.append((t, conn.topic, deserialize_message(raw, get_message_class(conn.msgtype))))

    node_proc = subprocess.Popen(
        [sys.executable, "-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={ckpt}"],
        stdout=(work / "node.log").open("w"), stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("avag_latency_bench")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    types = {"/camera/color/image_raw": Image, "/camera/aligned_depth_to_color/image_raw": Image,
             "/camera/color/camera_info": CameraInfo, "/audio/audio": AudioFrame}
    pubs = {t: node.create_publisher(ty, t, qos) for t, ty in types.items()}
    arrivals: list[tuple[int, AffordanceDetection]] = []
    node.create_subscription(AffordanceDetection, "/avag_node/detection",
                             lambda m: arrivals.append((time.time_ns(), m)), qos)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 120
        while any(pb.get_subscription_count() == 0 for pb in pubs.values()):
            if time.monotonic() > deadline or node_proc.poll() is not None:
                raise SystemExit(f"avag_node did not come up; see {work / 'node.log'}")
            time.sleep(0.1)
        time.sleep(2.0)
        cpu0, _ = _proc_stats(node_proc.pid)
        wall0 = time.monotonic()
        offset = time.time_ns() + 500_000_000 - msgs[0][0]  # bag time -> wall clock
        for t, topic, msg in msgs:
            target = wall0 + 0.5 + (t - msgs[0][0]) / 1e9
            while (now := time.monotonic()) < target:
                time.sleep(min(target - now, 0.002))
            if topic == "/audio/audio":  # a microphone delivers a chunk once its last sample is in
                target += msg.samples_per_channel / msg.sample_rate
                while (now := time.monotonic()) < target:
                    time.sleep(min(target - now, 0.002))
            msg.header.stamp = ns_to_stamp(stamp_to_ns(msg.header.stamp) + offset)
            pubs[topic].publish(msg)
        time.sleep(3.0)
        cpu1, peak_mb = _proc_stats(node_proc.pid)
        busy_s = time.monotonic() - wall0
    finally:
        node_proc.send_signal(2)
        node_proc.wait(timeout=20)
        executor.shutdown()
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.shutdown()

    lat = np.array([(a - stamp_to_ns(m.event_decided)) / 1e6 for a, m in arrivals])
    model = np.array([m.inference_ms for _a, m in arrivals])
    overhead = lat - model
    q = lambda x, k: float(np.percentile(x, k)) if x.size else float("nan")  # noqa: E731
    result = {
        "scenes": len(scenes), "detections": len(arrivals), "checkpoint": str(ckpt),
        "latency_ms_median": q(lat, 50), "latency_ms_p95": q(lat, 95),
        "model_ms_median": q(model, 50), "model_ms_p95": q(model, 95),
        "overhead_ms_median": q(overhead, 50), "overhead_ms_p95": q(overhead, 95),
        "release_s": EventConfig().release_s,
        "node_cpu_percent": 100.0 * (cpu1 - cpu0) / busy_s, "node_peak_rss_mb": peak_mb,
        "cpu_count": os.cpu_count(),
    }
    print(f"{'scenes':>6} {'dets':>5} {'latency p50':>12} {'p95':>7} {'model p50':>10} {'p95':>7} "
          f"{'overhead p50':>13} {'p95':>7} {'node CPU':>9} {'peak RSS':>9}")
    r = result
    print(f"{r['scenes']:>6} {r['detections']:>5} {r['latency_ms_median']:>10.1f}ms {r['latency_ms_p95']:>5.1f}ms "
          f"{r['model_ms_median']:>8.1f}ms {r['model_ms_p95']:>5.1f}ms {r['overhead_ms_median']:>11.1f}ms "
          f"{r['overhead_ms_p95']:>5.1f}ms {r['node_cpu_percent']:>8.0f}% {r['node_peak_rss_mb']:>7.0f}MB")
    print(f"(plus the detector's release time of {r['release_s']:.2f} s of quiet before an event is known to be over)")
    print("per event (latency / model ms):", " ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(lat, model, strict=True)))
    result["per_event_latency_ms"] = lat.tolist()
    result["per_event_model_ms"] = model.tolist()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
