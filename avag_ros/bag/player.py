"""Play a rosbag2 into a live ROS graph, honouring its timestamps (rosbag2_py-free).

Messages are published as the serialized bytes stored in the bag (no round trip) at
their recorded pace (``--rate`` scales it). With ``--clock HZ`` the bag time is published on
/clock so nodes running with ``use_sim_time`` follow the bag. Keep HZ modest (20): every
/clock message costs each sim-time rclpy node a clock update, and at 100 Hz a busy
Python node measurably starves (the perception node then drops camera and audio input).

    python -m avag_ros.bag.player BAG [--rate 1.0] [--clock 20] [--wait-for /topic ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader

from avag_core.errors import AvagError
from avag_ros.msg_types import get_message_class


def open_bag(path: Path) -> Reader:
    """Open a bag with a one-line error for anything wrong with it."""
    if not Path(path).exists():
        raise AvagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for corrupt/truncated bags
        raise AvagError(f"cannot read bag {path}: {str(exc).splitlines()[0] or type(exc).__name__}") from None
    return reader


class BagPlayer(Node):
    def __init__(self, reader: Reader, topics: list[str] | None = None, clock_hz: float = 0.0) -> None:
        super().__init__("avag_bag_player")
        self.reader = reader
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.connections = [c for c in reader.connections if not topics or c.topic in topics]
        self.pubs = {}
        for conn in self.connections:
            if conn.topic not in self.pubs:
                try:
                    cls = get_message_class(conn.msgtype)
                except ValueError as exc:
                    raise AvagError(f"bag topic {conn.topic}: {exc}") from None
                self.pubs[conn.topic] = self.create_publisher(cls, conn.topic, qos)
        self.clock_pub = None
        self.clock_period_ns = 0
        if clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = self.create_publisher(
                Clock, "/clock", QoSProfile(depth=1, durability=DurabilityPolicy.VOLATILE))
            self.clock_period_ns = int(1e9 / clock_hz)
        self.published = 0

    def wait_for_subscribers(self, topics: list[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.pubs[t].get_subscription_count() > 0 for t in topics if t in self.pubs):
                return True
            time.sleep(0.05)
        return False

    def play(self, rate: float = 1.0) -> int:
        from rosgraph_msgs.msg import Clock

        wall0 = time.monotonic()
        bag0 = None
        next_clock = None
        for conn, stamp, data in self.reader.messages(connections=self.connections):
            if bag0 is None:
                bag0 = stamp
                next_clock = stamp
            target = wall0 + (stamp - bag0) / 1e9 / rate
            while True:
                now = time.monotonic()
                if self.clock_pub is not None and next_clock is not None:
                    bag_now = bag0 + int((now - wall0) * rate * 1e9)
                    if bag_now >= next_clock:
                        clk = Clock()
                        clk.clock.sec, clk.clock.nanosec = divmod(min(bag_now, stamp), 1_000_000_000)
                        self.clock_pub.publish(clk)
                        next_clock = bag_now + self.clock_period_ns
                if now >= target:
                    break
                time.sleep(min(target - now, 0.002))
            self.pubs[conn.topic].publish(bytes(data))
            self.published += 1
        return self.published


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bag", type=Path)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--clock", type=float, default=0.0, help="publish /clock at this rate (Hz)")
    p.add_argument("--topics", nargs="*", help="only these topics")
    p.add_argument("--wait-for", nargs="*", default=[], help="wait until these topics have subscribers")
    p.add_argument("--wait-timeout", type=float, default=60.0)
    p.add_argument("--delay", type=float, default=0.5, help="seconds between matching and playing")
    args, ros_args = p.parse_known_args(argv)
    try:
        reader = open_bag(args.bag)
    except AvagError as exc:
        print(f"avag bag play: error: {exc}", file=sys.stderr)
        return 2
    rclpy.init(args=[sys.argv[0], *ros_args])
    try:
        node = BagPlayer(reader, args.topics, args.clock)
        if args.wait_for and not node.wait_for_subscribers(args.wait_for, args.wait_timeout):
            print(f"avag bag play: error: no subscriber on {args.wait_for} after {args.wait_timeout} s",
                  file=sys.stderr)
            return 3
        time.sleep(args.delay)
        n = node.play(args.rate)
        time.sleep(0.5)  # let reliable delivery finish
        print(f"played {n} messages from {args.bag}", flush=True)
    except AvagError as exc:
        print(f"avag bag play: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        reader.close()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
