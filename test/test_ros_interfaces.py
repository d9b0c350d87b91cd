"""The packaged build really generated the interfaces from msg/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT, needs_ros

pytestmark = needs_ros


def _share_dir() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("avag"))


@pytest.mark.parametrize("name", ["AudioFrame", "AffordanceDetection"])
def test_generated_from_our_msg_files(name):
    import avag.msg

    share = _share_dir()
    # the installed definition is the one in the repository
    assert (share / "msg" / f"{name}.msg").read_text() == (REPO_ROOT / "msg" / f"{name}.msg").read_text()
    cls = getattr(avag.msg, name)
    msg_fields = set(cls.get_fields_and_field_types())
    declared = {
        line.split()[1]
        for line in (REPO_ROOT / "msg" / f"{name}.msg").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and "=" not in line
    }
    assert msg_fields == declared
    # compiled C type support exists (the Python module needs it to serialize)
    pkg_dir = Path(avag.msg.__file__).parent.parent
    assert list(pkg_dir.glob("avag_s__rosidl_typesupport_c*.so"))


def test_type_hashes_match_rosbags():
    """Bags written by our tools (rosbags) carry the same RIHS01 hash as rosidl generated."""
    from avag_ros.bag.typestore import avag_typestore

    store = avag_typestore()
    for name in ("AudioFrame", "AffordanceDetection"):
        desc = json.loads((_share_dir() / "msg" / f"{name}.json").read_text())
        rosidl_hash = next(
            h["hash_string"] for h in desc["type_hashes"] if h["type_name"] == f"avag/msg/{name}"
        )
        assert store.hash_rihs01(f"avag/msg/{name}") == rosidl_hash


def test_serialization_round_trip_and_constants():
    import numpy as np
    from rclpy.serialization import deserialize_message, serialize_message

    from avag.msg import AffordanceDetection, AudioFrame

    assert (AudioFrame.FORMAT_F32, AudioFrame.FORMAT_S16, AudioFrame.FORMAT_S32) == (
        "F32LE",
        "S16LE",
        "S32LE",
    )
    frame = AudioFrame(sample_rate=16000, channels=1, sample_format="S16LE", samples_per_channel=4)
    frame.data = np.array([0, 1, -1, 32767], "<i2").tobytes()
    back = deserialize_message(serialize_message(frame), AudioFrame)
    assert np.array_equal(np.frombuffer(bytes(back.data), "<i2"), [0, 1, -1, 32767])

    det = AffordanceDetection(action_label="twist", has_pose=True)
    det.pose.orientation.w = 1.0
    back = deserialize_message(serialize_message(det), AffordanceDetection)
    assert back.action_label == "twist" and back.has_pose and back.pose.orientation.w == 1.0
