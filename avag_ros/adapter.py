"""The one bridge between ROS messages and the ROS-free grounding pipeline.

The perception node, the offline bag replay and ``avag bag eval --live`` all feed
messages through :class:`GroundingAdapter`, so input validation (one encoding list, size
limits), audio format state, live parameter changes and counters exist once and the
live and offline paths agree by construction. It imports no node module and creates no
ROS entities: callers own subscriptions, publishers and threads.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from avag_core.events import SoundEvent
from avag_core.pipeline import Detection, GroundingPipeline, NonFiniteOutputError, Thresholds
from avag_ros import audio_inputs, params
from avag_ros.conversions import (
    compressed_to_numpy,
    image_to_numpy,
    image_to_rgb,
    stamp_to_ns,
)

# The one list of encodings the model input accepts (image_to_rgb converts each to RGB).
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3", "8UC1")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")  # millimetres (16-bit) or metres (float)


def default_checkpoint() -> Path:
    """The small checkpoint shipped with avag (trained on synthetic data)."""
    import avag_core

    here = Path(avag_core.__file__).resolve().parent / "checkpoints" / "realtime_synth.safetensors"
    if here.exists():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("avag")) / "checkpoints" / here.name
    except Exception:
        return here


def decode_frame(msg: Any) -> np.ndarray:
    """Camera message (Image or CompressedImage) -> RGB uint8; only for frames an event uses."""
    if isinstance(msg, CompressedImage):
        return compressed_to_numpy(msg, rgb=True)
    return image_to_rgb(msg)


def load_predictor(cfg: params.NodeConfig, warn: Callable[[str], None] = print) -> Any:
    """The model for ``cfg`` on its backend. CUDA requested but absent: CPU with a warning
    (and the TensorRT backend, which needs CUDA, falls back to onnxruntime on the CPU)."""
    import torch

    from avag_core.predictor import Predictor

    device, backend = cfg.device, cfg.backend
    if device.startswith("cuda") and not torch.cuda.is_available():
        warn(f"device={device} requested but CUDA is not available: using cpu")
        device = "cpu"
    if backend == "tensorrt" and device == "cpu":
        warn("backend=tensorrt needs CUDA: using onnxruntime on the cpu")
        backend = "onnxruntime"
    dtype = "fp16" if cfg.fp16 and device.startswith("cuda") else cfg.dtype
    if dtype == "fp16" and device == "cpu":
        warn("dtype=fp16 needs CUDA: using fp32 on the cpu")
        dtype = "fp32"
    options = {"engine_cache_dir": cfg.engine_cache_dir} if cfg.engine_cache_dir and backend == "tensorrt" else {}
    path = Path(cfg.checkpoint) if cfg.checkpoint else default_checkpoint()
    return Predictor.from_checkpoint(path, device=device, dtype=dtype, backend=backend, **options)


def load_recognizer(cfg: params.NodeConfig, warn: Callable[[str], None] = print) -> Any:
    """The action head for ``cfg``'s checkpoint (None, with a warning, when there is none:
    detections then carry no label and nothing is rejected)."""
    if not cfg.recognize_actions:
        return None
    from avag_core.errors import AvagError
    from avag_core.hearing import ActionRecognizer

    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else default_checkpoint()
    enrollment = cfg.enrollment_file if cfg.enrollment_file and Path(cfg.enrollment_file).is_file() else None
    try:
        rec = ActionRecognizer.load(ckpt, enrollment, cfg.action_head or None)
    except AvagError as exc:
        if cfg.action_head or enrollment:  # asked for explicitly: a configuration error
            raise
        warn(f"no action recognition ({exc}): every sound event gets masks, labels stay empty")
        return None
    rec.threshold = gate_threshold(cfg, rec)
    return rec


def gate_threshold(cfg: params.NodeConfig, rec: Any) -> float:
    """``rejection_threshold``, or the head's own calibrated one when that is negative."""
    return cfg.rejection_threshold if cfg.rejection_threshold >= 0.0 else rec.hf.threshold


@dataclass
class RejectedSound:
    """A sound event that is not an action on an object: no masks (``~/rejected_events``)."""

    event: SoundEvent
    heard: Any  # avag_core.hearing.Heard


def thresholds_of(cfg: params.NodeConfig) -> Thresholds:
    return Thresholds(cfg.function_threshold, cfg.dependency_threshold, cfg.min_mask_pixels,
                      cfg.voxel_size, cfg.max_depth_m)


