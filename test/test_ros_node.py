"""The perception node in its own process, fed by a real bag player process over DDS,
observed by a recorder process: one detection per sound event, matching the offline
replay of the same bag, with point clouds inside the function mask."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_proc, stop_proc

N_SCENES = 3
# These tests stream a camera and a microphone in real time between processes over
# best-effort DDS. On a shared CI machine a momentary CPU stall of a second or more can
# drop the camera frames around one sound onset (the node then counts and logs the miss):
# such a test runs once more. A broken feature fails both runs.
REAL_TIME = pytest.mark.flaky(reruns=1)
OUTPUTS = {
    "/avag_node/detection": "avag/msg/AffordanceDetection",
    "/avag_node/function_mask": "sensor_msgs/msg/Image",
    "/avag_node/dependency_prob": "sensor_msgs/msg/Image",
    "/avag_node/grasp_region": "sensor_msgs/msg/PointCloud2",
    "/avag_node/overlay": "sensor_msgs/msg/Image",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


@pytest.fixture
def ros_env(ros_env: dict[str, str]) -> dict[str, str]:
    """The node runs as the README tells users to run it on one host: with the Fast DDS
    single-host profile (images through a shared-memory segment large enough for them)."""
    from conftest import REPO_ROOT

    ros_env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO_ROOT / "config" / "fastdds_single_host.xml")
    return ros_env


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory) -> Path:
    from avag_core.data.synth import generate
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    root = tmp_path_factory.mktemp("synth")
    data = generate(root / "data", seed=3, size="tiny")
    scenes = load_scenes(data, "val", limit=N_SCENES)
    bag = root / "scenes_bag"
    write_synth_bag(scenes, bag, SynthBagConfig(seed=3))
    return bag


def read_bag(bag: Path) -> dict[str, list]:
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from avag_ros.msg_types import get_message_class

    out: dict[str, list] = {}
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            out.setdefault(conn.topic, []).append(deserialize_message(raw, get_message_class(conn.msgtype)))
    return out


def run_node_on_bag(ros_env, tmp_path, bag: Path, checkpoint: Path, extra_params=()) -> tuple[dict, str]:
    out_bag = tmp_path / "node_outputs"
    topics = [a for t, ty in OUTPUTS.items() for a in ("--topic", f"{t}:{ty}")]
    rec = run_proc(["-m", "avag_ros.bag.recorder", "--out", str(out_bag), *topics], ros_env)
    params = ["-p", f"checkpoint:={checkpoint}", *[a for p in extra_params for a in ("-p", p)]]
    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", *params], ros_env)
    try:
        player = run_proc(
            ["-m", "avag_ros.bag.player", str(bag), "--wait-for", "/camera/color/image_raw", "/audio/audio",
             "--delay", "2.0"],
            ros_env,
        )
        play_out, _ = player.communicate(timeout=120)
        assert player.returncode == 0, play_out
        time.sleep(3.0)  # the last event completes and its detection is published
        assert node.poll() is None, "node died"
    finally:
        node_out = stop_proc(node)
        stop_proc(rec)
    return read_bag(out_bag), node_out


@REAL_TIME
def test_one_detection_per_event_matching_offline_replay(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    from avag_core.events import EventConfig
    from avag_core.predictor import Predictor
    from avag_ros.bag.replay import replay_offline
    from avag_ros.conversions import (
        audio_frame_to_numpy,
        image_to_numpy,
        image_to_rgb,
        pointcloud2_to_numpy,
        stamp_to_ns,
    )
    from avag_ros.params import NodeConfig

    got, node_out = run_node_on_bag(ros_env, tmp_path, scene_bag, shipped_checkpoint)
    dets = got.get("/avag_node/detection", [])
    inputs = read_bag(scene_bag)
    truth = inputs["/avag/ground_truth"]
    assert len(truth) == N_SCENES
    assert len(dets) == N_SCENES, node_out  # exactly one detection per sound event

    frames = {stamp_to_ns(m.header.stamp): m for m in inputs["/camera/color/image_raw"]}
    audio_msgs = inputs["/audio/audio"]
    audio = np.concatenate([audio_frame_to_numpy(m)[0][0] for m in audio_msgs])
    audio_t0 = stamp_to_ns(audio_msgs[0].header.stamp)
    predictor = Predictor.from_checkpoint(shipped_checkpoint)
    offline = replay_offline(scene_bag, predictor)
    assert len(offline.detections) == N_SCENES
    K = np.asarray(inputs["/camera/color/camera_info"][0].k).reshape(3, 3)
    pre_roll = round(EventConfig().pre_roll_s * 1e9)
    for det, ref, gt in zip(dets, offline.detections, truth, strict=True):
        stamp = stamp_to_ns(det.header.stamp)
        assert stamp in frames and det.header.frame_id == "camera_color_optical_frame"  # a real frame's header
        true_onset = stamp_to_ns(gt.event_start)
        detected_onset = stamp_to_ns(det.event_start) + pre_roll
        assert abs(detected_onset - true_onset) < 200_000_000
        assert abs(detected_onset - (round(ref.event.start_time * 1e9) + pre_roll)) < 50_000_000  # same event
        # the camera frame nearest the onset (a best-effort frame may be lost under load)
        assert abs(stamp - detected_onset) <= EventConfig().frame_max_gap_s * 1e9
        # offline prediction of the shipped checkpoint for that frame and that event's audio
        a0 = (stamp_to_ns(det.event_start) - audio_t0) * 16000 // 10**9
        a1 = (stamp_to_ns(det.event_end) - audio_t0) * 16000 // 10**9
        predictor.set_image(image_to_rgb(frames[stamp]))
        want = predictor.predict(audio[a0:a1], 16000).function_prob > 0.5
        live = image_to_numpy(det.function_mask) > 0
        union = (live | want).sum()
        assert ((live & want).sum() / union if union else 1.0) >= 0.99
        if det.grasp_region.width:
            pts = pointcloud2_to_numpy(det.grasp_region)
            xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
            assert np.isfinite(xyz).all()
            uv = (K @ (xyz / xyz[:, 2:3]).T).T[:, :2]
            u = np.clip(np.round(uv[:, 0]).astype(int), 0, live.shape[1] - 1)
            v = np.clip(np.round(uv[:, 1]).astype(int), 0, live.shape[0] - 1)
            assert live[v, u].mean() >= 0.99
            assert det.has_pose
    # each mask topic message shares the detection's header
    masks = got["/avag_node/function_mask"]
    assert [m.header.stamp for m in masks] == [d.header.stamp for d in dets]
    # the dependency probabilities behind each published dependency mask
    dprobs = got["/avag_node/dependency_prob"]
    assert [m.header.stamp for m in dprobs] == [d.header.stamp for d in dets]
    for m, d in zip(dprobs, dets, strict=True):
        assert m.encoding == "32FC1"
        np.testing.assert_array_equal(image_to_numpy(m) > NodeConfig().dependency_threshold,
                                      image_to_numpy(d.dependency_mask) > 0)
    # overlay only computed while someone subscribes: the recorder did
    assert len(got.get("/avag_node/overlay", [])) == N_SCENES
    diag = got["/diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in diag.values}
    assert int(values["detections"]) == N_SCENES


@REAL_TIME
def test_node_survives_bad_input_and_keeps_publishing(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    from avag_ros.conversions import stamp_to_ns

    from conftest import PROCS_DIR

    out_bag = tmp_path / "node_outputs"
    topics = [a for t, ty in OUTPUTS.items() for a in ("--topic", f"{t}:{ty}")]
    rec = run_proc(["-m", "avag_ros.bag.recorder", "--out", str(out_bag), *topics], ros_env)
    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}"],
                    ros_env)
    try:
        feeder = run_proc([str(PROCS_DIR / "hostile_feeder.py"), str(scene_bag)], ros_env)
        feed_out, _ = feeder.communicate(timeout=180)
        assert feeder.returncode == 0, feed_out
        time.sleep(2.5)  # diagnostics tick after the last input
        assert node.poll() is None, "node died"
    finally:
        node_out = stop_proc(node)
        stop_proc(rec)
    got = read_bag(out_bag)
    dets = got.get("/avag_node/detection", [])
    # 20 s of silence gave nothing; each loop of the bag gave one detection per event
    assert len(dets) == 2 * N_SCENES, node_out[-3000:]
    first, second = dets[:N_SCENES], dets[N_SCENES:]
    # time looped back: the second loop re-detects the same events (the frame picked may
    # differ by one when a best-effort frame is lost)
    for a, b in zip(first, second, strict=True):
        assert abs(stamp_to_ns(a.header.stamp) - stamp_to_ns(b.header.stamp)) <= 200_000_000
    # loop 1 had no camera_info: masks yes, point clouds and poses no
    assert all(d.function_mask.width > 0 and d.grasp_region.width == 0 and not d.has_pose for d in first)
    assert len(got.get("/avag_node/grasp_region", [])) == sum(d.grasp_region.width > 0 for d in second)
    values = {kv.key: kv.value for kv in got["/diagnostics"][-1].status[0].values}
    assert int(values["bad_image"]) >= 2 and int(values["bad_audio"]) >= 2
    assert int(values["duplicate_frames"]) >= 1
    assert float(values["audio_time_resets"]) >= 1  # the loop was seen as time going backwards
    assert float(values["audio_nonfinite_chunks"]) >= 1 and float(values["audio_duplicates"]) >= 1
    assert "dropped" in node_out  # bad messages were logged


@REAL_TIME
def test_continuous_mode_compressed_input_and_live_threshold(ros_env, tmp_path, shipped_checkpoint):
    import json

    from conftest import PROCS_DIR

    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}",
                     "-p", "compressed:=true", "-p", "use_depth:=false", "-p", "events.mode:=continuous",
                     "-p", "events.continuous_hop_ms:=500.0", "-p", "events.continuous_window_s:=1.0",
                     "-p", "function_threshold:=0.0"], ros_env)
    try:
        out = tmp_path / "seen.json"
        driver = run_proc([str(PROCS_DIR / "drive_continuous.py"), str(out)], ros_env)
        drv_out, _ = driver.communicate(timeout=120)
        assert driver.returncode == 0, drv_out
        assert node.poll() is None
    finally:
        node_out = stop_proc(node)
    result = json.loads(out.read_text())
    seen, changed = result["seen"], result["changed_at"]
    before = [s for s in seen if s["t"] < changed]
    after = [s for s in seen if s["t"] > changed + 1.0]
    # a window every 0.5 s of 8 s of plain noise: no onset needed in continuous mode
    assert len(seen) >= 8, node_out
    assert all([s["w"], s["h"]] == result["size"] for s in seen)  # JPEG decoded at full size
    assert all(s["cloud"] == 0 for s in seen)  # no depth: masks but no point clouds
    # threshold 0: every pixel is function; threshold 1: none is (probabilities are < 1)
    assert before and all(s["area"] == 1.0 and s["mask_max"] == 255 for s in before)
    assert after and all(s["area"] == 0.0 and s["mask_max"] == 0 for s in after)
