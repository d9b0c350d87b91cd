"""Test helper process: publishes known AffordanceDetection and AudioFrame messages.

Waits until a subscriber has matched both topics, then publishes --count of each.
``make_detection(i)`` / ``make_audio(i)`` are imported by the tests to know what to expect.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def make_audio(i: int):
    from avag.msg import AudioFrame

    msg = AudioFrame()
    msg.header.stamp.sec = 100 + i
    msg.header.stamp.nanosec = 32_000_000 * (i % 30)
    msg.header.frame_id = "mic_link"
    msg.sample_rate = 16000
    msg.channels = 2
    msg.sample_format = AudioFrame.FORMAT_F32
    n = 512
    t = (np.arange(n) + i * n) / 16000.0
    left = np.sin(2 * np.pi * 440.0 * t)
    right = 0.5 * np.sin(2 * np.pi * 880.0 * t)
    inter = np.stack([left, right], axis=1).astype("<f4")
    msg.samples_per_channel = n
    msg.data = inter.tobytes()
    return msg


def make_detection(i: int):
    from geometry_msgs.msg import Pose, Vector3
    from sensor_msgs.msg import Image, PointCloud2, PointField

    from avag.msg import AffordanceDetection

    h, w = 48, 64
    det = AffordanceDetection()
    det.header.stamp.sec = 200 + i
    det.header.frame_id = "camera_color_optical_frame"
    det.event_start.sec = 199 + i
    det.event_end.sec = 199 + i
    det.event_end.nanosec = 500_000_000
    det.action_label = "chop"
    det.action_confidence = 0.75
    for mask_msg, (r0, r1) in ((Image(), (10, 20 + i)), (Image(), (30, 40))):
        mask = np.zeros((h, w), np.uint8)
        mask[r0:r1, 5:25] = 255
        mask_msg.header = det.header
        mask_msg.height, mask_msg.width, mask_msg.encoding, mask_msg.step = h, w, "mono8", w
        mask_msg.data = mask.tobytes()
        if det.function_mask.width == 0:
            det.function_mask = mask_msg
        else:
            det.dependency_mask = mask_msg
    det.function_score = 0.9
    det.dependency_score = 0.6
    det.function_area = float((10 + i) * 20) / (h * w)
    det.dependency_area = 200.0 / (h * w)
    pts = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    pts["z"] = [1.0, 1.1, 1.2 + i]
    cloud = PointCloud2()
    cloud.header = det.header
    cloud.height, cloud.width = 1, len(pts)
    cloud.fields = [
        PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1)
        for k, n in enumerate("xyz")
    ]
    cloud.point_step, cloud.row_step = 12, 12 * len(pts)
    cloud.is_dense = True
    cloud.data = pts.tobytes()
    det.grasp_region = cloud
    det.has_pose = True
    det.pose = Pose()
    det.pose.position.z = 1.1
    det.pose.orientation.w = 1.0
    det.principal_extents = Vector3(x=0.05, y=0.02, z=0.01)
    det.centroid_u, det.centroid_v = 15.0, 15.0 + i / 2
    det.inference_ms = 42.0
    return det


def main() -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from avag.msg import AffordanceDetection, AudioFrame

    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--prefix", default="/test")
    args = p.parse_args()
    rclpy.init()
    node = rclpy.create_node("avag_test_publisher")
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pub_det = node.create_publisher(AffordanceDetection, f"{args.prefix}/detection", qos)
    pub_audio = node.create_publisher(AudioFrame, f"{args.prefix}/audio", qos)
    deadline = time.monotonic() + 30
    while (pub_det.get_subscription_count() == 0 or pub_audio.get_subscription_count() == 0):
        if time.monotonic() > deadline:
            print("no subscriber matched", flush=True)
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the remote side finish matching both ways
    for i in range(args.count):
        pub_det.publish(make_detection(i))
        pub_audio.publish(make_audio(i))
        rclpy.spin_once(node, timeout_sec=0.05)
    # reliable delivery of the tail before the participant goes away: every sample acknowledged
    if not all(pub.wait_for_all_acked(Duration(seconds=30)) for pub in (pub_det, pub_audio)):
        print("not every sample was acknowledged within 30 s", flush=True)
        return 1
    print(f"published {args.count}", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
