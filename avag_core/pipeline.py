"""Sound events -> camera frame -> AVAGFormer -> masks and grasp region, without ROS.

The perception node and the offline rosbag evaluation both run this class, so a bag
replayed offline and the live node detect the same events and produce the same masks.
Inputs are pushed as they arrive (audio chunks, frames, depth, intrinsics); every sound
event yields one ``Detection`` from the frame nearest the event onset.

Frames are stored as given (e.g. undecoded ROS messages) and decoded only for the one
frame an event uses; ``decode_frame``/``decode_depth`` turn them into arrays.

Everything an event needs (camera frame, the depth image nearest that frame, the
intrinsics) is taken when its onset is seen and kept until its inference runs: a live
node runs the model after the event's release, by which time the bounded caches have
moved on, while an offline replay runs it at once. Pinning makes both use the same inputs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avag_core.events import AudioEventTracker, EventConfig, FrameCache, SoundEvent
from avag_core.geometry import RegionGeometry, image_centroid, region_geometry, scale_intrinsics

_MAX_PINS = 8  # onsets whose inputs stay pinned (each a camera frame + depth image)


@dataclass
class Thresholds:
    function: float = 0.5
    dependency: float = 0.5
    min_mask_pixels: int = 20
    voxel_size: float = 0.0
    max_depth_m: float = 5.0


@dataclass
class Detection:
    """One grounding result; times are int nanoseconds on the input clock."""

    event: SoundEvent
    frame_stamp_ns: int
    frame_header: Any  # whatever the frame source carries (ROS header for the node)
    rgb: np.ndarray  # the analysed frame, H x W x 3 uint8
    function_prob: np.ndarray  # H x W float32
    dependency_prob: np.ndarray
    function_mask: np.ndarray  # H x W bool
    dependency_mask: np.ndarray
    geometry: RegionGeometry
    inference_ms: float
    decided_ns: int = 0  # audio time at which the event was known to be over
    timings: dict[str, float] = field(default_factory=dict)
    has_depth: bool = False  # depth and intrinsics were there for the frame (a cloud is due)
    action_label: str = ""  # the action heard (empty without an action head)
    action_confidence: float = 0.0  # its calibrated probability

    @property
    def function_score(self) -> float:
        return float(self.function_prob[self.function_mask].mean()) if self.function_mask.any() else 0.0

    @property
    def dependency_score(self) -> float:
        m = self.dependency_mask
        return float(self.dependency_prob[m].mean()) if m.any() else 0.0


@dataclass
class PipelineStats:
    """Counters over the pipeline's life (a new pipeline starts at zero)."""

    events: int = 0
    detections: int = 0
    no_frame: int = 0  # event with no camera frame near its onset
    depth_missing: int = 0  # detection with no depth image near its frame
    geometry_errors: int = 0  # masks published without a grasp region (bad intrinsics/depth)
    nonfinite_outputs: int = 0  # model output with NaN/Inf: nothing published


class NonFiniteOutputError(ValueError):
    """The model produced NaN/Inf probabilities (NaN weights, overflowing input)."""


@dataclass
class PinnedInputs:
    """What the event in progress will be grounded on, fixed at its onset."""

    stamp_ns: int
    frame: Any
    header: Any
    depth: tuple[int, Any] | None = None  # (stamp_ns, depth) nearest the frame
    K: np.ndarray | None = None
    K_size: tuple[int, int] | None = None


