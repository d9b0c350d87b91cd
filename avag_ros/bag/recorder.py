"""Record topics into a rosbag2 (mcap or sqlite3) without rosbag2_py.

Subscribes in raw mode, so messages are written exactly as they arrived (no
deserialise/serialise round trip), stamped with the receive time on the node's clock
(sim time under ``use_sim_time``), like ``ros2 bag record``.

    python -m avag_ros.bag.recorder --out BAG --topic /avag/detection:avag/msg/AffordanceDetection
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer

from avag_ros.bag.typestore import avag_typestore
from avag_ros.msg_types import get_message_class
from avag_ros.spin import run_node


class BagRecorder(Node):
    def __init__(
        self,
        out: Path,
        topics: list[tuple[str, str]],
        storage: str = "mcap",
        reliable: bool = True,
        max_messages: int = 0,
        **node_kwargs: Any,
    ) -> None:
        super().__init__("avag_bag_recorder", **node_kwargs)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(out, version=9, storage_plugin=plugin)
        self._writer.open()
        self._store = avag_typestore()
        self._max = max_messages
        self.count = 0
        self.counts: dict[str, int] = {}  # per topic, written so far
        qos = QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        self._subs = []
        for topic, type_name in topics:
            conn = self._writer.add_connection(topic, type_name, typestore=self._store)
            cls = get_message_class(type_name)
            self._subs.append(
                self.create_subscription(cls, topic, self._make_cb(conn, topic), qos, raw=True)
            )

    def _make_cb(self, conn: Any, topic: str) -> Callable[[bytes], None]:
        def cb(data: bytes) -> None:
            self._writer.write(conn, self.get_clock().now().nanoseconds, bytes(data))
            self.count += 1
            self.counts[topic] = self.counts.get(topic, 0) + 1
            if self._max and self.count >= self._max:
                raise SystemExit(0)

        return cb

    def close(self) -> None:
        self._writer.close()


def parse_topic(spec: str) -> tuple[str, str]:
    topic, sep, type_name = spec.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--topic expects NAME:pkg/msg/Type, got {spec!r}")
    return topic, type_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--topic", type=parse_topic, action="append", required=True)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--best-effort", action="store_true", help="best-effort subscriptions")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after N (0 = never)")
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=[sys.argv[0], *ros_args])

    def finish(node: BagRecorder) -> None:
        node.close()
        node.get_logger().info(f"wrote {node.count} messages to {args.out}")

    return run_node(lambda: BagRecorder(args.out, args.topic, args.storage, not args.best_effort,
                                        args.max_messages), finish, name="avag_bag_recorder")


if __name__ == "__main__":
    sys.exit(main())


class LiveRecording:
    """Record topics from inside the calling process while something else runs, and watch
    a node's /diagnostics, so callers wait on conditions (messages received, events
    handled) instead of sleeping. Its own rclpy context: safe beside other ROS code.

        with LiveRecording(out_bag, topics, watch="/avag_node") as rec:
            ...  # start processes
            rec.wait_until(lambda: rec.counts.get("/avag_node/detection", 0) >= 3, 60)
    """

    def __init__(self, out: Path, topics: list[tuple[str, str]], watch: str = "/avag_node") -> None:
        self.out, self.topics, self.watch = out, topics, watch
        self.diagnostics: dict[str, str] = {}  # the watched node's latest status values
        self.diagnostic_status: Any = None  # and the whole latest DiagnosticStatus

    def __enter__(self) -> LiveRecording:
        import threading

        import rclpy.executors
        from diagnostic_msgs.msg import DiagnosticArray

        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        self._executor = rclpy.executors.SingleThreadedExecutor(context=self._context)
        self.recorder = BagRecorder(self.out, self.topics, context=self._context)

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name.startswith(f"{self.watch}:"):
                    self.diagnostic_status = status
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

        self.recorder.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        self._executor.add_node(self.recorder)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()
        return self

    @property
    def counts(self) -> dict[str, int]:
        return self.recorder.counts

    def diag_int(self, key: str) -> int:
        return int(float(self.diagnostics.get(key, 0)))

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """True as soon as ``condition()`` holds; False after ``timeout_s``."""
        import time

        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True

    def __exit__(self, *exc: Any) -> None:
        self._executor.shutdown()
        self._spinner.join(timeout=5)
        self.recorder.close()
        self.recorder.destroy_node()
        rclpy.shutdown(context=self._context)
