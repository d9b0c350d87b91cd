"""Test helper process: drives avag_node in continuous mode with JPEG CompressedImage input,
changes function_threshold at run time, and writes what it saw as JSON."""

from __future__ import annotations

import json
import sys
import threading
import time

import cv2
import numpy as np


def main() -> int:
    import rclpy
    import rclpy.executors
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage

    from avag.msg import AffordanceDetection, AudioFrame
    from avag_ros.conversions import image_to_numpy, make_header, numpy_to_audio_frame

    out_path = sys.argv[1]
    rclpy.init()
    node = rclpy.create_node("avag_continuous_driver")
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    img_pub = node.create_publisher(CompressedImage, "/camera/color/image_raw", qos)
    audio_pub = node.create_publisher(AudioFrame, "/audio/audio", qos)
    seen: list[dict] = []

    def on_det(m: AffordanceDetection) -> None:
        seen.append({"t": time.monotonic(), "area": m.function_area, "w": m.function_mask.width,
                     "h": m.function_mask.height, "mask_max": int(image_to_numpy(m.function_mask).max()),
                     "cloud": m.grasp_region.width})

    node.create_subscription(AffordanceDetection, "/avag_node/detection", on_det, qos)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    deadline = time.monotonic() + 60
    while img_pub.get_subscription_count() == 0 or audio_pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), np.uint8)
    ok, jpg = cv2.imencode(".jpg", frame)
    assert ok
    t0 = time.time_ns()
    changed_at = requested_at = None
    client = AsyncParameterClient(node, "avag_node")
    for k in range(int(8.0 / 0.032)):  # 8 s of audio at real time, 30 Hz frames
        stamp = t0 + k * 32_000_000
        audio_pub.publish(numpy_to_audio_frame(rng.normal(0, 0.01, 512).astype(np.float32), 16000,
                                               header=make_header(stamp)))
        if k % 1 == 0:
            img = CompressedImage(header=make_header(stamp, "cam"), format="jpeg", data=jpg.tobytes())
            img_pub.publish(img)
        if k == int(4.0 / 0.032):
            client.wait_for_services(5.0)
            requested_at = time.monotonic()  # no window before this can have the new threshold
            fut = client.set_parameters([Parameter("function_threshold", value=1.0)])
            while not fut.done():
                time.sleep(0.01)
            changed_at = time.monotonic()
        time.sleep(0.032)
    # wait for the windows emitted after the change to come back (not a fixed time)
    deadline = time.monotonic() + 20
    while sum(s["t"] > changed_at + 1.0 for s in seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(out_path, "w") as fh:
        json.dump({"seen": seen, "requested_at": requested_at, "changed_at": changed_at, "size": [frame.shape[1], frame.shape[0]]}, fh)
    executor.shutdown()
    spinner.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
