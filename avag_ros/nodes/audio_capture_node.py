"""Microphone node: a sounddevice input stream published as avag/msg/AudioFrame chunks.

Each chunk is stamped at its FIRST sample. Stamps come from a sample counter anchored to
the ROS clock when the stream starts (so consecutive chunks are exactly
chunk_size / sample_rate apart and audio time never jitters), and the anchor is re-synced
when the counter drifts from the clock by more than ``resync_s`` (an overflow, a stall).
When the device disappears or fails to open, the node logs why, lists the devices it
can see, and retries every ``retry_s`` seconds.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from avag.msg import AudioFrame
from avag_ros import params
from avag_ros.conversions import make_header, numpy_to_audio_frame
from avag_ros.spin import run_node


def parse_device(value: str) -> int | str | None:
    """'' -> default device, '3' -> index 3, anything else -> a name (substring match)."""
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


class AudioCaptureNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("audio_capture_node", **kwargs)
        cfg = params.declare_mic(self)  # descriptors (description, range); bad values refused
        self.device = parse_device(cfg.device)
        self.rate = cfg.sample_rate
        self.channels = cfg.channels
        self.chunk = cfg.chunk_size
        self.sample_format = cfg.sample_format
        self.frame_id = cfg.frame_id
        self.resync_ns = int(cfg.resync_s * 1e9)
        rel = ReliabilityPolicy.RELIABLE if cfg.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
        self.pub = self.create_publisher(AudioFrame, cfg.topic, QoSProfile(depth=50, reliability=rel))
        self._stream = None
        self._lock = threading.Lock()
        self._anchor_ns: int | None = None
        self._samples = 0
        self.chunks = 0
        self.overflows = 0
        self.resyncs = 0
        self._open()
        self.create_timer(cfg.retry_s, self._watchdog)

    def _open(self) -> None:
        import sounddevice as sd

        try:
            stream = sd.InputStream(
                device=self.device, samplerate=self.rate, channels=self.channels,
                blocksize=self.chunk, dtype="float32", callback=self._on_audio,
            )
            stream.start()
        except Exception as exc:  # PortAudioError, ValueError for an unknown name
            try:
                devices = "; ".join(
                    f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0
                ) or "none"
            except Exception:
                devices = "unknown"
            self.get_logger().error(
                f"cannot open audio device {self.device!r} at {self.rate} Hz x{self.channels}: {exc}"
                f" (input devices: {devices}); retrying", throttle_duration_sec=10.0)
            self._stream = None
            return
        with self._lock:
            self._stream = stream
            self._anchor_ns = None
            self._samples = 0
        self.get_logger().info(
            f"capturing from {stream.device!r} at {self.rate} Hz, {self.channels} ch, {self.chunk}-sample chunks")

    def _watchdog(self) -> None:
        stream = self._stream
        if stream is not None and stream.active:
            return
        if stream is not None:
            self.get_logger().warning("audio stream stopped (device gone?); reopening")
            with contextlib.suppress(Exception):
                stream.close()
            self._stream = None
        self._open()

    def _on_audio(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if status and status.input_overflow:
            self.overflows += 1
        first_sample_ns = now_ns - frames * 1_000_000_000 // self.rate
        with self._lock:
            if self._anchor_ns is None:
                self._anchor_ns, self._samples = first_sample_ns, 0
            stamp = self._anchor_ns + self._samples * 1_000_000_000 // self.rate
            if abs(stamp - first_sample_ns) > self.resync_ns:
                self.resyncs += 1
                self._anchor_ns, self._samples, stamp = first_sample_ns, 0, first_sample_ns
            self._samples += frames
        msg = numpy_to_audio_frame(indata.T, self.rate, self.sample_format, make_header(stamp, self.frame_id))
        self.pub.publish(msg)
        self.chunks += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)

    def finish(node: AudioCaptureNode) -> None:
        node.close()
        summary = f"published {node.chunks} chunks ({node.overflows} overflows)"
        if rclpy.ok():
            node.get_logger().info(summary)
        else:  # Ctrl-C already shut the context down: the logger could not reach /rosout
            print(f"[{node.get_fully_qualified_name()}] {summary}", flush=True)

    return run_node(AudioCaptureNode, finish, name="audio_capture_node")


if __name__ == "__main__":
    sys.exit(main())
