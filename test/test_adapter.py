"""GroundingAdapter: the one place ROS messages meet the pipeline (node, offline and live
bag replay). Validation, per-kind logging, parameter changes and diagnostics keys."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import needs_ros

pytestmark = needs_ros


@pytest.fixture
def adapter(shipped_checkpoint):
    from avag_ros.adapter import GroundingAdapter, load_predictor
    from avag_ros.params import NodeConfig

    cfg = NodeConfig(checkpoint=str(shipped_checkpoint))
    logged: list[str] = []
    a = GroundingAdapter(cfg, load_predictor(cfg), logged.append)
    a.logged = logged
    return a


def _image(encoding: str, w: int = 8, h: int = 6, stamp_ns: int = 10**9):
    from avag_ros.conversions import IMAGE_ENCODINGS, make_header, numpy_to_image

    dtype, ch = IMAGE_ENCODINGS[encoding]
    arr = np.zeros((h, w, ch) if ch > 1 else (h, w), dtype)
    return numpy_to_image(arr, encoding, make_header(stamp_ns))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3", "8UC1"])
def test_every_listed_colour_encoding_is_accepted_and_decodes(adapter, encoding):
    from avag_ros.adapter import COLOR_ENCODINGS, decode_frame

    assert encoding in COLOR_ENCODINGS
    msg = _image(encoding)
    assert adapter.on_image(msg)
    rgb = decode_frame(msg)
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8


def test_bad_inputs_are_refused_by_kind_and_each_kind_logged_once(adapter):
    from sensor_msgs.msg import CameraInfo, Image

    from avag_ros.conversions import make_header

    for _ in range(3):
        assert not adapter.on_image(Image(header=make_header(1), height=0, width=0, encoding="rgb8"))
        assert not adapter.on_image(_image("32FC1"))
    assert not adapter.on_depth(_image("rgb8"))
    info = CameraInfo(width=0, height=0)
    info.k = [500.0, 0, 4, 0, 500.0, 3, 0, 0, 1]
    assert not adapter.on_camera_info(info)
    info.width, info.height = 8, 6
    info.k[0] = float("inf")
    assert not adapter.on_camera_info(info)
    info.k[0] = 500.0
    assert adapter.on_camera_info(info)
    assert not adapter.on_camera_info(CameraInfo(width=8, height=6))  # K all zero: not calibrated
    c = adapter.counters
    assert c["bad_image"] == 6 and c["bad_image.zero_size"] == 3 and c["bad_image.encoding"] == 3
    assert c["bad_depth.encoding"] == 1
    assert c["bad_camera_info.zero_size"] == 1 and c["bad_camera_info.nonfinite"] == 1
    assert c["bad_camera_info.uncalibrated"] == 1
    # one line per kind, with its reason; repeats of a kind are suppressed (throttled)
    kinds = [line.split(":")[0] for line in adapter.logged]
    assert sorted(kinds) == sorted(["bad_image.zero_size", "bad_image.encoding", "bad_depth.encoding",
                                    "bad_camera_info.zero_size", "bad_camera_info.nonfinite",
                                    "bad_camera_info.uncalibrated"])
    assert any("zero-size image (0x0)" in line for line in adapter.logged)
    assert any("not calibrated" in line for line in adapter.logged)


def test_oversized_messages_are_refused_before_decoding(adapter):
    adapter.cfg.max_image_mb = 0.0001  # 100 bytes
    assert not adapter.on_image(_image("rgb8", 16, 16))
    assert adapter.counters["bad_image.too_large"] == 1
    assert "exceeds max_image_mb" in adapter.logged[-1]


def test_throttled_log_reports_what_it_suppressed():
    from avag_ros.adapter import KindThrottledLog

    lines: list[str] = []
    log = KindThrottledLog(lines.append, period_s=0.0)
    log("a", "first")
    log("a", "second")
    assert lines == ["a: first", "a: second"]
    lines.clear()
    slow = KindThrottledLog(lines.append, period_s=3600.0)
    for _ in range(5):
        slow("a", "x")
    slow("b", "y")
    assert lines == ["a: x", "b: y"]
    slow._last["a"] = -1e9  # the period has passed
    slow("a", "z")
    assert lines[-1] == "a: z (4 more since the last report)"


def test_parameter_changes_live_refused_or_deferred(adapter):
    ok, reason = adapter.set_params({"function_threshold": 0.7})
    assert ok and reason == "" and adapter.pipeline.thresholds.function == 0.7
    ok, reason = adapter.set_params({"function_threshold": 1.7})
    assert not ok and "function_threshold" in reason and adapter.pipeline.thresholds.function == 0.7
    ok, reason = adapter.set_params({"image_topic": "/other"})
    assert ok and "image_topic" in reason and "next configure" in reason
    assert adapter.cfg.image_topic != "/other"  # applies at the next configure only


def test_rejection_threshold_defaults_to_the_heads_own_and_changes_live(shipped_checkpoint):
    """-1 (the default) = the threshold calibrated into the head file; a value in [0, 1]
    overrides it, live, and -1 brings the head's back."""
    from avag_ros.adapter import GroundingAdapter, load_predictor, load_recognizer
    from avag_ros.params import NodeConfig

    cfg = NodeConfig(checkpoint=str(shipped_checkpoint))
    assert cfg.recognize_actions and cfg.rejection_threshold == -1.0
    rec = load_recognizer(cfg)
    own = rec.hf.threshold
    assert 0.0 < own < 1.0 and rec.threshold == own
    adapter = GroundingAdapter(cfg, load_predictor(cfg), print, rec)
    assert adapter.set_params({"rejection_threshold": 0.2})[0] and rec.threshold == 0.2
    assert adapter.set_params({"rejection_threshold": -1.0})[0] and rec.threshold == own
    ok, reason = adapter.set_params({"rejection_threshold": -2.0})
    assert not ok and "rejection_threshold" in reason and rec.threshold == own