def build_pipeline(predictor: Any, cfg: params.NodeConfig) -> GroundingPipeline:
    return GroundingPipeline(
        predictor,
        cfg.events,
        decode_frame=decode_frame,
        decode_depth=image_to_numpy,
        depth_cache_size=cfg.depth_cache_size,
        depth_max_gap_s=cfg.depth_max_gap_s,
        thresholds=thresholds_of(cfg),
    )


def _camera_info_problem(K: np.ndarray, width: int, height: int) -> tuple[str, str] | None:
    """(kind, reason) when intrinsics cannot give a grasp region, else None."""
    if not np.isfinite(K).all():
        return "nonfinite", "camera_info K has NaN/Inf entries"
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        return "uncalibrated", f"camera_info K has no focal length (fx={K[0, 0]}, fy={K[1, 1]}): camera not calibrated"
    if width == 0 or height == 0:
        return "zero_size", f"camera_info size is {width}x{height}"
    return None


class KindThrottledLog:
    """Logs the first problem of each kind at once, then at most once per ``period_s`` per
    kind with the number suppressed since: one noisy input cannot hide another kind."""

    def __init__(self, emit: Callable[[str], None], period_s: float = 10.0) -> None:
        self._emit = emit
        self._period = period_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def __call__(self, kind: str, reason: str) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._period:
            self._suppressed[kind] += 1
            return
        more = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        self._emit(f"{kind}: {reason}" + (f" ({more} more since the last report)" if more else ""))