class GroundingPipeline:
    """Thread-safe: inputs may be pushed from one thread while ``run`` works in another."""

    def __init__(
        self,
        predictor: Any,
        events: EventConfig | None = None,
        decode_frame: Callable[[Any], np.ndarray] = lambda f: f,
        decode_depth: Callable[[Any], np.ndarray] = lambda d: d,
        depth_cache_size: int = 30,
        depth_max_gap_s: float = 0.1,
        thresholds: Thresholds | None = None,
    ) -> None:
        self._predictor = predictor
        self.events_cfg = (events or EventConfig()).validate()
        self.tracker = AudioEventTracker(self.events_cfg)
        self.frames = FrameCache(self.events_cfg.frame_cache_size, self.events_cfg.backjump_reset_s)
        self.depths = FrameCache(depth_cache_size, self.events_cfg.backjump_reset_s)
        self.decode_frame = decode_frame
        self.decode_depth = decode_depth
        self.depth_max_gap_s = depth_max_gap_s
        self.thresholds = thresholds or Thresholds()
        self.K: np.ndarray | None = None
        self.K_size: tuple[int, int] | None = None  # (width, height) the intrinsics belong to
        self.stats = PipelineStats()
        self._lock = threading.Lock()
        # Inputs nearest the onset of the event in progress, pinned so that a long event
        # (or a slow inference) cannot evict them from the bounded caches. Keyed by onset.
        self._pinned: dict[int, PinnedInputs] = {}
        self._encoded_stamp: int | None = None
        self._decided: dict[SoundEvent, int] = {}
        self.last_miss = ""  # why the last event found no frame (for logs)
        self.last_geometry_error = ""
        self.last_encode_ms = float("nan")  # visual encoder time of the latest frame encoded
        self.encodes = 0  # frames encoded so far

    @property
    def predictor(self) -> Any:
        return self._predictor

    @predictor.setter
    def predictor(self, predictor: Any) -> None:
        """A new predictor (a node reloads it on activate) holds no encoded frame yet."""
        self._predictor = predictor
        self._encoded_stamp = None

    # ---- inputs (cheap; called from subscription callbacks) ----
    def push_frame(self, stamp_ns: int, frame: Any, header: Any = None) -> bool:
        with self._lock:
            added = self.frames.add(int(stamp_ns), (frame, header))
            self._pin_onset_frame()
            return added

    def push_depth(self, stamp_ns: int, depth: Any) -> bool:
        with self._lock:
            added = self.depths.add(int(stamp_ns), depth)
            self._pin_onset_frame()  # depth often arrives just after its colour frame
            return added

    def set_intrinsics(self, K: np.ndarray, size_wh: tuple[int, int]) -> None:
        """Camera matrix and the (width, height) it was calibrated for."""
        with self._lock:
            self.K = np.asarray(K, np.float64).reshape(3, 3)
            self.K_size = (int(size_wh[0]), int(size_wh[1]))
            self._pin_onset_frame()

    def push_audio(self, samples: np.ndarray, stamp_ns: int, sample_rate: int) -> list[SoundEvent]:
        """Feed one chunk ([channels, n] or [n] float); returns the events it completed."""
        with self._lock:
            events = self.tracker.push(samples, int(stamp_ns), sample_rate)
            self._pin_onset_frame()
            self.stats.events += len(events)
            if events:
                chunk_end = int(stamp_ns) + np.shape(samples)[-1] * 1_000_000_000 // int(sample_rate)
                for event in events:
                    self._decided[event] = chunk_end
                while len(self._decided) > 64:  # events never run (latest-only drops)
                    self._decided.pop(next(iter(self._decided)))
            return events

    def flush_audio(self) -> list[SoundEvent]:
        with self._lock:
            events = self.tracker.flush()
            self.stats.events += len(events)
            end = self.tracker.detector.stream_time
            for event in events:
                self._decided[event] = round((end if end is not None else event.end_time) * 1e9)
            return events

    def _pin_onset_frame(self) -> None:
        """Keep the inputs nearest the onset of the event in progress. Re-checked on every
        input so a frame (or depth) that arrives after the onset was detected but is closer
        to it still wins: live and offline replays then pick the same inputs."""
        onset = self.tracker.detector.active_onset
        if onset is None:
            return
        onset_ns = round(onset * 1e9)
        hit = self.frames.nearest(onset_ns, self.events_cfg.frame_max_gap_s)
        if hit is None:
            return
        pinned = self._pinned.get(onset_ns)
        if pinned is None or abs(hit[0] - onset_ns) < abs(pinned.stamp_ns - onset_ns):
            pinned = PinnedInputs(hit[0], *hit[1])
            # Earlier onsets' pins stay (the newest _MAX_PINS): an event often ends in the very
            # chunk in which the next onset is heard, and its inference comes after that.
            self._pinned.pop(onset_ns, None)
            self._pinned[onset_ns] = pinned
            while len(self._pinned) > _MAX_PINS:
                self._pinned.pop(next(iter(self._pinned)))
        depth = self.depths.nearest(pinned.stamp_ns, self.depth_max_gap_s)
        if depth is not None and (pinned.depth is None
                                  or abs(depth[0] - pinned.stamp_ns) < abs(pinned.depth[0] - pinned.stamp_ns)):
            pinned.depth = depth
        if pinned.K is None and self.K is not None:
            pinned.K, pinned.K_size = self.K, self.K_size

    # ---- the heavy part (worker thread) ----
    def inputs_for(self, event: SoundEvent) -> PinnedInputs | None:
        """The frame nearest the event onset with its depth and intrinsics: pinned at the
        onset, or (an event whose onset was never pinned) looked up in the caches now."""
        onset_ns = round(event.onset_time * 1e9)
        with self._lock:
            pinned = self._pinned.get(onset_ns)
            hit = self.frames.nearest(onset_ns, self.events_cfg.frame_max_gap_s)
            if pinned is not None and (hit is None or abs(pinned.stamp_ns - onset_ns) <= abs(hit[0] - onset_ns)):
                return pinned
            return self._cached_inputs(hit)

    def _cached_inputs(self, hit: tuple[int, Any] | None) -> PinnedInputs | None:
        """A cached (stamp, (frame, header)) with the depth nearest it and the current
        intrinsics (call with the lock held)."""
        if hit is None:
            return None
        return PinnedInputs(hit[0], *hit[1], depth=self.depths.nearest(hit[0], self.depth_max_gap_s),
                            K=self.K, K_size=self.K_size)

    def _describe_miss(self, event: SoundEvent) -> str:
        """Why no frame was used: tells a lost frame (executor stall, transport drop)
        from a camera that stopped or a clock mismatch between camera and microphone."""
        onset_ns = round(event.onset_time * 1e9)
        with self._lock:
            nearest = self.frames.nearest(onset_ns)
            held = len(self.frames)
        if nearest is None:
            return f"onset {event.onset_time:.3f} s: no camera frames held"
        return (f"onset {event.onset_time:.3f} s: nearest of {held} held frames is "
                f"{(nearest[0] - onset_ns) / 1e9:+.3f} s away (limit {self.events_cfg.frame_max_gap_s} s)")

    def audio_between(self, start_ns: int, end_ns: int) -> np.ndarray:
        """The audio held between two stamps (16 kHz mono; zeros where there is none)."""
        with self._lock:
            return self.tracker.buffer.extract(int(start_ns), int(end_ns), pad=True)[0]

    def event_audio(self, event: SoundEvent) -> np.ndarray:
        with self._lock:
            return self.tracker.audio_for(event).samples

    def run(self, event: SoundEvent, audio: np.ndarray | None = None) -> Detection | None:
        """One inference for ``event``; None (counted) when no frame is near its onset.

        Raises NonFiniteOutputError (counted) when the model's output is not finite: such
        masks are never published. A grasp region that cannot be computed (bad
        intrinsics or depth) leaves the masks intact and is counted in ``geometry_errors``.
        """
        picked = self.inputs_for(event)
        if picked is None:
            self.stats.no_frame += 1
            self.last_miss = self._describe_miss(event)
            return None
        if audio is None:
            audio = self.event_audio(event)
        with self._lock:  # the pin stays until the next onset replaces it (one at most)
            decided = self._decided.pop(event, round(event.end_time * 1e9))
        return self._infer(event, picked, audio, self.events_cfg.sample_rate, decided)

    def ground(self, audio: np.ndarray | None, sample_rate: int, start_ns: int, end_ns: int,
               frame_stamp_ns: int | None = None) -> Detection | None:
        """On-demand grounding for a planner, outside the event detector: ``audio`` (a clip
        at ``sample_rate``) or, when None, this pipeline's own audio between ``start_ns``
        and ``end_ns``; on the frame nearest ``frame_stamp_ns`` (default: the latest).
        None (with ``last_miss``) when there is no frame or no audio."""
        with self._lock:
            picked = self._cached_inputs(self.frames.latest() if frame_stamp_ns is None else self.frames.nearest(
                frame_stamp_ns, self.events_cfg.frame_max_gap_s))
        if picked is None:
            self.last_miss = "no camera frame held" if frame_stamp_ns is None else (
                f"no camera frame within {self.events_cfg.frame_max_gap_s} s of the requested stamp")
            return None
        if audio is None:
            audio, sample_rate = self.audio_between(start_ns, end_ns), self.events_cfg.sample_rate
        if np.size(audio) == 0:
            self.last_miss = "no audio: empty clip or time span"
            return None
        t0, t1 = start_ns / 1e9, end_ns / 1e9
        event = SoundEvent(start_time=t0, end_time=t1, peak_score=0.0, onset_time=t0, peak_time=t0)
        return self._infer(event, picked, np.asarray(audio, np.float32), int(sample_rate), end_ns)

    def _infer(self, event: SoundEvent, picked: PinnedInputs, audio: np.ndarray, sample_rate: int,
               decided_ns: int) -> Detection:
        t_start = time.perf_counter()
        stamp = picked.stamp_ns
        rgb = np.ascontiguousarray(self.decode_frame(picked.frame))
        t_decode = time.perf_counter()
        if self._encoded_stamp != stamp:
            self._encode(rgb, stamp)
        t_visual = time.perf_counter()
        pred = self.predictor.predict(audio, sample_rate)
        t_model = time.perf_counter()
        if not (np.isfinite(pred.function_prob).all() and np.isfinite(pred.dependency_prob).all()):
            self.stats.nonfinite_outputs += 1
            raise NonFiniteOutputError("the model output NaN/Inf probabilities (NaN weights or overflowing input)")
        th = self.thresholds
        fmask = pred.function_prob > th.function
        dmask = pred.dependency_prob > th.dependency
        geometry = self._geometry(picked, rgb, pred.function_prob, fmask)
        t_end = time.perf_counter()
        self.stats.detections += 1
        return Detection(
            event=event,
            frame_stamp_ns=stamp,
            frame_header=picked.header,
            rgb=rgb,
            function_prob=pred.function_prob,
            dependency_prob=pred.dependency_prob,
            function_mask=fmask,
            dependency_mask=dmask,
            geometry=geometry,
            inference_ms=(t_model - t_decode) * 1e3,
            decided_ns=decided_ns,
            has_depth=picked.depth is not None and picked.K is not None,
            timings={
                "decode_ms": (t_decode - t_start) * 1e3,
                "visual_ms": (t_visual - t_decode) * 1e3,
                "audio_decoder_ms": (t_model - t_visual) * 1e3,
                "geometry_ms": (t_end - t_model) * 1e3,
            },
        )

    def encode_ahead(self) -> bool:
        """Encode the pinned onset frame while the event is still going on (saves the
        visual path from the latency after the event ends). Returns True if it encoded."""
        with self._lock:
            pinned = next(iter(self._pinned.values()), None)
        if pinned is None or pinned.stamp_ns == self._encoded_stamp:
            return False
        self._encode(np.ascontiguousarray(self.decode_frame(pinned.frame)), pinned.stamp_ns)
        return True

    def _encode(self, rgb: np.ndarray, stamp: int) -> None:
        """Run the visual encoder on one frame (timed: ``last_encode_ms``)."""
        self._encoded_stamp = None  # a failed encode must not look like a cached one
        t0 = time.perf_counter()
        self.predictor.set_image(rgb)
        self.last_encode_ms = (time.perf_counter() - t0) * 1e3
        self.encodes += 1
        self._encoded_stamp = stamp

    def _geometry(self, picked: PinnedInputs, rgb: np.ndarray, prob: np.ndarray, mask: np.ndarray) -> RegionGeometry:
        th = self.thresholds
        image_wh = (mask.shape[1], mask.shape[0])
        empty = RegionGeometry(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.float32),
                               None, image_centroid(mask))
        if picked.depth is None:
            self.stats.depth_missing += 1
        try:
            K, K_size = picked.K, picked.K_size
            depth = None
            if picked.depth is not None and K is not None and mask.sum() >= th.min_mask_pixels:
                depth = self.decode_depth(picked.depth[1])
            if K is not None and K_size is not None and K_size != image_wh:
                K = scale_intrinsics(K, K_size, image_wh)
            return region_geometry(
                prob,
                mask,
                depth,
                K,
                image=rgb,
                voxel_size=th.voxel_size or None,
                max_depth=th.max_depth_m,
            )
        except (ValueError, ArithmeticError) as exc:  # bad depth/intrinsics: masks still count
            self.stats.geometry_errors += 1
            self.last_geometry_error = str(exc)
            return empty
