"""Resolve 'pkg/msg/Type' strings to rclpy message classes (rosidl_runtime_py is not on PyPI)."""

from __future__ import annotations

import importlib


def get_message_class(type_name: str) -> type:
    """``"sensor_msgs/msg/Image"`` (or ``"sensor_msgs/Image"``) -> the generated class."""
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"message type must look like pkg/msg/Type, got {type_name!r}")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError):
        raise ValueError(f"message type {type_name!r} is not installed") from None