def test_diagnostics_keys_never_collide(adapter):
    from avag_ros.conversions import make_header, numpy_to_audio_frame

    adapter.on_audio(numpy_to_audio_frame(np.zeros(512, np.float32), 16000, header=make_header(10**9)))
    values = adapter.diagnostics()
    assert values["input.audio_messages"] == 1 and values["audio_buffer.chunks"] == 1
    prefixes = {k.split(".")[0] for k in values}
    assert prefixes <= {"input", "pipeline", "audio_buffer", "model", "detector"}


@pytest.mark.parametrize("min_event_s", [0.03, 2.0])
def test_diagnostics_count_the_events_started_and_those_dropped_as_too_short(shipped_checkpoint, min_event_s):
    """Four committed action clips 3 s apart over quiet noise: four events start; with a least
    event of 2 s (no clip sounds that long) every one of them is dropped, and counted."""
    from audio_clips import ACTIONS, load

    from avag_core.events import EventConfig
    from avag_ros.adapter import GroundingAdapter, load_predictor
    from avag_ros.conversions import make_header, numpy_to_audio_frame
    from avag_ros.params import NodeConfig

    cfg = NodeConfig(checkpoint=str(shipped_checkpoint), events=EventConfig(min_event_s=min_event_s))
    adapter = GroundingAdapter(cfg, load_predictor(cfg), lambda _: None)
    x = 0.001 * np.random.default_rng(0).standard_normal(16000 * 14).astype(np.float32)
    for k, name in enumerate(ACTIONS):
        clip = load(f"action_{name}")[:16000]
        x[(2 + 3 * k) * 16000:(2 + 3 * k) * 16000 + clip.size] += 0.3 * clip / np.abs(clip).max()
    for i in range(0, x.size, 512):
        adapter.on_audio(numpy_to_audio_frame(x[i:i + 512], 16000, header=make_header(10**9 + i * 10**9 // 16000)))
    values = adapter.diagnostics()
    assert values["detector.events_started"] == len(ACTIONS)
    assert values["detector.dropped_short"] == (len(ACTIONS) if min_event_s > 1 else 0)
    assert values["detector.dropped_busy"] == 0 and values["detector.room_pops"] is False
