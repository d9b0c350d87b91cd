"""Two real processes exchange avag messages over Fast DDS; the receiver writes a real rosbag2."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from conftest import PROCS_DIR, REPO_ROOT, run_proc, stop_proc


def assert_msg_equal(got, want, path: str = "msg") -> None:
    """Field-by-field equality; float32 fields compare after float32 rounding."""
    if hasattr(want, "get_fields_and_field_types"):
        for name in want.get_fields_and_field_types():
            assert_msg_equal(getattr(got, name), getattr(want, name), f"{path}.{name}")
    elif isinstance(want, float):
        assert np.float32(got) == np.float32(want), path
    elif isinstance(want, (list, tuple)) and want and hasattr(want[0], "get_fields_and_field_types"):
        assert len(got) == len(want), path
        for k, (g, w) in enumerate(zip(got, want, strict=False)):
            assert_msg_equal(g, w, f"{path}[{k}]")
    else:
        assert bytes(got) == bytes(want) if isinstance(want, (bytes, bytearray)) else got == want, path


def _load_publisher_module():
    spec = importlib.util.spec_from_file_location("publish_samples", PROCS_DIR / "publish_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("storage", "profile"), [("mcap", False), ("sqlite3", False), ("mcap", True)]
)
def test_detection_and_audio_cross_process_into_bag(ros_env, tmp_path, storage, profile):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from avag.msg import AffordanceDetection, AudioFrame

    if profile:  # the shipped single-host Fast DDS profile (large SHM segment, UDP on loopback)
        ros_env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO_ROOT / "config" / "fastdds_single_host.xml")
        ros_env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    bag = tmp_path / "bag"
    count = 8
    rec = run_proc(
        [
            "-m", "avag_ros.bag.recorder", "--out", str(bag), "--storage", storage,
            "--topic", "/test/detection:avag/msg/AffordanceDetection",
            "--topic", "/test/audio:avag/msg/AudioFrame",
            "--max-messages", str(2 * count),
        ],
        ros_env,
    )
    pub = run_proc([str(PROCS_DIR / "publish_samples.py"), "--count", str(count)], ros_env)
    try:
        pub_out, _ = pub.communicate(timeout=60)
        assert pub.returncode == 0, pub_out
        deadline = time.monotonic() + 20
        while rec.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        rec_out = stop_proc(rec)
    assert rec.returncode == 0, rec_out
    assert "XMLPARSER" not in rec_out and "XMLPARSER" not in pub_out  # profile parsed cleanly

    expected = _load_publisher_module()
    got: dict[str, list] = {"/test/detection": [], "/test/audio": []}
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            cls = AffordanceDetection if conn.msgtype == "avag/msg/AffordanceDetection" else AudioFrame
            got[conn.topic].append(deserialize_message(raw, cls))
    assert len(got["/test/detection"]) == count
    assert len(got["/test/audio"]) == count

    for i, det in enumerate(got["/test/detection"]):
        want = expected.make_detection(i)
        assert_msg_equal(det, want)
        assert det.action_label == "chop" and det.has_pose
        mask = np.frombuffer(det.function_mask.data, np.uint8).reshape(48, 64)
        assert int((mask == 255).sum()) == (10 + i) * 20
        z = np.frombuffer(det.grasp_region.data, "<f4").reshape(-1, 3)[:, 2]
        np.testing.assert_allclose(z, [1.0, 1.1, 1.2 + i], rtol=1e-6)

    for i, frame in enumerate(got["/test/audio"]):
        assert_msg_equal(frame, expected.make_audio(i))
        samples = np.frombuffer(frame.data, "<f4").reshape(-1, frame.channels)
        assert samples.shape == (512, 2)
        t0 = i * 512 / 16000.0
        assert samples[0, 0] == pytest.approx(np.sin(2 * np.pi * 440.0 * t0), abs=1e-6)
