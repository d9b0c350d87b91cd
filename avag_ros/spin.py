"""The one way avag's executables start, spin and stop a node, cleanly on Ctrl-C."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

import rclpy
import rclpy.executors
from rclpy.context import Context
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions, get_current_signal_handlers_options

N = TypeVar("N", bound=Node)

SIGINT_SHUTDOWN_WAIT_S = 2.0  # longest wait for rclpy's signal thread to shut the context down
SPIN_WAKE_S = 0.1  # the longest the main thread waits in the middleware before it checks for Ctrl-C


def await_sigint_shutdown(context: Context, timeout_s: float = SIGINT_SHUTDOWN_WAIT_S) -> None:
    """After a KeyboardInterrupt: wait until rclpy's SIGINT handler has shut ``context`` down.

    Why: on SIGINT, rclpy (Humble and later) lets Python raise KeyboardInterrupt at once and
    shuts the contexts down, middleware included, on a thread of its own. A node destroyed
    before that thread is done can crash the process (a SIGSEGV in rcl_publisher_fini, seen
    in CI and in 1 of 60 Ctrl-Cs on a busy machine). ``rcl_shutdown`` marks the context
    invalid only after the middleware's shutdown, so once the context is down the node can
    go. Where rclpy's SIGINT handler is not installed nothing shuts the context down: no wait."""
    if get_current_signal_handlers_options() not in (SignalHandlerOptions.ALL, SignalHandlerOptions.SIGINT):
        return
    deadline = time.monotonic() + timeout_s
    while context.ok() and time.monotonic() < deadline:
        time.sleep(0.001)


def _spin_until_shutdown(executor: rclpy.executors.Executor, wake_s: float = SPIN_WAKE_S) -> None:
    """Spin until the context is shut down (a Ctrl-C, a SIGTERM, rclpy.shutdown), as
    ``executor.spin()`` does, but never wait in the middleware longer than ``wake_s``.
    For ``run_node``, which shuts the executor down only after this returns.

    Why: a Ctrl-C surfaces as KeyboardInterrupt only once the main thread is back in
    Python. rclpy's signal thread should wake the executor's wait through a guard
    condition, yet on a busy machine about one Ctrl-C in 30 left an idle recorder's main
    thread in ``rcl_wait`` for good (Kilted, Fast DDS; still there 10 s later), and it never
    closed its bag. Waking every ``wake_s`` bounds how late a Ctrl-C is seen, whatever
    missed the wake. It costs about 15 us of CPU per callback (a timer per wait)."""
    while executor.context.ok():
        executor.spin_once(timeout_sec=wake_s)


def run_node(make_node: Callable[[], N], on_exit: Callable[[N], None] | None = None, *, name: str) -> int:
    """Start the node ``make_node()`` and spin it until Ctrl-C, external shutdown or
    SystemExit; then run ``on_exit(node)``, destroy the node and shut rclpy down. Returns
    the process status.

    A Ctrl-C can come at any moment, also while the node starts (a model loading, a sound
    card refusing): the executor is made first, so the signal never meets a half-built
    executor (rclpy prints a traceback when one is collected), and a start-up it
    interrupts ends quietly with status 0. A start-up that refuses its parameters
    (ValueError) prints ``<name>: error: <why>`` as its only line and returns 2.

    Always a single-threaded executor: rclpy's MultiThreadedExecutor (Humble, Jazzy and
    Kilted 9.1) busy-waits while a callback is queued and holds the GIL, starving any
    worker thread of the process (ros2/rclpy#1452). Heavy work belongs on a worker
    thread; callbacks only buffer."""
    executor = rclpy.executors.SingleThreadedExecutor()
    try:
        node = make_node()
    except (KeyboardInterrupt, ValueError) as exc:
        if isinstance(exc, KeyboardInterrupt):
            await_sigint_shutdown(executor.context)
        executor.shutdown()
        rclpy.try_shutdown()
        if isinstance(exc, KeyboardInterrupt):
            return 0
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        executor.shutdown()
        raise
    try:
        executor.add_node(node)
        _spin_until_shutdown(executor)
    except KeyboardInterrupt:
        await_sigint_shutdown(executor.context)
    except (SystemExit, rclpy.executors.ExternalShutdownException):
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
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
