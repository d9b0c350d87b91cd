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


def _feed(pipe: GroundingPipeline, seconds: float, loud: tuple[float, float], frames_until: float | None = None):
    """Interleave 30 fps frames (each frame's pixel value encodes its index) and audio
    chunks in stamp order; audio is quiet noise with a loud burst over ``loud``."""
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
        if loud[0] <= t < loud[1]:
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
