"""The perception node in its own process, fed by a real bag player (or a hostile feeder)
process over DDS, recorded from the test process: one detection per sound event,
matching the offline replay of the same bag, with point clouds inside the function mask.
Every wait is on a condition (subscriptions matched, messages received, events handled
as reported on /diagnostics), never a fixed sleep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import in_ros_env, needs_ros, read_bag, run_proc, stop_proc

pytestmark = needs_ros  # before the module's bag fixture

N_SCENES = 3
OUTPUTS = {
    "/avag_node/detection": "avag/msg/AffordanceDetection",
    "/avag_node/function_mask": "sensor_msgs/msg/Image",
    "/avag_node/dependency_prob": "sensor_msgs/msg/Image",
    "/avag_node/grasp_region": "sensor_msgs/msg/PointCloud2",
    "/avag_node/grasp_pose": "geometry_msgs/msg/PoseStamped",
    "/avag_node/markers": "visualization_msgs/msg/MarkerArray",
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


def run_node_on_bag(ros_env, tmp_path, bag: Path, checkpoint: Path, expected: int) -> tuple[dict, str]:
    """Play ``bag`` into a node process; returns what it published and its log."""
    from avag_ros.bag.evaluate import LiveRun
    from avag_ros.param_files import node_config

    cfg = node_config(overrides=[f"checkpoint={checkpoint}"])
    # the in-process recorder joins the test's private domain
    with in_ros_env(ros_env), LiveRun(cfg, tmp_path, ["-p", f"checkpoint:={checkpoint}"], topics=OUTPUTS) as run:
        out_bag = run.play(bag, expected)
    return read_bag(out_bag), (tmp_path / "node.log").read_text()


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

    got, node_out = run_node_on_bag(ros_env, tmp_path, scene_bag, shipped_checkpoint, N_SCENES)
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
    for det, ref, gt in zip(dets, offline.detections, truth, strict=True):
        stamp = stamp_to_ns(det.header.stamp)
        assert stamp in frames and det.header.frame_id == "camera_color_optical_frame"  # a real frame's header
        true_onset = stamp_to_ns(gt.event_start)
        detected_onset = stamp_to_ns(det.event_onset)  # published, not guessed from the start
        assert stamp_to_ns(det.event_start) <= detected_onset < stamp_to_ns(det.event_end)
        assert abs(detected_onset - true_onset) < 200_000_000
        assert abs(detected_onset - round(ref.event.onset_time * 1e9)) < 50_000_000  # same event
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
        # every event has depth: its grasp region exists and lies inside the function mask
        assert live.sum() >= NodeConfig().min_mask_pixels, "the shipped model found no function region"
        assert det.grasp_region.width > 0 and det.has_pose
        pts = pointcloud2_to_numpy(det.grasp_region)
        xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
        assert np.isfinite(xyz).all() and (xyz[:, 2] > 0).all()
        uv = (K @ (xyz / xyz[:, 2:3]).T).T[:, :2]
        u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        assert ((u >= 0) & (u < live.shape[1]) & (v >= 0) & (v < live.shape[0])).all()
        assert live[v, u].all()
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
    # cloud, pose and markers for every detection, on the detection's header
    clouds, poses = got["/avag_node/grasp_region"], got["/avag_node/grasp_pose"]
    assert [m.header.stamp for m in clouds] == [d.header.stamp for d in dets]
    assert [m.header.stamp for m in poses] == [d.header.stamp for d in dets]
    for pose, d in zip(poses, dets, strict=True):
        assert pose.pose == d.pose and pose.header.frame_id == d.header.frame_id
    # what was heard (the action head is on by default): the scene's action, on the
    # detection, drawn as the third marker
    markers = got["/avag_node/markers"]
    assert len(markers) == N_SCENES
    for m, d, t in zip(markers, dets, truth, strict=True):
        assert d.action_label == t.action_label.split("/")[-1] and d.action_confidence > 0.5
        assert [k.id for k in m.markers] == [0, 1, 2] and m.markers[2].text.startswith(d.action_label)
    diag = [s for a in got["/diagnostics"] for s in a.status if s.name.startswith("/avag_node:")][-1]
    values = {kv.key: kv.value for kv in diag.values}
    assert int(values["pipeline.detections"]) == N_SCENES and int(values["input.detections_published"]) == N_SCENES
    assert int(values["pipeline.depth_missing"]) == 0


def test_node_survives_bad_input_and_keeps_publishing(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    """Every kind of bad input (see procs/hostile_feeder.py), each followed by good sounds
    that must still give one correct detection each; each kind logged with its reason at
    most a few times (throttled per kind) and counted in /diagnostics."""
    from avag_ros.bag.recorder import LiveRecording
    from avag_ros.conversions import stamp_to_ns

    from conftest import PROCS_DIR

    with in_ros_env(ros_env), LiveRecording(tmp_path / "node_outputs", list(OUTPUTS.items())) as rec:
        # images reliable: the 9.6 MB one must reach the node to prove the size refusal (a
        # best-effort subscription may lose a sample of ~150 fragments on a loaded machine)
        node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p",
                         f"checkpoint:={shipped_checkpoint}", "-p", "max_image_mb:=8.0",
                         "-p", "image_qos_reliability:=reliable"], ros_env)
        try:
            feeder = run_proc([str(PROCS_DIR / "hostile_feeder.py"), str(scene_bag)], ros_env)
            feed_out, _ = feeder.communicate(timeout=240)
            assert feeder.returncode == 0, feed_out
            # both loops' events handled and their detections recorded
            settled = rec.wait_until(lambda: node.poll() is not None or (
                rec.diag_int("pipeline.events") >= 2 * N_SCENES
                and rec.counts.get("/avag_node/detection", 0) >= rec.diag_int("input.detections_published")
                >= rec.diag_int("pipeline.detections") >= 2 * N_SCENES), 30)
            assert node.poll() is None, "node died"
            assert settled, rec.diagnostics
            values = dict(rec.diagnostics)
        finally:
            node_out = stop_proc(node)
    got = read_bag(tmp_path / "node_outputs")
    dets = got.get("/avag_node/detection", [])
    # 20 s of silence gave nothing; each loop of the bag gave one detection per event
    assert len(dets) == 2 * N_SCENES, node_out[-3000:]
    first, second = dets[:N_SCENES], dets[N_SCENES:]
    # time looped back: the second loop re-detects the same events
    for a, b in zip(first, second, strict=True):
        assert abs(stamp_to_ns(a.header.stamp) - stamp_to_ns(b.header.stamp)) <= 200_000_000
        assert b.function_mask.width > 0 and b.function_mask.height > 0  # never the zero-size image
    # loop 1 had no camera_info: masks yes, point clouds and poses no; loop 2 (camera_info
    # mixed with NaN and 0x0 ones) has them for every event
    assert all(d.function_mask.width > 0 and d.grasp_region.width == 0 and not d.has_pose for d in first)
    assert all(d.grasp_region.width > 0 and d.has_pose for d in second)
    assert len(got.get("/avag_node/grasp_region", [])) == N_SCENES
    # each kind of problem counted, and logged with its reason, throttled per kind (10 s)
    for kind, reason in (("bad_image.zero_size", "zero-size image (0x0)"),
                         ("bad_image.too_large", "message of 9.6 MB exceeds max_image_mb=8"),
                         ("bad_image.encoding", "unsupported image encoding 'yuv422'"),
                         ("bad_image.layout", "image data has 10 bytes"),
                         ("bad_camera_info.nonfinite", "camera_info K has NaN/Inf entries"),
                         ("bad_camera_info.zero_size", "camera_info size is 0x0"),
                         ("bad_audio.format", "audio frame data has 100 bytes")):
        assert int(values[f"input.{kind}"]) >= 1, (kind, values)
        lines = [ln for ln in node_out.splitlines() if f"]: {kind}: " in ln]
        assert 1 <= len(lines) <= 8 and reason in lines[0], (kind, lines)
    assert int(values["input.bad_image"]) >= 5 and int(values["input.bad_camera_info"]) >= 2
    assert int(values["input.duplicate_frames"]) >= 1
    assert float(values["audio_buffer.time_resets"]) >= 1  # the loop was seen as time going backwards
    assert float(values["audio_buffer.duplicates"]) >= 1
    assert int(values["pipeline.nonfinite_outputs"]) == 0  # 3e38 samples were repaired, not fed to the model


def test_node_whose_configure_failed_says_why_on_diagnostics(ros_env, tmp_path):

    from diagnostic_msgs.msg import DiagnosticStatus

    from avag_ros.bag.recorder import LiveRecording

    with in_ros_env(ros_env), LiveRecording(tmp_path / "out", [("/diagnostics",
                                                               "diagnostic_msgs/msg/DiagnosticArray")]) as rec:
        node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p",
                         f"checkpoint:={tmp_path / 'missing.safetensors'}"], ros_env)
        try:
            assert rec.wait_until(lambda: node.poll() is not None or (
                rec.diagnostic_status is not None and rec.diagnostic_status.level == DiagnosticStatus.ERROR), 60)
            assert node.poll() is None, "a node whose configure failed must stay up and report"
            status = rec.diagnostic_status
        finally:
            stop_proc(node)
    assert status.message.startswith("configure failed:") and "missing.safetensors" in status.message


def test_continuous_mode_compressed_input_and_live_threshold(ros_env, tmp_path, shipped_checkpoint):
    import json

    from conftest import PROCS_DIR

    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}",
                     "-p", "compressed:=true", "-p", "use_depth:=false", "-p", "events.mode:=continuous",
                     "-p", "events.continuous_hop_ms:=500.0", "-p", "events.continuous_window_s:=1.0",
                     "-p", "function_threshold:=0.0",
                     # windows of plain noise: the action gate would (rightly) reject them all
                     "-p", "recognize_actions:=false"], ros_env)
    try:
        out = tmp_path / "seen.json"
        driver = run_proc([str(PROCS_DIR / "drive_continuous.py"), str(out)], ros_env)
        drv_out, _ = driver.communicate(timeout=120)
        assert driver.returncode == 0, drv_out
        assert node.poll() is None
    finally:
        node_out = stop_proc(node)
    result = json.loads(out.read_text())
    seen, requested, changed = result["seen"], result["requested_at"], result["changed_at"]
    # windows that arrived before the request was sent had the old threshold; those after
    # the change was confirmed (plus one window of latency) the new one; a window that
    # arrived in between may have either, so it is not judged
    before = [s for s in seen if s["t"] < requested]
    after = [s for s in seen if s["t"] > changed + 1.0]
    # a window every 0.5 s of 8 s of plain noise: no onset needed in continuous mode
    assert len(seen) >= 8, node_out
    assert all([s["w"], s["h"]] == result["size"] for s in seen)  # JPEG decoded at full size
    assert all(s["cloud"] == 0 for s in seen)  # no depth: masks but no point clouds
    # threshold 0: every pixel is function; threshold 1: none is (probabilities are < 1)
    assert before and all(s["area"] == 1.0 and s["mask_max"] == 255 for s in before)
    assert after and all(s["area"] == 0.0 and s["mask_max"] == 0 for s in after)


def test_enable_and_ground_services(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    """~/enable false pauses inference (events counted, nothing published) without losing
    the buffers; ~/ground answers a planner with a clip or a span of the node's own audio;
    ~/enable true resumes event-driven grounding."""
    import threading

    from std_srvs.srv import SetBool

    from avag.srv import Ground
    from avag_ros.bag.recorder import LiveRecording
    from avag_ros.benchmarks.live_feed import FeedConfig, LiveFeed
    from avag_ros.conversions import ns_to_stamp, stamp_to_ns

    scenes = scene_bag_scenes(scene_bag)

    def call(client, request, timeout=60.0):
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(request)
        assert rec.wait_until(future.done, timeout)
        return future.result()

    with in_ros_env(ros_env), LiveRecording(tmp_path / "out", list(OUTPUTS.items())) as rec:
        node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}"],
                        ros_env)
        try:
            enable = rec.recorder.create_client(SetBool, "/avag_node/enable")
            ground = rec.recorder.create_client(Ground, "/avag_node/ground")
            assert call(enable, SetBool.Request(data=False)).success
            feed = LiveFeed(rec.recorder, scenes, FeedConfig(width=256, height=192, scene_s=2.5))
            assert feed.wait_for_subscribers(60, lambda: node.poll() is None)
            stop = threading.Event()
            feeder = threading.Thread(target=feed.run, args=(60.0, stop), daemon=True)
            feeder.start()
            # paused: the first scene's event is heard and counted, nothing is published
            assert rec.wait_until(lambda: rec.diag_int("input.events_while_disabled") >= 1, 30), rec.diagnostics
            assert rec.counts.get("/avag_node/detection", 0) == 0
            # a planner's request with a clip, on the latest frame
            clip = scenes[0].sound[:16000]
            res = call(ground, Ground.Request(audio=clip.tolist(), sample_rate=16000))
            assert res.success, res.message
            det = res.detection
            assert det.function_mask.width == 256 and det.grasp_region.width > 0 and det.has_pose
            # ... and with a span of the node's own audio: the last second it heard
            end = stamp_to_ns(det.header.stamp)
            res = call(ground, Ground.Request(start=ns_to_stamp(end - 10**9), end=ns_to_stamp(end),
                                              frame_stamp=det.header.stamp))
            assert res.success, res.message
            assert res.detection.header.stamp == det.header.stamp  # the frame asked for
            bad = call(ground, Ground.Request(audio=clip.tolist(), sample_rate=3))
            assert not bad.success and "sample_rate" in bad.message
            published = rec.counts.get("/avag_node/detection", 0)
            assert rec.wait_until(lambda: rec.counts.get("/avag_node/detection", 0) >= 2, 10)
            # resumed: the next scene's event is grounded again
            assert call(enable, SetBool.Request(data=True)).success
            assert rec.wait_until(lambda: rec.diag_int("pipeline.detections") >= published + 1
                                  and rec.diag_int("input.grounding_requests") == 2, 30), rec.diagnostics
            stop.set()
            feeder.join(timeout=10)
            assert node.poll() is None
        finally:
            stop_proc(node)


def scene_bag_scenes(bag: Path) -> list:
    """The synthetic scenes of the module's dataset (for a live feed)."""
    from avag_ros.bag.synth_bag import load_scenes

    return load_scenes(bag.parent / "data", "val", limit=N_SCENES)


