"""rosbag2 tools: synthetic bags round trip, the replay report, event matching, bad bags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, needs_ros

pytestmark = needs_ros


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> tuple[Path, list]:
    from avag_core.data.synth import generate
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    root = tmp_path_factory.mktemp("bagtools")
    data = generate(root / "data", seed=5, size="tiny")
    scenes = load_scenes(data, "val", limit=2)
    bag = root / "bag"
    info = write_synth_bag(scenes, bag, SynthBagConfig(seed=5, scene_s=2.5, sound_at_s=0.8, max_sound_s=1.0))
    return bag, scenes, info


def _avag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avag_core.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_synth_bag_round_trip(small_bag, tmp_path, storage):
    from rosbags.rosbag2 import Reader

    from avag_ros.bag.evaluate import read_topics
    from avag_ros.bag.synth_bag import BAG_START_NS, SynthBagConfig, write_synth_bag
    from avag_ros.conversions import audio_frame_to_numpy, image_to_numpy, stamp_to_ns

    _bag, scenes, _ = small_bag
    cfg = SynthBagConfig(seed=5, scene_s=2.5, sound_at_s=0.8, max_sound_s=1.0)
    bag = tmp_path / f"bag_{storage}"
    info = write_synth_bag(scenes, bag, cfg, storage)
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        log_times = [t for _c, t, _r in reader.messages()]
    duration = len(scenes) * cfg.scene_s + cfg.tail_s
    assert counts["/camera/color/image_raw"] == int(duration * cfg.fps)
    assert counts["/audio/audio"] == int(duration * cfg.sample_rate) // cfg.chunk
    assert counts["/avag/ground_truth"] == len(scenes)
    assert log_times == sorted(log_times)

    msgs = read_topics(bag)
    # images come back pixel-exact up to the +-2 sensor noise, with their masks' truth
    first = image_to_numpy(msgs["/camera/color/image_raw"][0][1]).astype(int)
    assert np.abs(first - scenes[0].rgb.astype(int)).max() <= 2
    gt = msgs["/avag/ground_truth"][0][1]
    assert np.array_equal(image_to_numpy(gt.function_mask) > 0, scenes[0].function_mask)
    assert gt.action_label == scenes[0].category
    assert stamp_to_ns(gt.event_start) == BAG_START_NS + round(cfg.sound_at_s * 1e9)
    # audio: 32 ms frames stamped at their first sample, contiguous, the sound where the truth says
    frames = [m for _t, m in msgs["/audio/audio"]]
    stamps = np.array([stamp_to_ns(f.header.stamp) for f in frames])
    assert set(np.diff(stamps)) == {32_000_000}
    audio = np.concatenate([audio_frame_to_numpy(f)[0][0] for f in frames])
    onset = (stamp_to_ns(gt.event_start) - BAG_START_NS) * 16000 // 10**9
    assert np.abs(audio[onset : onset + 8000]).max() > 20 * np.abs(audio[: onset - 1600]).max()
    # depth is plausible: object nearer than the background
    depth = image_to_numpy(msgs["/camera/aligned_depth_to_color/image_raw"][0][1])
    obj = scenes[0].function_mask | scenes[0].dependency_mask
    assert depth[obj].mean() < depth[~obj].mean()
    assert info["events_ns"][0][0] == stamp_to_ns(gt.event_start)


def _scored(onset_s: float, prob: np.ndarray):
    from avag_ros.bag.report import Scored

    ns = round(onset_s * 1e9)
    return Scored(ns, ns - 100_000_000, ns + 500_000_000, ns, prob, prob * 0, prob > 0.5, prob > 2, None, 10.0)


def _truth(start_s: float, end_s: float, mask: np.ndarray, category: str = "a/b"):
    from avag_ros.bag.report import Truth

    return Truth(round(start_s * 1e9), round(end_s * 1e9), category, mask, np.zeros_like(mask))


def test_event_matching_precision_recall_by_hand():
    from avag_ros.bag.report import score

    mask = np.zeros((4, 4), bool)
    mask[:2] = True  # 8 pixels
    half = np.zeros((4, 4), np.float32)
    half[:1] = 1.0  # predicts 4 of the 8
    truth = [_truth(1.0, 2.0, mask), _truth(5.0, 6.0, mask), _truth(9.0, 9.5, mask)]
    dets = [
        _scored(1.05, mask.astype(np.float32)),  # event 0, perfect
        _scored(1.5, mask.astype(np.float32)),  # a second detection of event 0: false positive
        _scored(5.2, half),  # event 1, IoU 0.5
        _scored(7.5, half),  # nothing there: false positive
    ]  # event 2 missed
    r = score(dets, truth)
    assert r["events"]["matched"] == 2
    assert r["events"]["precision"] == pytest.approx(2 / 4)
    assert r["events"]["recall"] == pytest.approx(2 / 3)
    assert r["segmentation"]["miou_function"] == pytest.approx((1.0 + 0.5) / 2)
    # F at the best threshold for the half prediction: P=1, R=0.5 -> 1.3*0.5/(0.3+0.5)
    assert r["segmentation"]["fscore_function"] == pytest.approx((1.0 + 1.3 * 0.5 / 0.8) / 2)
    # empty dependency truth: dependency metrics count no sample
    assert r["segmentation"]["num_dependency"] == 0


def test_offline_report_on_tiny_bag(small_bag, shipped_checkpoint, tmp_path):
    bag, scenes, _ = small_bag
    res = _avag("bag", "eval", str(bag), "--checkpoint", str(shipped_checkpoint), "--out", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    import json

    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    ev = summary["offline"]["events"]
    assert ev["ground_truth"] == len(scenes) and ev["detections"] == len(scenes) and ev["recall"] == 1.0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert html.count("<img src='overlays/event_") == len(scenes)
    assert len(list((tmp_path / "rep" / "overlays").glob("*.png"))) == len(scenes)
    plys = sorted((tmp_path / "rep" / "grasp_regions").glob("*.ply"))
    assert len(plys) == len(scenes)  # the bag has depth: a grasp region for every event
    for ply in plys:
        head, _, body = ply.read_bytes().partition(b"end_header\n")
        n = int(head.split(b"element vertex ")[1].split(b"\n")[0])
        assert len(body) == n * 19  # 3 float + 3 uchar + 1 float
        xyz = np.frombuffer(body, np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3), ("p", "<f4")]))["xyz"]
        assert np.isfinite(xyz).all() and (xyz[:, 2] > 0).all()
    assert "offline" in res.stdout and "report:" in res.stdout


def test_bad_bags_fail_with_one_line_errors(small_bag, tmp_path, shipped_checkpoint):
    from rosbags.rosbag2 import Writer

    from avag_ros.bag.typestore import avag_typestore

    bag, _scenes, _ = small_bag
    ck = ["--checkpoint", str(shipped_checkpoint), "--out", str(tmp_path / "r")]

    missing = _avag("bag", "eval", str(tmp_path / "nope"), *ck)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    # a bag without camera topics
    audio_only = tmp_path / "audio_only"
    w = Writer(audio_only, version=9)
    w.open()
    w.add_connection("/audio/audio", "avag/msg/AudioFrame", typestore=avag_typestore())
    w.close()
    res = _avag("bag", "eval", str(audio_only), *ck)
    assert res.returncode == 2 and "/camera/color/image_raw" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

    # truncated: the same mcap cut in half
    cut = tmp_path / "cut"
    cut.mkdir()
    src = next(bag.glob("*.mcap"))
    (cut / src.name).write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    (cut / "metadata.yaml").write_bytes((bag / "metadata.yaml").read_bytes())
    res = _avag("bag", "eval", str(cut), *ck)
    assert res.returncode == 2 and ("truncated" in res.stderr or "cannot read" in res.stderr), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

    # a message type nobody has installed
    unknown = tmp_path / "unknown"
    store = avag_typestore()
    from rosbags.typesys import get_types_from_msg

    store.register(get_types_from_msg("int32 x", "mystery_msgs/msg/Thing"))
    w = Writer(unknown, version=9)
    w.open()
    w.add_connection("/camera/color/image_raw", "mystery_msgs/msg/Thing", typestore=store)
    w.close()
    res = _avag("bag", "eval", str(unknown), *ck)
    assert res.returncode == 2 and "mystery_msgs/msg/Thing" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_message_of_another_definition_fails_with_its_topic_named(tmp_path):
    """A detection recorded before ``event_onset`` existed (8 bytes fewer after
    ``event_end``) does not decode: the error names the topic and the likely cause."""
    import struct

    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer

    from avag.msg import AffordanceDetection
    from avag_core.errors import AvagError
    from avag_ros.bag.evaluate import read_topics
    from avag_ros.bag.typestore import avag_typestore

    msg = AffordanceDetection()
    msg.header.frame_id, msg.action_label = "camera_color_optical_frame", "kettle/pour"
    msg.event_onset.sec = 777777
    raw = serialize_message(msg)
    at = raw.index(struct.pack("<i", 777777))
    old = tmp_path / "old"
    w = Writer(old, version=9)
    w.open()
    conn = w.add_connection("/avag/ground_truth", "avag/msg/AffordanceDetection", typestore=avag_typestore())
    w.write(conn, 1, raw[:at] + raw[at + 8 :])
    w.close()
    with pytest.raises(AvagError) as err:
        read_topics(old)
    text = str(err.value)
    assert "/avag/ground_truth" in text and "another avag version" in text and "\n" not in text


def test_live_scoring_of_node_messages_equals_offline_scoring(small_bag, shipped_checkpoint):
    """`avag bag eval --live` scores what the node publishes (detection, ~/function_prob,
    ~/dependency_prob): built with the node's own converters and serialized as a recorder
    stores them, the live path must give the offline numbers exactly."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from avag.msg import AffordanceDetection
    from avag_core.predictor import Predictor
    from avag_ros.bag.evaluate import (
        NODE,
        compare,
        read_topics,
        scored_from_detection,
        scored_from_live,
    )
    from avag_ros.bag.replay import replay_offline
    from avag_ros.bag.report import score, truth_from_msgs
    from avag_ros.outputs import detection_to_msg, mask_image, probability_image
    from avag_ros.params import NodeConfig

    bag, scenes, _ = small_bag
    cfg = NodeConfig()
    offline = replay_offline(bag, Predictor.from_checkpoint(shipped_checkpoint), cfg)
    assert len(offline.detections) == len(scenes)

    def stored(msg):  # what a recorder writes and `read_topics` gives back
        return deserialize_message(serialize_message(msg), type(msg))

    recorded: dict[str, list] = {}
    for det in offline.detections:
        h = det.frame_header
        fmask, dmask = mask_image(det.function_mask, h), mask_image(det.dependency_mask, h)
        for topic, msg in ((f"{NODE}/detection", detection_to_msg(det, h, fmask, dmask)),
                           (f"{NODE}/function_prob", probability_image(det.function_prob, h)),
                           (f"{NODE}/dependency_prob", probability_image(det.dependency_prob, h))):
            recorded.setdefault(topic, []).append((0, stored(msg)))
    assert isinstance(recorded[f"{NODE}/detection"][0][1], AffordanceDetection)
    assert isinstance(recorded[f"{NODE}/dependency_prob"][0][1], Image)

    frames = {}
    live = scored_from_live(recorded, frames)
    ref = [scored_from_detection(d) for d in offline.detections]
    assert [s.onset_ns for s in live] == [s.onset_ns for s in ref]  # the published onset, not a guess
    truth = truth_from_msgs([m for _t, m in read_topics(bag, {"/avag/ground_truth"})["/avag/ground_truth"]])
    a, b = score(live, truth)["segmentation"], score(ref, truth)["segmentation"]
    assert set(a) == set(b) and {"miou_function", "fscore_dependency"} <= set(a), a
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    cmp = compare(live, ref)
    assert cmp["same_events"] and cmp["same_frames"] == len(scenes) and cmp["mask_iou_min"] == 1.0


