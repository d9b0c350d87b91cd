"""Test helper process: waits for a node to appear in the ROS graph and prints, as one JSON
line, the topics it subscribes to and publishes (by the names DDS sees, after remapping).

    python graph_probe.py NODE NAMESPACE [--timeout S] [--receive TOPIC TYPE]

With --receive it also waits for one message on TOPIC (best effort) and reports whether
it arrived, so a test can tell that a publisher really produces data."""

from __future__ import annotations

import argparse
import json
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("node")
    p.add_argument("namespace")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--receive", nargs=2, metavar=("TOPIC", "TYPE"))
    args = p.parse_args()

    import rclpy
    from rclpy.qos import qos_profile_sensor_data

    from avag_ros.msg_types import get_message_class

    rclpy.init()
    node = rclpy.create_node("avag_graph_probe")
    received = []
    if args.receive:
        node.create_subscription(get_message_class(args.receive[1]), args.receive[0],
                                 received.append, qos_profile_sensor_data)
    deadline = time.monotonic() + args.timeout
    result: dict = {"found": False}
    try:
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
            if (args.node, args.namespace) not in node.get_node_names_and_namespaces():
                continue
            subs = [t for t, _ in node.get_subscriber_names_and_types_by_node(args.node, args.namespace)]
            pubs = [t for t, _ in node.get_publisher_names_and_types_by_node(args.node, args.namespace)]
            result = {"found": True, "subscriptions": subs, "publishers": pubs}
            if not args.receive or received:
                break
        result["received"] = len(received)
        print(json.dumps(result), flush=True)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
