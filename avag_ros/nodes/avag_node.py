"""Perception node: hears action sounds, grounds them on the camera frame, publishes
affordance masks, overlays, grasp-region point clouds, poses and diagnostics.

Lifecycle: the model is loaded on configure, inputs are subscribed on activate, GPU memory
is released on deactivate. With ``autostart`` (default) the node configures and
activates itself, so it also runs without a lifecycle manager.

Threading: subscription callbacks only convert and buffer (cheap); one worker thread runs
the model on the latest pending event (never a backlog: an event that arrives while one
is waiting replaces it and is counted as dropped). While an event is still sounding the
worker encodes the onset frame ahead, so only the audio path runs after the event ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from avag.msg import AffordanceDetection
from avag_ros import audio_inputs, params
from avag_ros.conversions import (
    camera_info_to_k,
    compressed_to_numpy,
    image_to_numpy,
    image_to_rgb,
    stamp_to_ns,
)
from avag_ros.outputs import (
    detection_to_msg,
    markers_for,
    mask_image,
    overlay_image,
    probability_image,
)
from avag_ros.spin import spin_until_shutdown


class LatestSlot:
    """A one-element mailbox: put() replaces what is waiting (returns True if it did)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None

    def put(self, item: Any) -> bool:
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def get(self, timeout: float) -> Any:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


def decode_frame(msg: Any) -> np.ndarray:
    """Camera message (Image or CompressedImage) -> RGB uint8; only for frames an event uses."""
    if isinstance(msg, CompressedImage):
        return compressed_to_numpy(msg, rgb=True)
    return image_to_rgb(msg)


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


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=rel)