class GroundingAdapter:
    """ROS messages in, detections out, every refusal logged once per kind and counted.

    Each ``on_*`` method validates one message and pushes it into the pipeline; a bad
    message is counted as ``bad_<input>`` and logged with its reason, and the next good
    one works as if nothing happened. ``on_audio`` returns the events the chunk completed
    with their audio, ready for ``run`` (same thread or a worker).
    """

    def __init__(self, cfg: params.NodeConfig, predictor: Any, warn: Callable[[str], None] = print,
                 recognizer: Any = None) -> None:
        self.cfg = cfg
        self.recognizer = recognizer  # avag_core.hearing.ActionRecognizer, or None
        self.pipeline = build_pipeline(predictor, cfg)
        self.counters: Counter[str] = Counter()
        self.log = KindThrottledLog(warn)
        self._audio_info: audio_inputs.RawAudioInfo | None = None
        self._model_ms: dict[str, list[float]] = {"encode": [], "audio": []}  # recent, for diagnostics
        # the model holds one encoded frame: the event worker and on-demand requests take turns
        self._model_lock = threading.Lock()

    # ------------------------------------------------------------------ inputs
    def refuse(self, kind: str, reason: str, sub: str = "") -> None:
        """Count and log one refused or repaired input of ``kind`` (``sub``: which problem,
        counted and throttled on its own, so one noisy fault cannot hide another)."""
        self.counters[kind] += 1
        if sub:
            self.counters[f"{kind}.{sub}"] += 1
        self.log(f"{kind}.{sub}" if sub else kind, reason)

    def _size_ok(self, kind: str, msg: Any, limit_name: str) -> bool:
        size, limit_mb = len(msg.data), getattr(self.cfg, limit_name)
        if size > limit_mb * 1e6:
            self.refuse(kind, f"message of {size / 1e6:.1f} MB exceeds {limit_name}={limit_mb:g}", "too_large")
            return False
        return True

    def _image_ok(self, kind: str, msg: Image, encodings: tuple[str, ...]) -> bool:
        """Size limit, encoding, non-zero size and a data layout that fits: one check for
        camera and depth images (refusals counted under ``kind``)."""
        if not self._size_ok(kind, msg, "max_image_mb"):
            return False
        if msg.encoding not in encodings:
            self.refuse(kind, f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(encodings)})",
                        "encoding")
            return False
        if msg.width == 0 or msg.height == 0:
            self.refuse(kind, f"zero-size image ({msg.width}x{msg.height})", "zero_size")
            return False
        try:
            image_to_numpy(msg)  # validates step and data size (zero-copy view)
        except ValueError as exc:
            self.refuse(kind, str(exc), "layout")
            return False
        return True

    def on_image(self, msg: Image | CompressedImage) -> bool:
        self.counters["images"] += 1
        if isinstance(msg, Image):
            if not self._image_ok("bad_image", msg, COLOR_ENCODINGS):
                return False
        elif not self._size_ok("bad_image", msg, "max_image_mb"):
            return False
        elif len(msg.data) == 0:
            self.refuse("bad_image", f"compressed image ({msg.format!r}) has no data", "empty")
            return False
        if not self.pipeline.push_frame(stamp_to_ns(msg.header.stamp), msg, msg.header):
            self.counters["duplicate_frames"] += 1
        return True

    def on_depth(self, msg: Image) -> bool:
        """Depth: 16UC1/mono16 millimetres or 32FC1 metres."""
        self.counters["depth_images"] += 1
        if not self._image_ok("bad_depth", msg, DEPTH_ENCODINGS):
            return False
        self.pipeline.push_depth(stamp_to_ns(msg.header.stamp), msg)
        return True

    def on_camera_info(self, msg: CameraInfo) -> bool:
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        problem = _camera_info_problem(K, int(msg.width), int(msg.height))
        if problem is not None:
            self.refuse("bad_camera_info", problem[1], problem[0])
            return False
        self.pipeline.set_intrinsics(K, (int(msg.width), int(msg.height)))
        return True

    def on_audio_info(self, msg: Any) -> None:
        """ros-drivers AudioInfo: the format of the raw audio bytes that follow."""
        self._audio_info = audio_inputs.RawAudioInfo(int(msg.sample_rate), int(msg.channels), str(msg.sample_format))

    def on_audio(self, msg: Any) -> list[tuple[SoundEvent, np.ndarray]]:
        """Push one audio message; returns (event, its audio) for each event it completed."""
        self.counters["audio_messages"] += 1
        data = getattr(msg, "data", None)
        if data is not None and not self._size_ok("bad_audio", msg, "max_audio_mb"):
            return []
        try:
            samples, rate = audio_inputs.to_numpy(msg, self.cfg.audio_type, self._audio_info)
        except ValueError as exc:
            self.refuse("bad_audio", str(exc), "format")
            return []
        try:
            events = self.pipeline.push_audio(samples, stamp_to_ns(msg.header.stamp), rate)
        except ValueError as exc:  # refused by the buffer (rate, channels, length)
            self.refuse("bad_audio", str(exc), "refused")
            return []
        push = self.pipeline.tracker.last_push
        for kind, reason in getattr(push, "issues", ()) if push is not None else ():
            self.refuse("audio_issue", reason, kind)
        return [(e, self.pipeline.event_audio(e)) for e in events]

    def flush(self) -> list[tuple[SoundEvent, np.ndarray]]:
        """End of input (bag end): the event still sounding ends here."""
        return [(e, self.pipeline.event_audio(e)) for e in self.pipeline.flush_audio()]

    # ------------------------------------------------------------------ inference
    def run(self, event: SoundEvent, audio: np.ndarray | None = None) -> Detection | RejectedSound | None:
        """The detection for ``event``; a RejectedSound (counted) when the action head says it
        is not an action; None (counted and logged) when there is no detection."""
        if audio is None:
            audio = self.pipeline.event_audio(event)
        with self._model_lock:
            heard = None
            if self.recognizer is not None:
                heard = self.recognizer.recognize(self.pipeline.predictor, audio, self.cfg.events.sample_rate)
                if not heard.is_action:
                    self.counters["rejected_events"] += 1
                    return RejectedSound(event, heard)
            encodes = self.pipeline.encodes
            try:
                det = self.pipeline.run(event, audio)
            except NonFiniteOutputError as exc:
                self.refuse("nonfinite_output", str(exc))
                return None
            if det is not None and heard is not None:
                det.action_label, det.action_confidence = heard.label, heard.confidence
        if det is None:
            self.refuse("events_without_frame", f"sound event with no camera frame near its onset "
                                                f"({self.pipeline.last_miss})")
            return None
        if det.geometry.points.shape[0] == 0 and self.pipeline.last_geometry_error:
            self.refuse("geometry_error", f"no grasp region: {self.pipeline.last_geometry_error}")
            self.pipeline.last_geometry_error = ""
        self._account(det, encodes)
        return det

    def _account(self, det: Detection, encodes: int) -> None:
        if self.pipeline.encodes != encodes:  # not encoded ahead: the frame was encoded now
            self._remember("encode", self.pipeline.last_encode_ms)
        self._remember("audio", det.timings["audio_decoder_ms"])

    def ground(self, audio: np.ndarray | None, sample_rate: int, start_ns: int, end_ns: int,
               frame_stamp_ns: int | None = None) -> tuple[Detection | None, str]:
        """An on-demand request (the ``~/ground`` service): (detection, "") or (None, why)."""
        if audio is not None and not 8000 <= sample_rate <= 192000:
            return None, f"sample_rate {sample_rate} outside 8000-192000 Hz"
        if audio is None and end_ns <= start_ns:
            return None, "end must be after start for a span of the node's own audio"
        with self._model_lock:
            encodes = self.pipeline.encodes
            try:
                det = self.pipeline.ground(audio, sample_rate, start_ns, end_ns, frame_stamp_ns)
            except NonFiniteOutputError as exc:
                return None, str(exc)
        if det is None:
            return None, self.pipeline.last_miss
        self.counters["grounding_requests"] += 1
        self._account(det, encodes)
        return det, ""

    def span_audio(self, start_ns: int, end_ns: int) -> np.ndarray:
        """The node's own audio between two stamps (16 kHz mono; zeros where it has none)."""
        if end_ns <= start_ns:
            raise ValueError("end must be after start")
        return self.pipeline.audio_between(start_ns, end_ns)

    def encode_ahead(self) -> bool:
        """Encode the pinned onset frame while its event still sounds (worker idle time)."""
        with self._model_lock:
            if not self.pipeline.encode_ahead():
                return False
        self._remember("encode", self.pipeline.last_encode_ms)
        return True

    def _remember(self, part: str, ms: float) -> None:
        times = self._model_ms[part]
        times.append(ms)
        del times[:-100]

    # ------------------------------------------------------------------ parameters
    def set_params(self, values: dict[str, Any]) -> tuple[bool, str]:
        """Apply parameter changes: (accepted, reason). Live ones take effect at once,
        the others at the next configure (the reason says which)."""
        try:
            current = params.flatten(self.cfg)
            current.update(values)
            new_cfg = params.build(current)
        except (TypeError, ValueError) as exc:
            return False, str(exc)
        live = {k for k in values if params.is_live(k)}
        for name in live:
            if "." in name:  # events.*: the detector reads its config object
                setattr(self.cfg.events, name.split(".", 1)[1], getattr(new_cfg.events, name.split(".", 1)[1]))
            else:
                setattr(self.cfg, name, getattr(new_cfg, name))
        if self.recognizer is not None:
            self.recognizer.threshold = gate_threshold(self.cfg, self.recognizer)
        th = thresholds_of(self.cfg)
        p = self.pipeline.thresholds
        p.function, p.dependency, p.min_mask_pixels = th.function, th.dependency, th.min_mask_pixels
        p.voxel_size, p.max_depth_m = th.voxel_size, th.max_depth_m
        later = sorted(set(values) - live)
        return True, (f"{', '.join(later)} take effect at the next configure" if later else "")

    # ------------------------------------------------------------------ diagnostics
    def muted_for_s(self) -> float:
        """How long the audio has been digital silence, once that reaches
        ``events.muted_after_s`` (0 before): a muted microphone hears nothing, and a quiet
        room and a mute look the same on every other output."""
        silent = self.pipeline.tracker.buffer.silent_for_s
        return silent if silent >= self.cfg.events.muted_after_s else 0.0

    def diagnostics(self) -> dict[str, Any]:
        """Every counter under its own key: ``input.*`` (messages, refusals by kind),
        ``pipeline.*`` (events, detections, misses), ``audio_buffer.*`` (stream repairs),
        ``detector.*`` (events started, and dropped as shorter than ``events.min_event_s``:
        many drops in a room mean onsets heard and sounds not heard going on; dropped as
        shorter than ``events.busy_min_event_s`` while the room pops on its own, and whether it
        does now)."""
        values: dict[str, Any] = {f"input.{k}": v for k, v in sorted(self.counters.items())}
        stats = self.pipeline.stats
        values.update({f"pipeline.{k}": v for k, v in vars(stats).items()})
        buffer = self.pipeline.tracker.buffer
        values.update({f"audio_buffer.{k}": v for k, v in buffer.stats.as_dict().items()})
        values["audio_buffer.silent_for_s"] = round(buffer.silent_for_s, 1)
        detector = self.pipeline.tracker.detector
        values["detector.events_started"] = detector.started
        values["detector.dropped_short"] = detector.dropped_short
        values["detector.dropped_busy"] = detector.dropped_busy
        values["detector.room_pops"] = detector.room_pops
        for part, times in self._model_ms.items():  # the model's own time, split as set_image/predict
            if times:
                values[f"model.{part}_ms_median"] = round(float(np.median(times)), 2)
                values[f"model.{part}_ms_last"] = round(times[-1], 2)
        return values
