"""The one way avag's executables start, spin and stop a node, cleanly on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import rclpy
import rclpy.executors

N = TypeVar("N")


def run_node(make_node: Callable[[], N], on_exit: Callable[[N], None] | None = None) -> int:
    """Start the node ``make_node()`` and spin it until Ctrl-C, external shutdown or
    SystemExit; then run ``on_exit(node)``, destroy the node and shut rclpy down.

    A Ctrl-C can come at any moment, also while the node starts (a model loading, a sound
    card refusing): the executor is made first, so the signal never meets a half-built
    executor (rclpy prints a traceback when one is collected), and a start-up it
    interrupts ends quietly with status 0. Errors of the start-up itself (a refused
    parameter: ValueError) reach the caller.

    Always a single-threaded executor: rclpy's MultiThreadedExecutor (Humble, Jazzy and
    Kilted 9.1) busy-waits while a callback is queued and holds the GIL, starving any
    worker thread of the process (ros2/rclpy#1452). Heavy work belongs on a worker
    thread; callbacks only buffer."""
    executor = rclpy.executors.SingleThreadedExecutor()
    try:
        node = make_node()
    except KeyboardInterrupt:
        executor.shutdown()
        rclpy.try_shutdown()
        return 0
    except BaseException:
        executor.shutdown()
        raise
    try:
        executor.add_node(node)
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
            on_exit(node)
        executor.shutdown()
        node.destroy_node()  # type: ignore[attr-defined]
        if rclpy.ok():
            rclpy.shutdown()
    return 0
