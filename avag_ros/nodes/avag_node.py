"""Perception node: hears action sounds, grounds them on the camera frame, publishes
affordance masks, overlays, grasp-region point clouds, poses and diagnostics.

Lifecycle: the model is loaded on configure, inputs are subscribed on activate, GPU memory
is released on deactivate. With ``autostart`` (default) the node configures and
activates itself, so it also runs without a lifecycle manager.

Threading: a single-threaded executor runs the subscription callbacks, which only
validate and buffer (cheap, through :class:`avag_ros.adapter.GroundingAdapter`); one
worker thread runs the model on the latest pending event (never a backlog: an event that
arrives while one is waiting replaces it and is counted as dropped). While an event is
still sounding the worker encodes the onset frame ahead, so only the audio path runs
after the event ends. rclpy's multi-threaded executor is not used: in the releases robots
run it busy-waits while holding the GIL and starves the inference thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from avag.msg import AffordanceDetection, RejectedEvent
from avag.srv import Enroll, Ground
from avag_ros import audio_inputs, params
from avag_ros.adapter import GroundingAdapter, RejectedSound, load_predictor, load_recognizer
from avag_ros.conversions import stamp_to_ns
from avag_ros.outputs import (
    detection_to_msg,
    markers_for,
    mask_image,
    overlay_image,
    probability_image,
    rejected_msg,
)
from avag_ros.spin import run_node


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


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=rel)


class AvagNode(LifecycleNode):
    """The perception node (see the module docstring for topics and threading)."""

    def __init__(self, node_name: str = "avag_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self)
        self.cfg: params.NodeConfig | None = None
        self.adapter: GroundingAdapter | None = None
        self.predictor = None
        self._pubs: dict[str, Any] = {}
        self._avag_services: list[Any] = []
        self._subs: list[Any] = []
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seen: dict[str, float] = {}
        self._problem = ""  # why the node is not working (failed configure/activate)
        self._enabled = True  # ~/enable: pause inference without tearing anything down
        self._audio_frame_id = ""
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        # Diagnostics exist before configure, so a node whose configure failed says why.
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Wall-clock timers: under use_sim_time a ROS-time timer would wait for /clock.
        period = float(self.get_parameter("diagnostics_period_s").value)
        self._diag_timer = self.create_timer(period, self._publish_diagnostics, clock=self._steady)
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.01, self._autostart, clock=self._steady)

    # ------------------------------------------------------------------ lifecycle
    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _fail(self, what: str, exc: Exception) -> TransitionCallbackReturn:
        self._problem = f"{what} failed: {exc}"
        self.get_logger().error(self._problem)
        self._publish_diagnostics()
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.cfg = params.read(self)
            self.predictor = load_predictor(self.cfg, self.get_logger().warning)
            recognizer = load_recognizer(self.cfg, self.get_logger().warning)
        except Exception as exc:  # bad parameters, missing/corrupt checkpoint or action head
            return self._fail("configure", exc)
        self._problem = ""
        self.adapter = GroundingAdapter(self.cfg, self.predictor, self.get_logger().warning, recognizer)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {
            "function_mask": self.create_publisher(Image, "~/function_mask", reliable),
            "dependency_mask": self.create_publisher(Image, "~/dependency_mask", reliable),
            "function_prob": self.create_publisher(Image, "~/function_prob", reliable),
            "dependency_prob": self.create_publisher(Image, "~/dependency_prob", reliable),
            "overlay": self.create_publisher(Image, "~/overlay", reliable),
            "grasp_region": self.create_publisher(PointCloud2, "~/grasp_region", reliable),
            "grasp_pose": self.create_publisher(PoseStamped, "~/grasp_pose", reliable),
            "detection": self.create_publisher(AffordanceDetection, "~/detection", reliable),
            "markers": self.create_publisher(MarkerArray, "~/markers", reliable),
            "rejected_events": self.create_publisher(RejectedEvent, "~/rejected_events", reliable),
        }
        self._avag_services = [self.create_service(SetBool, "~/enable", self._on_enable),
                          self.create_service(Ground, "~/ground", self._on_ground),
                          self.create_service(Enroll, "~/enroll", self._on_enroll)]
        self.get_logger().info(f"configured: {self.predictor.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        cfg = self.cfg
        if self.predictor is None:  # released on deactivate (GPU): load again
            try:
                self.predictor = self.adapter.pipeline.predictor = load_predictor(cfg, self.get_logger().warning)
            except Exception as exc:
                return self._fail("activate", exc)
        try:
            audio_type = audio_inputs.message_class(cfg.audio_type)
        except ImportError as exc:
            return self._fail("activate", exc)
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
        self._subs.append(self.create_subscription(
            audio_type, cfg.audio_topic, self._on_audio,
            _qos(cfg.audio_qos_reliability, cfg.audio_qos_depth)))
        if cfg.audio_type == "audio_common":
            from audio_common_msgs.msg import AudioInfo

            self._subs.append(self.create_subscription(
                AudioInfo, cfg.audio_info_topic, self.adapter.on_audio_info, 1))
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="avag_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"active: subscribed to {', '.join(s.topic_name for s in self._subs)} (audio: {cfg.audio_type})")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self.predictor is not None and self.predictor.device.type == "cuda":
            # free GPU memory while inactive; activate loads the model again
            self.predictor = self.adapter.pipeline.predictor = None
            import torch

            torch.cuda.empty_cache()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        for srv in self._avag_services:
            self.destroy_service(srv)
        self._pubs, self._avag_services = {}, []
        # counters live in the adapter and its pipeline: one life cycle, reset together
        self.adapter = self.predictor = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg: Any) -> None:
        self._last_seen["image"] = time.monotonic()
        self.adapter.on_image(msg)

    def _on_depth(self, msg: Image) -> None:
        self._last_seen["depth"] = time.monotonic()
        self.adapter.on_depth(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._last_seen["camera_info"] = time.monotonic()
        self.adapter.on_camera_info(msg)

    def _on_audio(self, msg: Any) -> None:
        self._last_seen["audio"] = time.monotonic()
        self._audio_frame_id = msg.header.frame_id
        for event, audio in self.adapter.on_audio(msg):
            if not self._enabled:
                self.adapter.counters["events_while_disabled"] += 1
                continue
            if self._slot.put((event, audio)):
                self.adapter.refuse("dropped_events", "an event ended while the previous one still waited for "
                                                      "inference: the older one is dropped (latest only)")

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            # 10 wake-ups a second when idle: each costs the executor thread the GIL, and the
            # onset frame is still encoded well before an event (>= release_s long) ends
            job = self._slot.get(timeout=0.1)
            try:
                if job is None:
                    if self._enabled:
                        self.adapter.encode_ahead()
                    continue
                det = self.adapter.run(*job)
                if isinstance(det, RejectedSound):
                    self._pubs["rejected_events"].publish(
                        rejected_msg(det, self._audio_frame_id, self.adapter.recognizer.threshold))
                elif det is not None:
                    self._publish(det)
            except Exception as exc:  # never let one bad inference kill the worker
                if self._stop.is_set() or not rclpy.ok():
                    return  # shutting down: publishers are gone
                self.adapter.refuse("inference_errors", f"inference failed: {exc}")

    def _publish(self, det: Any) -> AffordanceDetection:
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
        if msg.has_pose:
            pubs["grasp_pose"].publish(PoseStamped(header=header, pose=msg.pose))
        pubs["detection"].publish(msg)
        pubs["markers"].publish(markers_for(det, header, cfg.marker_lifetime_s, self.get_namespace()))
        self.adapter.counters["detections_published"] += 1
        return msg

    # ------------------------------------------------------------------ services
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """Pause or resume inference; inputs keep flowing into the buffers meanwhile, so
        grounding resumes at once (events heard while paused are counted, not run)."""
        self._enabled = bool(request.data)
        response.success = True
        response.message = "inference enabled" if self._enabled else "inference paused"
        self.get_logger().info(response.message)
        return response

    def _on_ground(self, request: Ground.Request, response: Ground.Response) -> Ground.Response:
        """A planner's grounding request: runs at once on the service thread (the model is
        shared with the event worker under a lock) and is also published like an event."""
        if self.adapter is None or not self._subs:
            response.success, response.message = False, "node is not active"
            return response
        audio = np.asarray(request.audio, np.float32) if len(request.audio) else None
        frame = stamp_to_ns(request.frame_stamp) or None
        try:
            det, why = self.adapter.ground(audio, int(request.sample_rate), stamp_to_ns(request.start),
                                           stamp_to_ns(request.end), frame)
        except Exception as exc:  # a failed request must not take the node down
            det, why = None, f"grounding failed: {exc}"
        if det is None:
            response.success, response.message = False, why
            return response
        response.detection = self._publish(det)
        response.success, response.message = True, "ok"
        return response

    def _on_enroll(self, request: Enroll.Request, response: Enroll.Response) -> Enroll.Response:
        """Teach an action from a few clips (or a span of the node's own audio) at run time."""
        rec = self.adapter.recognizer if self.adapter is not None else None
        if rec is None:
            response.success, response.message = False, "no action head loaded (see recognize_actions)"
            return response
        try:
            if len(request.audio):
                audio = np.asarray(request.audio, np.float32)
                lengths = list(request.clip_lengths) or [audio.size]
                if sum(lengths) != audio.size:
                    raise ValueError(f"clip_lengths add up to {sum(lengths)}, audio has {audio.size} samples")
                clips = np.split(audio, np.cumsum(lengths)[:-1])
                rate = int(request.sample_rate)
            else:
                clips = [self.adapter.span_audio(stamp_to_ns(request.start), stamp_to_ns(request.end))]
                rate = self.cfg.events.sample_rate
            response.clips = rec.enroll(request.name, clips, rate, self.predictor)
            if request.save:
                if not self.cfg.enrollment_file:
                    raise ValueError("save=true needs the enrollment_file parameter")
                rec.save_enrollment(self.cfg.enrollment_file)
        except Exception as exc:  # bad clips, names, files: one line, nothing changed
            response.success, response.message = False, str(exc)
            return response
        response.actions = rec.actions
        response.success, response.message = True, f"{request.name}: {response.clips} clip(s)"
        self.get_logger().info(f"enrolled {response.message}")
        return response

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, changes: list[Any]) -> SetParametersResult:
        values = {p.name: p.value for p in changes}
        if self.adapter is None:  # not configured: validate only, read at configure
            try:
                current = params.flatten(self.cfg or params.NodeConfig())
                current.update(values)
                params.build(current)
            except (TypeError, ValueError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            return SetParametersResult(successful=True)
        ok, reason = self.adapter.set_params(values)
        if ok and reason:
            self.get_logger().info(reason)
        return SetParametersResult(successful=ok, reason=reason)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        values: dict[str, Any] = {"lifecycle_state": self._state_machine.current_state[1]
                                  if hasattr(self, "_state_machine") else ""}
        level, message = DiagnosticStatus.OK, "ok"
        if self._problem:
            level, message = DiagnosticStatus.ERROR, self._problem
        elif self.adapter is None or not self._subs:
            level, message = DiagnosticStatus.WARN, "not active"
        elif not self._enabled:
            level, message = DiagnosticStatus.OK, "paused (~/enable false)"
        if self.adapter is not None:
            values.update(self.adapter.diagnostics())
            if self._subs and self.cfg is not None:
                now = time.monotonic()
                inputs = ("image", "audio") + (("depth", "camera_info") if self.cfg.use_depth else ())
                stale = [n for n in inputs if now - self._last_seen.get(n, -1e9) > self.cfg.stale_after_s]
                values["stale_inputs"] = ",".join(stale)
                muted = self.adapter.muted_for_s()
                warnings = ([f"stale: {', '.join(stale)}"] if stale else []) + (
                    [f"audio: digital silence for {muted:.1f} s (muted?)"] if muted else [])
                if warnings and level == DiagnosticStatus.OK:
                    level, message = DiagnosticStatus.WARN, "; ".join(warnings)
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: affordance grounding",
            message=message,
            hardware_id=self.predictor.describe() if self.predictor is not None else "",
            values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)


def main(argv: list[str] | None = None) -> int:
    # OpenMP worker threads that sleep instead of spinning when idle: on a robot computer
    # shared with drivers and planners, spinning OpenMP threads made each inference
    # several times slower (torch is imported later, when the model loads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    rclpy.init(args=argv if argv is not None else sys.argv)
    # a parameter from --params-file / -p refused: one line naming it, status 2
    return run_node(AvagNode, lambda node: node._stop_worker(), name="avag_node")


if __name__ == "__main__":
    sys.exit(main())
