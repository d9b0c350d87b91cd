"""A rosbags type store that knows the avag messages.

rosbags (pure Python) reads and writes rosbag2 without rosbag2_py; it only needs the
message definitions. Ours are taken from the installed package (``share/avag/msg``) or,
in a source checkout, from ``msg/`` next to this package.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MESSAGE_NAMES = ("AudioFrame", "AffordanceDetection", "RejectedEvent")


def msg_dir() -> Path:
    """Folder holding avag's .msg files."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        cand = Path(prefix) / "share" / "avag" / "msg"
        if all((cand / f"{name}.msg").exists() for name in MESSAGE_NAMES):
            return cand
    source = Path(__file__).resolve().parents[2] / "msg"
    if (source / "AudioFrame.msg").exists():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        cand = Path(get_package_share_directory("avag")) / "msg"
        if (cand / "AudioFrame.msg").exists():
            return cand
    except Exception:  # ament_index missing or package not installed
        pass
    raise FileNotFoundError("cannot find avag's msg/ definitions (share/avag/msg or msg/)")


@lru_cache(maxsize=1)
def avag_typestore() -> Typestore:
    """ROS 2 Kilted standard types plus avag/msg/*; hashes match rosidl's (RIHS01)."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name in MESSAGE_NAMES:
        text = (msg_dir() / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"avag/msg/{name}"))
    store.register(types)
    return store
