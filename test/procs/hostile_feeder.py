"""Test helper process: plays a good scene bag twice (the second time with time jumping
back, like a looping bag) wrapped in every kind of bad input the node must survive.

Order: 20 s of digital silence (sent 20x faster than real time) with a 9.6 MB and a 100 MB
image in it, then loop 1 without any camera_info, then loop 2 with camera_info (each good one
preceded by one with NaN K or a 0x0 size). Throughout: zero-size images, unsupported
encodings, truncated images, padded rows, depth at another resolution, NaN/Inf audio,
finite samples far beyond full scale (3e38), malformed audio frames, a wrong sample rate,
duplicate and out-of-order stamps.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import CameraInfo, Image

    from avag.msg import AudioFrame
    from avag_ros.conversions import (
        image_to_numpy,
        make_header,
        numpy_to_audio_frame,
        numpy_to_image,
    )
    from avag_ros.msg_types import get_message_class

    p = argparse.ArgumentParser()
    p.add_argument("bag")
    args = p.parse_args()

    msgs = []
    with Reader(args.bag) as reader:
        for conn, t, raw in reader.messages():
            if conn.topic != "/avag/ground_truth":
                msgs.append((t, conn.topic, deserialize_message(raw, get_message_class(conn.msgtype))))
    t_first, t_last = msgs[0][0], msgs[-1][0]

    rclpy.init()
    node = rclpy.create_node("avag_hostile_feeder")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        "/camera/color/image_raw": node.create_publisher(Image, "/camera/color/image_raw", qos),
        "/camera/aligned_depth_to_color/image_raw": node.create_publisher(
            Image, "/camera/aligned_depth_to_color/image_raw", qos),
        "/camera/color/camera_info": node.create_publisher(CameraInfo, "/camera/color/camera_info", qos),
        "/audio/audio": node.create_publisher(AudioFrame, "/audio/audio", qos),
    }
    deadline = time.monotonic() + 60
    while any(p.get_subscription_count() == 0 for p in pubs.values()):
        if time.monotonic() > deadline:
            print("node never subscribed", flush=True)
            return 1
        time.sleep(0.05)
    time.sleep(2.0)

    audio_pub, image_pub = pubs["/audio/audio"], pubs["/camera/color/image_raw"]
    # 20 s of a quiet room (the bag's background level) right before the bag starts,
    # sent 20x faster than real time: no event may come of it
    bad = 0
    silence_start = t_first - 20 * 10**9  # contiguous with the bag's first audio frame
    quiet = np.random.default_rng(0).normal(0.0, 10 ** (-55 / 20), (625, 512)).astype(np.float32)
    for k in range(625):
        stamp = silence_start + k * 32_000_000
        audio_pub.publish(numpy_to_audio_frame(quiet[k], 16000, header=make_header(stamp)))
        time.sleep(0.0016)
        if k == 300:  # 9.6 MB: over the node's max_image_mb=8 of this test, refused by size
            image_pub.publish(Image(header=make_header(stamp), height=1600, width=2000, encoding="rgb8",
                                    step=2000 * 3, data=bytes(1600 * 2000 * 3)))
            bad += 1
        if k == 400:  # a 100 MB message: nothing else may be lost
            image_pub.publish(Image(header=make_header(stamp), height=5000, width=6667, encoding="rgb8",
                                    step=6667 * 3, data=bytes(5000 * 6667 * 3)))
            bad += 1
    time.sleep(1.0)  # let the node work through the burst before the real-time part

    for loop in range(2):
        wall0 = time.monotonic()
        last_audio = None
        for i, (t, topic, msg) in enumerate(msgs):
            target = wall0 + (t - t_first) / 1e9
            while (now := time.monotonic()) < target:
                time.sleep(min(target - now, 0.002))
            if topic == "/camera/color/camera_info" and loop == 0:
                continue  # loop 1: camera_info missing entirely
            if topic == "/camera/color/camera_info":  # loop 2: a broken one before each good one
                broken = CameraInfo(header=msg.header, width=msg.width, height=msg.height, k=list(msg.k))
                if i % 2:
                    broken.k[0] = float("nan")
                else:
                    broken.width = broken.height = 0
                pubs[topic].publish(broken)
                bad += 1
            if topic == "/camera/color/image_raw":
                if i % 7 == 0:  # same frame with padded rows: valid, must decode identically
                    rgb = image_to_numpy(msg)
                    padded = np.zeros((msg.height, msg.width * 3 + 5), np.uint8)
                    padded[:, : msg.width * 3] = rgb.reshape(msg.height, -1)
                    msg = Image(header=msg.header, height=msg.height, width=msg.width, encoding="rgb8",
                                step=msg.width * 3 + 5, data=padded.tobytes())
                if i % 11 == 0:  # unsupported encoding (stamp nudged: not a duplicate)
                    yuv = Image(header=make_header(t + 1000), height=4, width=4, encoding="yuv422",
                                step=8, data=bytes(32))
                    image_pub.publish(yuv)
                    bad += 1
                if i % 3 == 0:  # zero-size image a microsecond after a good frame
                    image_pub.publish(Image(header=make_header(t + 1500), height=0, width=0, encoding="rgb8",
                                            step=0, data=b""))
                    bad += 1
                if i % 13 == 0:  # truncated data
                    image_pub.publish(Image(header=make_header(t + 2000), height=msg.height, width=msg.width,
                                            encoding="rgb8", step=msg.width * 3, data=bytes(10)))
                    bad += 1
                if i % 17 == 0:  # duplicate stamp
                    image_pub.publish(msg)
            if topic == "/camera/aligned_depth_to_color/image_raw" and i % 5 == 0:
                half = image_to_numpy(msg)[::2, ::2]  # depth at half the image resolution
                msg = numpy_to_image(np.ascontiguousarray(half), msg.encoding, msg.header)
            if topic == "/audio/audio":
                samples = np.frombuffer(bytes(msg.data), "<f4")
                if i % 97 == 0 and np.abs(samples).max() < 0.01:  # NaN/Inf in place of a quiet chunk
                    broken = samples.copy()
                    broken[::50] = np.nan
                    broken[1] = np.inf
                    msg = numpy_to_audio_frame(broken, 16000, header=msg.header)
                elif i % 97 == 13 and np.abs(samples).max() < 0.01:  # finite, but far beyond full scale
                    huge = samples.copy()
                    huge[100:110] = 3e38
                    msg = numpy_to_audio_frame(huge, 16000, header=msg.header)
                if i % 89 == 0:  # malformed: byte count does not match the declared size
                    audio_pub.publish(AudioFrame(header=make_header(t + 3000), sample_rate=16000, channels=1,
                                                 sample_format="F32LE", samples_per_channel=512, data=bytes(100)))
                    bad += 1
                if i % 83 == 0:  # unsupported sample format
                    audio_pub.publish(AudioFrame(header=make_header(t + 4000), sample_rate=16000, channels=1,
                                                 sample_format="U8", samples_per_channel=4, data=bytes(4)))
                    bad += 1
                if i % 79 == 0 and last_audio is not None:  # out of order: a chunk from the past
                    audio_pub.publish(last_audio)
                audio_pub.publish(msg)
                if i % 71 == 0:  # duplicate
                    audio_pub.publish(msg)
                if i % 101 == 0:  # a chunk claiming another sample rate (a different device)
                    audio_pub.publish(numpy_to_audio_frame(np.zeros(256, np.float32), 8000,
                                                           header=make_header(t + 5000)))
                last_audio = msg
                continue
            pubs[topic].publish(msg)
        time.sleep(1.0)
    # reliable delivery of the tail before the participant goes away: every sample acknowledged
    if not all(pub.wait_for_all_acked(Duration(seconds=60)) for pub in pubs.values()):
        print("not every sample was acknowledged within 60 s", flush=True)
        return 1
    print(f"done; {bad} bad messages; bag span {(t_last - t_first) / 1e9:.1f} s", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
