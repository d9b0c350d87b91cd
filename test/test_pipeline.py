"""GroundingPipeline (shared by the node and offline replay): which frame an event uses."""

from __future__ import annotations

import numpy as np
import pytest

from avag_core.events import EventConfig
from avag_core.pipeline import GroundingPipeline

RATE, CHUNK, FPS = 16000, 512, 30
T0 = 1_700_000_000 * 10**9


@pytest.fixture(scope="module")
def predictor(shipped_checkpoint):
    from avag_core.predictor import Predictor

    return Predictor.from_checkpoint(shipped_checkpoint, device="cpu")


def _feed(pipe: GroundingPipeline, seconds: float, loud: tuple[float, float], frames_until: float | None = None,
          more_loud: tuple[tuple[float, float], ...] = ()):
    """Interleave 30 fps frames (each frame's pixel value encodes its index) and audio
    chunks in stamp order; audio is quiet noise with a loud burst over ``loud`` (and
    over each span of ``more_loud``)."""
    rng = np.random.default_rng(0)
    events = []
    n_chunks = int(seconds * RATE / CHUNK)
    next_frame = 0
    for k in range(n_chunks):
        t = k * CHUNK / RATE
        while next_frame / FPS <= t and (frames_until is None or next_frame / FPS < frames_until):
            frame = np.full((48, 64, 3), next_frame % 256, np.uint8)
            pipe.push_frame(T0 + round(next_frame / FPS * 1e9), frame)
            next_frame += 1
        x = rng.normal(0, 10 ** (-50 / 20), CHUNK)
        if any(a <= t < b for a, b in (loud, *more_loud)):
            x = x + rng.normal(0, 0.3, CHUNK)
        events += pipe.push_audio(x.astype(np.float32), T0 + round(t * 1e9), RATE)
    return events


def test_long_event_uses_the_pinned_onset_frame_after_the_cache_moved_on(predictor):
    cfg = EventConfig(frame_cache_size=10)  # 0.33 s of frames: far shorter than the event
    pipe = GroundingPipeline(predictor, cfg)
    events = _feed(pipe, 6.0, loud=(2.0, 4.5))
    assert len(events) == 1
    onset_ns = round(events[0].onset_time * 1e9) - T0
    oldest_held = pipe.frames.nearest(0)[0] - T0  # nearest to time 0: the oldest frame held
    assert oldest_held > onset_ns + 10**9  # the onset frame left the bounded cache long ago
    det = pipe.run(events[0])
    assert det is not None
    # the frame nearest the onset (not the nearest one still in the cache)
    assert abs((det.frame_stamp_ns - T0) - onset_ns) <= 10**9 / FPS / 2 + 1
    assert det.rgb[0, 0, 0] == round((det.frame_stamp_ns - T0) / 1e9 * FPS) % 256
    assert det.function_prob.shape == (48, 64)
    assert pipe.stats.detections == 1 and pipe.stats.no_frame == 0


def test_an_event_keeps_its_onset_frame_when_the_next_onset_comes_before_its_inference(predictor):
    """A node runs an event after its release; by then the next sound may have started
    (often in the very chunk the first event ends in). Both keep their own onset frame."""
    pipe = GroundingPipeline(predictor, EventConfig(frame_cache_size=10))  # 0.33 s of frames
    events = _feed(pipe, 7.0, loud=(2.0, 2.6), more_loud=((3.5, 4.5),))
    assert len(events) == 2
    assert pipe.tracker.detector.active_onset is None
    for event in events:  # run late, in order, like a busy worker
        det = pipe.run(event)
        assert det is not None
        assert abs(det.frame_stamp_ns - round(event.onset_time * 1e9)) <= 10**9 / FPS / 2 + 1
    assert pipe.stats.no_frame == 0


def test_event_without_a_frame_near_its_onset_is_counted_and_explained(predictor):
    pipe = GroundingPipeline(predictor, EventConfig())
    events = _feed(pipe, 6.0, loud=(3.0, 4.0), frames_until=1.5)  # the camera stopped at 1.5 s
    assert len(events) == 1
    assert pipe.run(events[0]) is None
    assert pipe.stats.no_frame == 1 and pipe.stats.detections == 0
    assert "nearest of" in pipe.last_miss and "limit 0.2 s" in pipe.last_miss
    gap = float(pipe.last_miss.split(" is ")[1].split(" s away")[0])
    assert gap == pytest.approx(-(events[0].onset_time - T0 / 1e9 - 44 / FPS), abs=0.02)