def test_rejected_events_enroll_and_live_rejection_threshold(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    """recognize_actions on, threshold 1.0: every sound goes to ~/rejected_events (stamped,
    top label), no masks. ~/enroll teaches a new action from clips and saves the file.
    Threshold set to 0 at run time: the next events are grounded and labelled."""
    import threading

    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from avag.srv import Enroll
    from avag_ros.bag.recorder import LiveRecording
    from avag_ros.benchmarks.live_feed import FeedConfig, LiveFeed

    scenes = scene_bag_scenes(scene_bag)
    enrolled = tmp_path / "enrolled.safetensors"

    def call(client, request, timeout=60.0):
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(request)
        assert rec.wait_until(future.done, timeout)
        return future.result()

    with in_ros_env(ros_env), LiveRecording(tmp_path / "out", [
            *OUTPUTS.items(), ("/avag_node/rejected_events", "avag/msg/RejectedEvent")]) as rec:
        node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}",
                         "-p", "recognize_actions:=true", "-p", "rejection_threshold:=1.0",
                         "-p", f"enrollment_file:={enrolled}"], ros_env)
        stop = threading.Event()
        try:
            feed = LiveFeed(rec.recorder, scenes, FeedConfig(width=256, height=192, scene_s=2.5))
            assert feed.wait_for_subscribers(60, lambda: node.poll() is None)
            feeder = threading.Thread(target=feed.run, args=(60.0, stop), daemon=True)
            feeder.start()
            assert rec.wait_until(lambda: rec.counts.get("/avag_node/rejected_events", 0) >= 1, 30), rec.diagnostics
            assert rec.counts.get("/avag_node/detection", 0) == 0
            enroll = rec.recorder.create_client(Enroll, "/avag_node/enroll")
            clips = [s.sound[:8000] for s in scenes]
            res = call(enroll, Enroll.Request(name="my_tool", audio=np.concatenate(clips).tolist(), sample_rate=16000,
                                              clip_lengths=[c.size for c in clips], save=True))
            assert res.success and res.clips == len(clips) and "my_tool" in res.actions, res.message
            assert enrolled.is_file()
            bad = call(enroll, Enroll.Request(name="x", audio=[0.0] * 10, sample_rate=16000, clip_lengths=[3]))
            assert not bad.success and "clip_lengths" in bad.message
            params = rec.recorder.create_client(SetParameters, "/avag_node/set_parameters")
            value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.0)
            assert call(params, SetParameters.Request(parameters=[
                Parameter(name="rejection_threshold", value=value)])).results[0].successful
            assert rec.wait_until(lambda: rec.counts.get("/avag_node/detection", 0) >= 1, 30), rec.diagnostics
            stop.set()
            feeder.join(timeout=10)
        finally:
            stop.set()
            stop_proc(node)
    got = read_bag(tmp_path / "out")
    rejected = got["/avag_node/rejected_events"]
    assert all(m.threshold == pytest.approx(1.0) and m.labels and m.labels[0] == m.top_label for m in rejected)
    dets = got["/avag_node/detection"]
    assert dets[0].action_label and dets[0].action_confidence > 0.0
    texts = [mk.text for arr in got["/avag_node/markers"] for mk in arr.markers if mk.text]
    assert texts and texts[0].startswith(dets[0].action_label)
