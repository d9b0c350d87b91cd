"""The one way avag's executables spin a node and shut down cleanly on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.executors


def spin_until_shutdown(node: Any, on_exit: Callable[[], None] | None = None) -> int:
    """Spin ``node`` until Ctrl-C, external shutdown or SystemExit; then run ``on_exit``,
    destroy the node and shut rclpy down.

    Always a single-threaded executor: rclpy's MultiThreadedExecutor (Humble, Jazzy and
    Kilted 9.1) busy-waits while a callback is queued and holds the GIL, starving any
    worker thread of the process (ros2/rclpy#1452). Heavy work belongs on a worker
    thread; callbacks only buffer."""
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, SystemExit, rclpy.executors.ExternalShutdownException):
        pass
    except Exception:
        # A SIGTERM can shut the context down while the executor builds its wait set:
        # rclpy then raises RCLError ("context is not valid") instead of a shutdown.
        if rclpy.ok():
            raise
    finally:
        if on_exit is not None:
            on_exit()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
