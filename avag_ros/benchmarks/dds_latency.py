"""Image transport latency between two processes on one host, with and without avag's
Fast DDS profile (config/fastdds_single_host.xml).

    python -m avag_ros.benchmarks.dds_latency [--count 100] [--json out.json]

Latency = receive time (subscriber, system clock) - header.stamp (set by the publisher
from the same system clock just before publish), so it includes serialisation,
transport and deserialisation into a Python message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_single_host.xml"
SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}


def _qos():
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def run_publisher(height: int, width: int, count: int, rate: float) -> int:
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("avag_latency_pub")
    pub = node.create_publisher(Image, "/avag_bench/image", _qos())
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    time.sleep(0.5)
    frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = frame.tobytes()
    for _ in range(count):
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        pub.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def run_subscriber(count: int, warmup: int) -> int:
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("avag_latency_sub")
    lat: list[float] = []

    def cb(msg: Image) -> None:
        t = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        lat.append((t - stamp) / 1e6)

    node.create_subscription(Image, "/avag_bench/image", cb, _qos())
    deadline = time.monotonic() + 120
    while len(lat) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(lat[warmup:]), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def measure(size: str, use_profile: bool, count: int, warmup: int, rate: float, domain: int) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    env["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="avag_bench_log_")
    if use_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    else:
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    me = [sys.executable, "-m", "avag_ros.benchmarks.dds_latency"]
    sub = subprocess.Popen(
        [*me, "--role", "sub", "--count", str(count + warmup), "--warmup", str(warmup)],
        env=env, stdout=subprocess.PIPE, text=True,
    )
    pub = subprocess.Popen(
        [*me, "--role", "pub", "--size", size, "--count", str(count + warmup), "--rate", str(rate)],
        env=env,
    )
    out, _ = sub.communicate(timeout=300)
    pub.wait(timeout=60)
    lat = np.array(json.loads(out.strip().splitlines()[-1]) if out.strip() else [])
    return {
        "size": size,
        "profile": use_profile,
        "received": int(lat.size),
        "sent": count,
        "median_ms": float(np.median(lat)) if lat.size else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=("bench", "pub", "sub"), default="bench")
    p.add_argument("--size", choices=sorted(SIZES), default="640x480")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--domain", type=int, default=61)
    args = p.parse_args(argv)
    if args.role == "pub":
        h, w = SIZES[args.size]
        return run_publisher(h, w, args.count, args.rate)
    if args.role == "sub":
        return run_subscriber(args.count, args.warmup)

    rows = []
    for size in SIZES:
        for use_profile in (False, True):
            rows.append(measure(size, use_profile, args.count, args.warmup, args.rate, args.domain))
            args.domain += 1
    print(f"{'image':>10} {'transport':>26} {'recv':>8} {'median ms':>10} {'p95 ms':>8}")
    for r in rows:
        name = "avag profile (SHM 32 MiB)" if r["profile"] else "Fast DDS default"
        print(
            f"{r['size']:>10} {name:>26} {r['received']:>4}/{r['sent']:<3} "
            f"{r['median_ms']:>10.2f} {r['p95_ms']:>8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