class AvagNode(LifecycleNode):
    def __init__(self, node_name: str = "avag_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self)
        self.cfg: params.NodeConfig | None = None
        self.pipeline = None
        self.predictor = None
        self.counters: Counter[str] = Counter()
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._timers: list[Any] = []
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seen: dict[str, float] = {}
        self._latency_ms: list[float] = []
        self._audio_info: audio_inputs.RawAudioInfo | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.get_parameter("autostart").value:
            # a wall-clock timer: under use_sim_time a ROS-time timer would wait for /clock
            self._autostart_timer = self.create_timer(0.01, self._autostart, clock=self._steady)

    # ------------------------------------------------------------------ lifecycle
    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.cfg = params.read(self)
            self.predictor = self._load_predictor(self.cfg)
        except Exception as exc:  # bad parameters, missing/corrupt checkpoint
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        from avag_core.pipeline import GroundingPipeline, Thresholds

        cfg = self.cfg
        self.pipeline = GroundingPipeline(
            self.predictor,
            cfg.events,
            decode_frame=decode_frame,
            decode_depth=image_to_numpy,
            depth_cache_size=cfg.depth_cache_size,
            depth_max_gap_s=cfg.depth_max_gap_s,
            thresholds=Thresholds(
                cfg.function_threshold, cfg.dependency_threshold, cfg.min_mask_pixels,
                cfg.voxel_size, cfg.max_depth_m,
            ),
        )
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {
            "function_mask": self.create_publisher(Image, "~/function_mask", reliable),
            "dependency_mask": self.create_publisher(Image, "~/dependency_mask", reliable),
            "function_prob": self.create_publisher(Image, "~/function_prob", reliable),
            "dependency_prob": self.create_publisher(Image, "~/dependency_prob", reliable),
            "overlay": self.create_publisher(Image, "~/overlay", reliable),
            "grasp_region": self.create_publisher(PointCloud2, "~/grasp_region", reliable),
            "detection": self.create_publisher(AffordanceDetection, "~/detection", reliable),
            "markers": self.create_publisher(MarkerArray, "~/markers", reliable),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", 10),
        }
        self.get_logger().info(f"configured: model on {self.predictor.device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        cfg = self.cfg
        if self.predictor is None:  # released on deactivate (GPU): load again
            try:
                self.predictor = self.pipeline.predictor = self._load_predictor(cfg)
            except Exception as exc:
                self.get_logger().error(f"activate failed: {exc}")
                return TransitionCallbackReturn.FAILURE
        image_type = CompressedImage if cfg.compressed else Image
        self._subs = [
            self.create_subscription(
                image_type, cfg.image_topic, self._on_image,
                _qos(cfg.image_qos_reliability, cfg.image_qos_depth)),
        ]
        if cfg.use_depth:
            self._subs += [
                self.create_subscription(
                    Image, cfg.depth_topic, self._on_depth,
                    _qos(cfg.depth_qos_reliability, cfg.depth_qos_depth)),
                self.create_subscription(
                    CameraInfo, cfg.camera_info_topic, self._on_camera_info,
                    _qos(cfg.depth_qos_reliability, cfg.depth_qos_depth)),
            ]
        try:
            audio_type = audio_inputs.message_class(cfg.audio_type)
        except ImportError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        self._subs.append(self.create_subscription(
            audio_type, cfg.audio_topic, self._on_audio,
            _qos(cfg.audio_qos_reliability, cfg.audio_qos_depth)))
        if cfg.audio_type == "audio_common":
            from audio_common_msgs.msg import AudioInfo

            self._subs.append(self.create_subscription(
                AudioInfo, cfg.audio_info_topic, self._on_audio_info, 1))
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="avag_inference", daemon=True)
        self._worker.start()
        # Wall-clock timer (stamps still use the node clock): a ROS-time timer under
        # use_sim_time makes rclpy's executor spin hot on every /clock message.
        self._timers = [self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics,
                                          clock=self._steady)]
        self.get_logger().info(
            f"active: subscribed to {', '.join(s.topic_name for s in self._subs)} (audio: {cfg.audio_type})")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []
        if self.predictor is not None and self.predictor.device.type == "cuda":
            # free GPU memory while inactive; activate loads the model again
            self.predictor = self.pipeline.predictor = None
            import torch

            torch.cuda.empty_cache()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        self.pipeline = self.predictor = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    # ------------------------------------------------------------------ model
    def _cuda_ok(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def _load_predictor(self, cfg: params.NodeConfig):
        from avag_core.predictor import Predictor

        device = cfg.device
        if device.startswith("cuda") and not self._cuda_ok():
            self.get_logger().warning(f"device={device} requested but CUDA is not available: using cpu")
            device = "cpu"
        dtype = "fp16" if cfg.fp16 and device.startswith("cuda") else None
        path = Path(cfg.checkpoint) if cfg.checkpoint else default_checkpoint()
        self.get_logger().info(f"loading {path}")
        return Predictor.from_checkpoint(path, device=device, dtype=dtype)

    # ------------------------------------------------------------------ inputs
    def _bad(self, what: str, exc: Exception) -> None:
        self.counters[f"bad_{what}"] += 1
        self.get_logger().warning(f"dropped {what} message: {exc}", throttle_duration_sec=5.0)

    def _on_image(self, msg: Any) -> None:
        self._last_seen["image"] = time.monotonic()
        self.counters["images"] += 1
        try:
            if isinstance(msg, Image):
                image_to_numpy(msg)  # validates encoding and size (zero-copy view)
                if msg.encoding not in ("rgb8", "bgr8", "mono8", "rgba8", "bgra8"):
                    raise ValueError(f"unsupported image encoding {msg.encoding!r}")
            if not self.pipeline.push_frame(stamp_to_ns(msg.header.stamp), msg, msg.header):
                self.counters["duplicate_frames"] += 1
        except Exception as exc:
            self._bad("image", exc)

    def _on_depth(self, msg: Image) -> None:
        self._last_seen["depth"] = time.monotonic()
        try:
            if msg.encoding not in ("16UC1", "mono16", "32FC1"):
                raise ValueError(f"unsupported depth encoding {msg.encoding!r} (16UC1 mm or 32FC1 m)")
            image_to_numpy(msg)
            self.pipeline.push_depth(stamp_to_ns(msg.header.stamp), msg)
        except Exception as exc:
            self._bad("depth", exc)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._last_seen["camera_info"] = time.monotonic()
        try:
            K, size = camera_info_to_k(msg)
            self.pipeline.set_intrinsics(K, size)
        except Exception as exc:
            self._bad("camera_info", exc)

    def _on_audio_info(self, msg: Any) -> None:
        self._audio_info = audio_inputs.RawAudioInfo(
            int(msg.sample_rate), int(msg.channels), str(msg.sample_format))

    def _on_audio(self, msg: Any) -> None:
        self._last_seen["audio"] = time.monotonic()
        self.counters["audio_chunks"] += 1
        try:
            samples, rate = audio_inputs.to_numpy(msg, self.cfg.audio_type, self._audio_info)
            events = self.pipeline.push_audio(samples, stamp_to_ns(msg.header.stamp), rate)
        except Exception as exc:
            self._bad("audio", exc)
            return
        status = self.pipeline.tracker.last_push.status if self.pipeline.tracker.last_push else "ok"
        if status not in ("ok", "empty"):
            self.counters[f"audio_{status}"] += 1
        for event in events:
            audio = self.pipeline.event_audio(event)
            if self._slot.put((event, audio, time.monotonic())):
                self.counters["dropped_events"] += 1

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._slot.get(timeout=0.02)
            try:
                if job is None:
                    self.pipeline.encode_ahead()
                    continue
                event, audio, _queued = job
                det = self.pipeline.run(event, audio)
                if det is None:
                    self.counters["events_without_frame"] += 1
                    self.get_logger().warning(
                        f"sound event with no camera frame near its onset ({self.pipeline.last_miss})",
                        throttle_duration_sec=5.0)
                    continue
                self._publish(det)
            except Exception as exc:  # never let one bad inference kill the worker
                self.counters["inference_errors"] += 1
                self.get_logger().error(f"inference failed: {exc}", throttle_duration_sec=5.0)

    def _publish(self, det: Any) -> None:
        cfg = self.cfg
        header = det.frame_header
        pubs = self._pubs
        fmask = mask_image(det.function_mask, header)
        dmask = mask_image(det.dependency_mask, header)
        pubs["function_mask"].publish(fmask)
        pubs["dependency_mask"].publish(dmask)
        pubs["function_prob"].publish(probability_image(det.function_prob, header))
        pubs["dependency_prob"].publish(probability_image(det.dependency_prob, header))
        if pubs["overlay"].get_subscription_count() > 0:
            pubs["overlay"].publish(overlay_image(det, header, cfg.overlay_alpha))
        msg = detection_to_msg(det, header, fmask, dmask)
        if msg.grasp_region.width > 0:
            pubs["grasp_region"].publish(msg.grasp_region)
        pubs["detection"].publish(msg)
        pubs["markers"].publish(markers_for(det, header, cfg.marker_lifetime_s, self.get_namespace()))
        self.counters["detections"] += 1
        self._latency_ms.append(det.inference_ms)
        del self._latency_ms[:-100]

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, changes: list[Any]) -> SetParametersResult:
        if self.cfg is None:
            return SetParametersResult(successful=True)
        values = {p.name: p.value for p in changes}
        try:
            current = params.flatten(self.cfg)
            current.update(values)
            new_cfg = params.build(current)
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        live = {k for k in values if k in params.NodeConfig.RECONFIGURABLE}
        for name in live:
            setattr(self.cfg, name, getattr(new_cfg, name))
        if self.pipeline is not None and live:
            th = self.pipeline.thresholds
            th.function, th.dependency = self.cfg.function_threshold, self.cfg.dependency_threshold
            th.min_mask_pixels, th.voxel_size = self.cfg.min_mask_pixels, self.cfg.voxel_size
            th.max_depth_m = self.cfg.max_depth_m
        if set(values) - live:
            self.get_logger().info(
                f"{', '.join(sorted(set(values) - live))} take effect at the next configure")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        stale = [
            name for name in ("image", "audio") + (("depth", "camera_info") if self.cfg.use_depth else ())
            if now - self._last_seen.get(name, -1e9) > self.cfg.stale_after_s
        ]
        values = dict(self.counters)
        stats = self.pipeline.stats
        values.update(events=stats.events, no_frame=stats.no_frame, depth_missing=stats.depth_missing)
        buf = self.pipeline.tracker.buffer.stats.as_dict()
        values.update({f"audio_{k}": v for k, v in buf.items()})
        if self._latency_ms:
            values["inference_ms_median"] = float(np.median(self._latency_ms))
            values["inference_ms_last"] = self._latency_ms[-1]
        values["stale_inputs"] = ",".join(stale)
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if stale else DiagnosticStatus.OK,
            name=f"{self.get_name()}: affordance grounding",
            message=f"stale: {', '.join(stale)}" if stale else "ok",
            hardware_id=str(self.predictor.device) if self.predictor is not None else "",
            values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(arr)


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = AvagNode()
    return spin_until_shutdown(node, node._stop_worker, threads=2)


if __name__ == "__main__":
    sys.exit(main())