@pytest.mark.slow
def test_live_eval_plays_the_bag_into_a_real_node(small_bag, shipped_checkpoint, tmp_path, ros_env):
    """`avag bag eval --live`: player and node processes over DDS, then the same report as
    offline; the command itself fails unless live agrees with offline."""
    import json

    bag, scenes, _ = small_bag
    res = subprocess.run([sys.executable, "-m", "avag_core.cli.main", "bag", "eval", str(bag), "--checkpoint",
                          str(shipped_checkpoint), "--live", "--out", str(tmp_path / "rep")],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=ros_env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    live, cmp = summary["live"], summary["live_vs_offline"]
    assert summary["failures"] == []
    assert live["events"]["ground_truth"] == live["events"]["detections"] == len(scenes)
    assert live["events"]["precision"] == live["events"]["recall"] == 1.0
    assert cmp["same_events"] and cmp["mask_iou_min"] >= 0.95 and cmp["missing_clouds"] == 0
    assert (tmp_path / "rep" / "live" / "node_outputs").is_dir()
    assert "live vs offline" in res.stdout
    assert len(list((tmp_path / "rep" / "grasp_regions").glob("*.ply"))) == len(scenes)


def test_live_eval_stops_with_the_nodes_reason_when_it_cannot_start(small_bag, tmp_path, ros_env):
    """A checkpoint the node cannot read: the node stays up unconfigured and says why on
    /diagnostics; the live eval must stop there with that reason (not wait for a node that
    will never subscribe)."""
    bag, _, _ = small_bag
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    res = subprocess.run([sys.executable, "-m", "avag_core.cli.main", "bag", "eval", str(bag), "--checkpoint",
                          str(junk), "--live", "--out", str(tmp_path / "rep")],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=ros_env)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, res.stderr[-2000:]
    assert "avag_node did not start: configure failed" in errors[0]
    assert "junk.safetensors is not a readable safetensors file" in errors[0]


def test_eval_fails_with_a_reason_when_depth_gives_no_grasp_region(small_bag, shipped_checkpoint, tmp_path):
    """max_depth_m below every depth in the bag: depth exists but no point survives, which
    is a broken robot path, so `avag bag eval` (node parameters via --set) exits 1."""
    bag, scenes, _ = small_bag
    res = _avag("bag", "eval", str(bag), "--checkpoint", str(shipped_checkpoint), "--out", str(tmp_path / "rep"),
                "--set", "max_depth_m=0.01")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"offline: {len(scenes)} detection(s) with depth but no grasp-region points" in res.stderr


def test_eval_reads_the_node_params_file(small_bag, shipped_checkpoint, tmp_path):
    """The same parameters file a robot uses: keyed /** and with a threshold of 1.0 (no
    pixel passes), so masks are empty and no cloud is due; a bad value is one line."""
    bag, scenes, _ = small_bag
    params = tmp_path / "robot.yaml"
    params.write_text("/**:\n  ros__parameters:\n    function_threshold: 1.0\n")
    res = _avag("bag", "eval", str(bag), "--checkpoint", str(shipped_checkpoint), "--out", str(tmp_path / "rep"),
                "--params-file", str(params))
    assert res.returncode == 0, res.stderr
    import json

    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["offline"]["events"]["detections"] == len(scenes)
    assert summary["offline"]["missing_clouds"] == 0
    assert not list((tmp_path / "rep" / "grasp_regions").glob("*.ply"))
    params.write_text("/**:\n  ros__parameters:\n    function_threshold: 1.7\n")
    res = _avag("bag", "eval", str(bag), "--out", str(tmp_path / "rep2"), "--params-file", str(params))
    assert res.returncode != 0 and "function_threshold" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_judge_names_each_way_a_live_run_can_fail():
    from avag_ros.bag.evaluate import judge

    ok = {"offline": {"missing_clouds": 0},
          "live_vs_offline": {"live_events": 3, "offline_events": 3, "matched_events": 3,
                              "mask_iou_min": 1.0, "missing_clouds": 0}}
    assert judge(ok) == []
    missed = {**ok, "live_vs_offline": {**ok["live_vs_offline"], "live_events": 2, "matched_events": 2}}
    assert judge(missed) == ["live missed 1 of 3 events the offline replay detected"]
    extra = {**ok, "live_vs_offline": {**ok["live_vs_offline"], "live_events": 4}}
    assert judge(extra) == ["live detected 1 event(s) the offline replay did not"]
    differ = {**ok, "live_vs_offline": {**ok["live_vs_offline"], "mask_iou_min": 0.5}}
    assert "disagree" in judge(differ)[0]
    no_cloud = {**ok, "live_vs_offline": {**ok["live_vs_offline"], "missing_clouds": 2}}
    assert judge(no_cloud) == ["live: 2 detection(s) without the grasp region the offline replay has"]


def test_an_event_cut_by_the_bags_end_is_offline_only(tmp_path, shipped_checkpoint):
    """The offline replay closes the sound still going on when the bag ends; a live node
    never sees the stream end, so live-vs-offline leaves that event out."""
    from avag_core.data.synth import generate
    from avag_core.predictor import Predictor
    from avag_ros.bag.replay import replay_offline
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    scenes = load_scenes(generate(tmp_path / "data", seed=5, size="tiny"), "val", limit=2)
    cfg = SynthBagConfig(seed=5, scene_s=2.5, sound_at_s=0.8, max_sound_s=1.0, tail_s=0.0)
    write_synth_bag(scenes, tmp_path / "bag", cfg)
    r = replay_offline(tmp_path / "bag", Predictor.from_checkpoint(shipped_checkpoint))
    heard = [*r.detections, *r.rejected]
    assert len(heard) == 2 and len(r.ended_by_bag_end) == 1
    last = max(heard, key=lambda d: d.event.onset_time)
    assert last.event in r.ended_by_bag_end
    dets, rejected = r.live_comparable()
    assert [d.event for d in [*dets, *rejected]] == [d.event for d in heard if d is not last]


def test_live_and_offline_events_pair_by_their_start_not_a_guessed_onset():
    """Events pair by their start: a re-timed event (a louder onset inside an event a
    background sound began) keeps its start while its onset moves."""
    from dataclasses import replace

    from avag_ros.bag.evaluate import compare

    mask = np.ones((4, 4), np.float32)
    offline = [_scored(1.0, mask), _scored(4.0, mask)]
    live = [replace(offline[0], onset_ns=offline[0].onset_ns - 300_000_000), offline[1]]
    cmp = compare(live, offline)
    assert cmp["same_events"] and cmp["matched_events"] == 2
    moved = [replace(offline[0], start_ns=offline[0].start_ns + 300_000_000), offline[1]]
    assert compare(moved, offline)["matched_events"] == 1


def test_sounds_that_are_not_actions_are_scored_apart_by_hand():
    """Distractor truths (``none/<kind>``) never count as missed actions; a detection at
    one is a false positive and counts as given masks; a rejection at an action is lost,
    unless another event of that action got masks (a second onset inside it)."""
    from avag_ros.bag.report import score

    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    empty = np.zeros((4, 4), bool)
    truth = [_truth(1.0, 2.0, mask), _truth(3.0, 3.5, empty, "none/cough"),
             _truth(5.0, 6.0, mask), _truth(7.0, 7.5, empty, "none/speech"),
             _truth(9.0, 9.5, empty, "none/music")]
    dets = [_scored(1.05, mask.astype(np.float32)), _scored(7.1, mask.astype(np.float32))]
    # cough, a second onset inside the named action at 1 s, the action at 5 s, nothing
    rejected = [round(3.02e9), round(1.4e9), round(5.01e9), round(11.0e9)]
    r = score(dets, truth, rejected_ns=rejected)
    assert r["events"]["ground_truth"] == 2 and r["events"]["matched"] == 1
    assert r["events"]["precision"] == pytest.approx(1 / 2)
    assert r["heard"] == {"distractors": 3, "given_masks": 1, "rejected": 1, "not_heard": 1,
                          "actions_rejected": 1}
    # a bag without distractors: nothing to report, the action scores unchanged
    plain = score(dets[:1], truth[:1])
    assert plain["heard"]["distractors"] == 0 and plain["events"]["recall"] == 1.0


def test_offline_replay_labels_actions_and_rejects_below_the_threshold(small_bag, shipped_checkpoint):
    """With the action head on, each detection carries the heard action's name and
    confidence; with a threshold of 1.0 every sound is rejected: no masks, listed apart."""
    from avag_core.predictor import Predictor
    from avag_ros.bag.replay import replay_offline
    from avag_ros.param_files import node_config

    bag, scenes, _ = small_bag
    predictor = Predictor.from_checkpoint(shipped_checkpoint)
    labelled = replay_offline(bag, predictor, node_config(overrides=["recognize_actions=true",
                                                                     "rejection_threshold=0.0"]))
    classes = {"cut", "hit", "open", "pour", "press", "roll", "twist", "zip", "none"}
    assert len(labelled.detections) + len(labelled.rejected) == len(scenes)
    for det in labelled.detections:
        assert det.action_label in classes - {"none"} and 0.0 < det.action_confidence <= 1.0
    strict = replay_offline(bag, predictor, node_config(overrides=["recognize_actions=true",
                                                                   "rejection_threshold=1.0"]))
    assert strict.detections == [] and len(strict.rejected) == len(scenes)
    assert all(r.heard.top and r.heard.top[0][0] == r.heard.label for r in strict.rejected)
    assert strict.diagnostics["input.rejected_events"] == len(scenes)