def test_a_reloaded_predictor_encodes_the_frame_again(predictor, shipped_checkpoint):
    """The node drops its predictor on deactivate (GPU) and loads a new one on activate:
    the pipeline must not assume the new one still holds the last encoded frame."""
    from avag_core.predictor import Predictor

    pipe = GroundingPipeline(predictor, EventConfig())
    events = _feed(pipe, 6.0, loud=(2.0, 3.0))
    first = pipe.run(events[0])
    pipe.predictor = Predictor.from_checkpoint(shipped_checkpoint, device="cpu")
    again = pipe.run(events[0])  # same event, same frame, fresh predictor
    assert again is not None and again.frame_stamp_ns == first.frame_stamp_ns
    np.testing.assert_allclose(again.function_prob, first.function_prob, atol=1e-6)


def _feed_with_depth(pipe: GroundingPipeline, seconds: float, loud: tuple[float, float], depth_m: float = 0.8):
    """Like ``_feed`` with a depth image (constant ``depth_m``, float metres) after every
    frame and the intrinsics of a 64x48 camera given once at the start."""
    K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    pipe.set_intrinsics(K, (64, 48))
    rng = np.random.default_rng(0)
    events, next_frame = [], 0
    for k in range(int(seconds * RATE / CHUNK)):
        t = k * CHUNK / RATE
        while next_frame / FPS <= t:
            stamp = T0 + round(next_frame / FPS * 1e9)
            pipe.push_frame(stamp, np.full((48, 64, 3), next_frame % 256, np.uint8))
            pipe.push_depth(stamp + 3_000_000, np.full((48, 64), depth_m, np.float32))
            next_frame += 1
        x = rng.normal(0, 10 ** (-50 / 20), CHUNK)
        if loud[0] <= t < loud[1]:
            x = x + rng.normal(0, 0.3, CHUNK)
        events += pipe.push_audio(x.astype(np.float32), T0 + round(t * 1e9), RATE)
    return events, K


def test_depth_and_intrinsics_are_pinned_at_the_onset_for_a_late_inference(predictor):
    """A live node runs the model after the event's release, when the depth cache no longer
    holds the onset's depth: the depth pinned at the onset gives the grasp region, and its
    points project back inside the function mask."""
    from avag_core.pipeline import Thresholds

    pipe = GroundingPipeline(predictor, EventConfig(), depth_cache_size=5,  # 0.17 s of depth
                             thresholds=Thresholds(function=0.0, min_mask_pixels=1))
    events, K = _feed_with_depth(pipe, 6.0, loud=(2.0, 3.5))
    assert len(events) == 1
    onset_ns = round(events[0].onset_time * 1e9)
    assert pipe.depths.nearest(onset_ns, 0.1) is None  # the cache has moved on
    det = pipe.run(events[0])
    assert det is not None and det.has_depth
    pts = det.geometry.points
    assert pts.shape[0] == det.function_mask.sum() > 0
    np.testing.assert_allclose(pts[:, 2], 0.8, rtol=1e-6)
    uv = (K @ (pts / pts[:, 2:3]).T).T[:, :2]
    u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    assert det.function_mask[v, u].all()
    assert det.geometry.pose is not None and pipe.stats.depth_missing == 0


def test_a_failing_grasp_region_keeps_the_masks(predictor):
    from avag_core.pipeline import Thresholds

    def bad_depth(_d):
        raise ValueError("depth image is corrupt")

    pipe = GroundingPipeline(predictor, EventConfig(), decode_depth=bad_depth,
                             thresholds=Thresholds(function=0.0, min_mask_pixels=1))
    events, _ = _feed_with_depth(pipe, 6.0, loud=(2.0, 3.0))
    det = pipe.run(events[0])
    assert det is not None and det.function_mask.all()  # threshold 0: every pixel
    assert det.geometry.points.shape[0] == 0 and det.geometry.pose is None
    assert pipe.stats.geometry_errors == 1 and "corrupt" in pipe.last_geometry_error


def test_nonfinite_model_output_is_refused_and_counted(shipped_checkpoint):
    import torch

    from avag_core.pipeline import NonFiniteOutputError
    from avag_core.predictor import Predictor

    broken = Predictor.from_checkpoint(shipped_checkpoint, device="cpu")
    with torch.no_grad():
        next(p for n, p in broken.model.named_parameters() if "head" in n or "decoder" in n).fill_(float("nan"))
    pipe = GroundingPipeline(broken, EventConfig())
    events = _feed(pipe, 6.0, loud=(2.0, 3.0))
    with pytest.raises(NonFiniteOutputError):
        pipe.run(events[0])
    assert pipe.stats.nonfinite_outputs == 1 and pipe.stats.detections == 0
