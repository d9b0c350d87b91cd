"""Play a rosbag2 into a live ROS graph, honouring its timestamps (rosbag2_py-free).

Messages are published as the serialized bytes stored in the bag (no round trip) at
their recorded pace (``--rate`` scales it). With ``--clock HZ`` the bag time is published on
/clock so nodes running with ``use_sim_time`` follow the bag. Keep HZ modest (20): every
/clock message costs each sim-time rclpy node a clock update, and at 100 Hz a busy
Python node measurably starves (the perception node then drops camera and audio input).

    python -m avag_ros.bag.player BAG [--rate 1.0] [--clock 20] [--topics /a /b] [--wait-for /topic ...]

Exit status: 0 when the bag was played to its end, or when stopped by Ctrl-C / SIGTERM (no
traceback); 2 for a bag that cannot be read or has none of the requested topics; 3 when
nobody subscribed to the ``--wait-for`` topics in time. With ``--clock`` the bag's own /clock
is not replayed (two clocks would fight).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avag_core.errors import AvagError

# rclpy and rosbags are imported where used: main() first takes over Ctrl-C, so a Ctrl-C
# while they load (launch starts every process at once) ends the player quietly.
if TYPE_CHECKING:
    from rosbags.rosbag2 import Reader


def open_bag(path: Path) -> Reader:
    """Open a bag with a one-line error for anything wrong with it."""
    from rosbags.rosbag2 import Reader

    if not Path(path).exists():
        raise AvagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for corrupt/truncated bags
        raise AvagError(f"cannot read bag {path}: {str(exc).splitlines()[0] or type(exc).__name__}") from None
    return reader


def checked_messages(messages: Any, bag: Path) -> Any:
    """Re-raise the reader's own failures (truncated/corrupt file) as one-line errors."""
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:
            raise AvagError(f"bag {bag} is truncated or corrupt: {str(exc).splitlines()[0] or type(exc).__name__}") from None
        yield item


class BagPlayer:
    """Publishers for the bag's topics on an rclpy node of its own (``context``: an rclpy Context)."""

    def __init__(self, reader: Reader, topics: list[str] | None = None, clock_hz: float = 0.0,
                 context: Any = None) -> None:
        import rclpy
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        from avag_ros.msg_types import get_message_class

        self.node = rclpy.create_node("avag_bag_player", context=context)
        self.reader = reader
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.connections = [c for c in reader.connections if (not topics or c.topic in topics)
                            and not (clock_hz > 0 and c.topic == "/clock")]
        if not self.connections:
            raise AvagError(f"the bag has none of the topics {' '.join(topics or [])} "
                            f"(it has {' '.join(sorted({c.topic for c in reader.connections}))})")
        self.pubs = {}
        for conn in self.connections:
            if conn.topic not in self.pubs:
                try:
                    cls = get_message_class(conn.msgtype)
                except ValueError as exc:
                    raise AvagError(f"bag topic {conn.topic}: {exc}") from None
                self.pubs[conn.topic] = self.node.create_publisher(cls, conn.topic, qos)
        self.clock_pub = None
        self.clock_period_ns = 0
        if clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = self.node.create_publisher(
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bag", type=Path)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--clock", type=float, default=0.0, help="publish /clock at this rate (Hz)")
    p.add_argument("--topics", nargs="*", help="only these topics (default: every topic of the bag)")
    p.add_argument("--wait-for", nargs="*", default=[], help="wait until these topics have subscribers")
    p.add_argument("--wait-timeout", type=float, default=60.0)
    p.add_argument("--delay", type=float, default=0.5, help="seconds between matching and playing")
    args, ros_args = p.parse_known_args(argv)
    if args.rate <= 0:
        print(f"avag bag play: error: --rate must be > 0, got {args.rate}", file=sys.stderr)
        return 2
    # Ctrl-C (SIGINT) and SIGTERM (launch's escalation) raise KeyboardInterrupt here and
    # nowhere else: rclpy's own handlers would shut the context down under a publish() in
    # progress and surface as an RCLError traceback.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = node = reader = None
    try:
        reader = open_bag(args.bag)
        import rclpy
        import rclpy.signals

        context = rclpy.Context()
        rclpy.init(args=[sys.argv[0], *ros_args], context=context,
                   signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        node = BagPlayer(reader, args.topics, args.clock, context=context)
        missing = sorted(set(args.topics or []) - set(node.pubs))
        if missing:
            print(f"avag bag play: not in the bag, not played: {' '.join(missing)}", file=sys.stderr, flush=True)
        waited = time.monotonic()
        if args.wait_for and not node.wait_for_subscribers(args.wait_for, args.wait_timeout):
            print(f"avag bag play: error: no subscriber on {args.wait_for} after {args.wait_timeout} s",
                  file=sys.stderr)
            return 3
        if args.wait_for:  # a slow subscriber start-up shows here (and in the log's time)
            print(f"{time.strftime('%H:%M:%S')} subscribers on {' '.join(args.wait_for)} after "
                  f"{time.monotonic() - waited:.1f} s", flush=True)
        time.sleep(args.delay)
        n = node.play(args.rate)
        time.sleep(0.5)  # let reliable delivery finish
        print(f"played {n} messages from {args.bag}", flush=True)
    except AvagError as exc:
        print(f"avag bag play: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avag bag play: stopped after {node.published if node else 0} messages", flush=True)
    finally:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while closing
            if reader is not None:
                reader.close()
            if node is not None:
                node.node.destroy_node()
            if context is not None and context.ok():
                context.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
