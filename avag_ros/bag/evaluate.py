"""`avag bag eval`: replay a bag offline (deterministic) or live through the real node
over DDS, score the detections against the bag's ground truth and write a report.

Live mode starts three processes in the caller's ROS domain: the recorder (node outputs
-> a bag), the perception node and the player (bag -> topics at the recorded pace, with
/clock). Its report also compares live with offline: the same events must be detected
and their function masks must agree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.errors import AvagError
from avag_ros.bag.report import Scored, score, truth_from_msgs, write_report
from avag_ros.dds_profile import use_single_host_profile
from avag_ros.params import NodeConfig

NODE = "/avag_node"
LIVE_TOPICS = {
    f"{NODE}/detection": "avag/msg/AffordanceDetection",
    f"{NODE}/function_prob": "sensor_msgs/msg/Image",
    f"{NODE}/dependency_prob": "sensor_msgs/msg/Image",
    f"{NODE}/rejected_events": "avag/msg/RejectedEvent",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


def scored_from_detection(det: Any) -> Scored:
    geo = det.geometry
    return Scored(
        onset_ns=round(det.event.onset_time * 1e9), start_ns=round(det.event.start_time * 1e9),
        end_ns=round(det.event.end_time * 1e9), frame_stamp_ns=det.frame_stamp_ns,
        function_prob=det.function_prob, dependency_prob=det.dependency_prob,
        function_mask=det.function_mask, dependency_mask=det.dependency_mask, rgb=det.rgb,
        inference_ms=det.inference_ms, points=geo.points, colors=geo.colors, probability=geo.probability,
        extra=dict(det.timings),
    )


def read_topics(bag: Path, topics: set[str] | None = None) -> dict[str, list[tuple[int, Any]]]:
    """{topic: [(log time, message)]}, deserialized with rclpy; one-line errors for bad bags."""
    from rclpy.serialization import deserialize_message

    from avag_ros.bag.player import open_bag
    from avag_ros.msg_types import get_message_class

    reader = open_bag(bag)
    out: dict[str, list[tuple[int, Any]]] = {}
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:  # rosbags reads every connection when given none
            return out
        classes = {}
        for c in conns:
            try:
                classes[c.topic] = get_message_class(c.msgtype)
            except ValueError as exc:
                raise AvagError(f"bag {bag}: topic {c.topic}: {exc}") from None
        for conn, t, raw in reader.messages(connections=conns):
            try:
                msg = deserialize_message(bytes(raw), classes[conn.topic])
            except Exception:  # rclpy raises RMWError (not importable by name everywhere)
                raise AvagError(
                    f"bag {bag}: topic {conn.topic}: a {conn.msgtype} message does not decode with this "
                    "avag's message definition (recorded by another avag version, or damaged)") from None
            out.setdefault(conn.topic, []).append((t, msg))
    except AvagError:
        raise
    except Exception as exc:
        raise AvagError(f"bag {bag} is truncated or corrupt: {str(exc).splitlines()[0] or type(exc).__name__}") from None
    finally:
        reader.close()
    return out


def scored_from_live(recorded: dict[str, list[tuple[int, Any]]], frames: dict[int, Any]) -> list[Scored]:
    """Detections recorded from the live node (masks from the message, probabilities from
    ~/function_prob and ~/dependency_prob when recorded, the analysed frame from the input
    bag by stamp): the live report then scores max-F exactly as the offline one does."""
    from avag_ros.conversions import (
        image_to_numpy,
        image_to_rgb,
        pointcloud2_to_numpy,
        stamp_to_ns,
        unpack_rgb,
    )

    def probs(name: str) -> dict[int, np.ndarray]:
        return {stamp_to_ns(m.header.stamp): image_to_numpy(m) for _t, m in recorded.get(f"{NODE}/{name}", [])}

    fprobs, dprobs = probs("function_prob"), probs("dependency_prob")
    out = []
    for _t, m in recorded.get(f"{NODE}/detection", []):
        stamp = stamp_to_ns(m.header.stamp)
        fmask = image_to_numpy(m.function_mask) > 0
        dmask = image_to_numpy(m.dependency_mask) > 0
        points = colors = probability = None
        if m.grasp_region.width:
            pts = pointcloud2_to_numpy(m.grasp_region)
            points = np.stack([pts["x"], pts["y"], pts["z"]], 1)
            colors = unpack_rgb(pts["rgb"])
            probability = pts["probability"]
        start = stamp_to_ns(m.event_start)
        out.append(Scored(
            onset_ns=stamp_to_ns(m.event_onset), start_ns=start, end_ns=stamp_to_ns(m.event_end),
            frame_stamp_ns=stamp, function_prob=fprobs.get(stamp, fmask.astype(np.float32)),
            dependency_prob=dprobs.get(stamp, dmask.astype(np.float32)), function_mask=fmask, dependency_mask=dmask,
            rgb=image_to_rgb(frames[stamp]) if stamp in frames else None, inference_ms=m.inference_ms,
            points=points, colors=colors, probability=probability,
        ))
    return out


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def node_settled(rec: Any, expected_events: int) -> bool:
    """The node has handled every event it will (as many as the offline replay found),
    each one run or counted as missed, and the recorder holds all its detections."""
    d = rec.diag_int
    events = d("pipeline.events")
    handled = d("pipeline.detections") + d("pipeline.no_frame") + d("pipeline.nonfinite_outputs") + d(
        "input.dropped_events") + d("input.rejected_events")
    published = d("input.detections_published")
    return (events >= expected_events and handled >= events and published >= d("pipeline.detections")
            and rec.counts.get(f"{NODE}/detection", 0) >= published)


class LiveRun:
    """A fresh avag_node process recording what it publishes, started on entering so that
    its start-up (imports, model, sessions) overlaps whatever the caller does meanwhile
    (making the bag). ``start`` plays a bag into it (the player waits for the node's
    subscriptions, so nothing is played before the node listens), ``wait_listening`` lets
    the caller's next work (the offline replay) wait for the node's start-up, ``finish``
    waits for the node to settle; ``play`` is ``start`` + ``finish``."""

    def __init__(self, cfg: NodeConfig, work: Path, node_args: list[str], rate: float = 1.0,
                 timeout_s: float = 600.0, topics: dict[str, str] | None = None) -> None:
        self.cfg, self.work, self.rate, self.timeout_s = cfg, work, rate, timeout_s
        self.node_args, self.topics = node_args, topics or LIVE_TOPICS
        self.out_bag = work / "node_outputs"
        self._procs: list[subprocess.Popen] = []
        self._rec: Any = None

    def __enter__(self) -> LiveRun:
        from avag_ros.bag.recorder import LiveRecording

        self.work.mkdir(parents=True, exist_ok=True)
        if self.out_bag.exists():
            import shutil

            shutil.rmtree(self.out_bag)
        self._env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._env.setdefault("ROS_LOG_DIR", str(self.work / "ros_log"))
        use_single_host_profile(self._env)  # as the launch files do (unless the user chose a profile)
        self._rec = LiveRecording(self.out_bag, list(self.topics.items()), watch=NODE).__enter__()
        try:
            # The node works from header stamps, so wall time is fine for it; /clock is
            # still published for sim-time tools (rviz2).
            self._procs.append(_start(["-m", "avag_ros.nodes.avag_node", "--ros-args", *self.node_args], self._env,
                                      self.work / "node.log"))
        except BaseException:
            self.close()
            raise
        return self

    def play(self, bag: Path, expected_events: int) -> Path:
        """``start`` then ``finish``."""
        self.start(bag)
        return self.finish(expected_events)

    def start(self, bag: Path) -> None:
        """Start playing the bag (the player waits until the node subscribes), so that the
        caller can work meanwhile (the offline replay that tells ``finish`` what to expect)."""
        cfg = self.cfg
        inputs = [cfg.image_topic, cfg.audio_topic] + ([cfg.depth_topic, cfg.camera_info_topic] if cfg.use_depth else [])
        try:
            self._procs.append(_start(["-m", "avag_ros.bag.player", str(bag), "--clock", "20", "--rate",
                                       str(self.rate), "--topics", *inputs, "--wait-for", cfg.image_topic,
                                       cfg.audio_topic, "--delay", "1.0",
                                       # the node may take minutes (a first TensorRT engine build)
                                       "--wait-timeout", str(self.timeout_s)], self._env, self.work / "player.log"))
        except BaseException:
            self.close()
            raise

    def wait_listening(self) -> None:
        """Return once the node subscribes to the camera and the microphone (its start-up
        done), so that the caller's next work does not take the CPU from that start-up."""
        from diagnostic_msgs.msg import DiagnosticStatus

        rec, node, cfg = self._rec, self._procs[0], self.cfg

        def failed() -> bool:  # e.g. a checkpoint it cannot read: the node stays up, unconfigured
            status = rec.diagnostic_status
            return status is not None and status.level == DiagnosticStatus.ERROR

        rec.wait_until(lambda: node.poll() is not None or failed() or all(
            rec.recorder.count_subscribers(t) > 0 for t in (cfg.image_topic, cfg.audio_topic)), self.timeout_s)
        if node.poll() is not None or failed():
            why = rec.diagnostic_status.message if failed() else f"it exited (see {self.work}/node.log)"
            self.close()
            raise AvagError(f"avag_node did not start: {why}")

    def finish(self, expected_events: int) -> Path:
        """Wait for the player; end when the node reports (on /diagnostics) that it has
        handled ``expected_events`` events and the recorder holds all their detections, or
        once the last event could have ended if it never does (the report then shows what is
        missing). Returns the bag of the node's outputs, closed."""
        if len(self._procs) < 2:
            raise AvagError("LiveRun.finish() needs start() first")
        cfg, work, rec = self.cfg, self.work, self._rec
        node, player = self._procs[0], self._procs[-1]
        try:
            try:
                player.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                raise AvagError(f"live replay did not finish within {self.timeout_s:.0f} s (see {work}/player.log)") from None
            if player.returncode != 0:
                tail = (work / "player.log").read_text().strip().splitlines()[-1:]
                raise AvagError(f"bag player failed: {tail[0] if tail else player.returncode}")
            settle_s = cfg.events.release_s + cfg.events.max_event_s + 5.0
            rec.wait_until(lambda: node.poll() is not None or node_settled(rec, expected_events), settle_s)
            if node.poll() is not None:
                raise AvagError(f"avag_node exited early (see {work}/node.log)")
        finally:
            self.close()
        return self.out_bag

    def close(self) -> None:
        """Stop the processes (SIGINT, then kill) and close the recording; idempotent."""
        for p in reversed(self._procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self._procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        self._procs = []
        if self._rec is not None:
            rec, self._rec = self._rec, None
            rec.__exit__(None, None, None)

    def __exit__(self, *exc: Any) -> None:
        self.close()


def eval_config(checkpoint: Path | None, device: str | None, params_file: Path | None,
                overrides: list[str] | None) -> tuple[NodeConfig, list[str]]:
    """The node's settings for a replay (``params_file`` + ``overrides`` + checkpoint and
    device), and the same as ROS arguments for a live node."""
    from avag_ros.param_files import node_config, node_ros_args

    overrides = list(overrides or [])
    if checkpoint is not None:
        overrides.append(f"checkpoint={checkpoint}")
    if device is not None:
        overrides.append(f"device={device}")
    cfg = node_config(params_file, overrides)
    if cfg.checkpoint and not Path(cfg.checkpoint).exists():
        raise AvagError(f"checkpoint {cfg.checkpoint} does not exist")
    return cfg, node_ros_args(params_file, overrides)


def evaluate_bag(bag: Path, checkpoint: Path | None, out_dir: Path, live: bool = False, device: str | None = None,
                 rate: float = 1.0, params_file: Path | None = None, overrides: list[str] | None = None,
                 live_run: LiveRun | None = None) -> dict[str, Any]:
    """Offline replay (and with ``live`` the real node over DDS) of ``bag`` with the node's
    settings (``params_file`` + ``overrides``), scored against the bag's ground truth.
    ``live_run``: a node the caller started earlier with the same settings (``eval_config``)."""
    from avag_ros.adapter import load_predictor
    from avag_ros.bag.replay import replay_offline

    cfg, node_args = eval_config(checkpoint, device, params_file, overrides)
    live = live or live_run is not None
    # camera frames are only needed to draw the live detections' overlays
    inputs = read_topics(bag, {cfg.image_topic, "/avag/ground_truth"} if live else {"/avag/ground_truth"})
    truth = truth_from_msgs([m for _t, m in inputs.get("/avag/ground_truth", [])])
    if live_run is not None:  # started (and stopped) by the caller
        running: Any = contextlib.nullcontext(live_run)
    elif live:  # the node starts now; the offline replay runs while the bag plays into it
        running = LiveRun(cfg, out_dir / "live", node_args, rate)
    else:
        running = contextlib.nullcontext()
    with running as run:
        if run is not None:  # the bag plays in real time while the offline replay runs here
            run.start(bag)
            run.wait_listening()
        offline = replay_offline(bag, load_predictor(cfg), cfg)
        live_dets, live_rejected = offline.live_comparable()
        out_bag = run.finish(len(live_dets) + len(live_rejected)) if run is not None else None
    offline_scored = [scored_from_detection(d) for d in offline.detections]
    offline_rejected_ns = [round(r.event.onset_time * 1e9) for r in offline.rejected]
    result = {"bag": str(bag), "checkpoint": cfg.checkpoint or "shipped", "mode": "live" if live else "offline",
              "offline": score(offline_scored, truth, rejected_ns=offline_rejected_ns)}
    result["offline"]["bad_messages"] = offline.bad_messages
    result["offline"]["missing_clouds"] = missing_clouds(offline.detections, cfg.min_mask_pixels)
    result["offline"]["rejected"] = [rejected_summary(r) for r in offline.rejected]
    scored, report = offline_scored, result["offline"]
    if live:
        from avag_ros.conversions import stamp_to_ns

        frames = {stamp_to_ns(m.header.stamp): m for _t, m in inputs.get(cfg.image_topic, [])}
        recorded = read_topics(out_bag)
        scored = scored_from_live(recorded, frames)
        rejected_live = [m for _t, m in recorded.get(f"{NODE}/rejected_events", [])]
        report = result["live"] = score(scored, truth,
                                        rejected_ns=[stamp_to_ns(m.header.stamp) for m in rejected_live])
        result["live_vs_offline"] = compare(scored, [sc for sc, d in zip(offline_scored, offline.detections, strict=True)
                                                     if d.event not in offline.ended_by_bag_end])
        result["live_vs_offline"]["ended_by_bag_end"] = len(offline.ended_by_bag_end)
        result["live"]["rejected"] = [{"onset_s": stamp_to_ns(m.header.stamp) / 1e9, "label": m.top_label,
                                       "confidence": m.top_confidence} for m in rejected_live]
        result["live_vs_offline"]["rejected_live"] = len(result["live"]["rejected"])
        result["live_vs_offline"]["rejected_offline"] = len(live_rejected)
    result["failures"] = judge(result)
    result["report"] = str(write_report(out_dir, report, scored, truth, f"avag replay of {Path(bag).name}"))
    summary = {k: v for k, v in result.items() if k not in ("offline", "live")}
    summary["offline"] = {k: v for k, v in result["offline"].items() if k != "records"}
    if live:
        summary["live"] = {k: v for k, v in result["live"].items() if k != "records"}
    import json

    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float).replace("NaN", "null"))
    return result


def rejected_summary(r: Any) -> dict[str, Any]:
    return {"onset_s": r.event.onset_time, "label": r.heard.label, "confidence": r.heard.confidence}


def missing_clouds(detections: list[Any], min_mask_pixels: int) -> int:
    """Detections that had depth and intrinsics and a large enough function mask, yet no
    grasp-region points: the robot path is broken for them."""
    return sum(d.has_depth and int(d.function_mask.sum()) >= min_mask_pixels and d.geometry.points.shape[0] == 0
               for d in detections)


def judge(result: dict[str, Any], min_mask_iou: float = 0.95) -> list[str]:
    """One-line reasons why this replay is not a working robot loop (empty: it is).

    Offline: a cloud missing where depth exists. Live: an event the offline replay found
    but the node did not, an extra one, a function mask that disagrees with offline, or a
    cloud missing where the offline replay of the same event has one."""
    reasons = []
    off = result["offline"]
    if off.get("missing_clouds"):
        reasons.append(f"offline: {off['missing_clouds']} detection(s) with depth but no grasp-region points")
    cmp = result.get("live_vs_offline")
    if cmp is not None:
        if cmp["matched_events"] < cmp["offline_events"]:
            reasons.append(f"live missed {cmp['offline_events'] - cmp['matched_events']} of "
                           f"{cmp['offline_events']} events the offline replay detected")
        if cmp["live_events"] > cmp["matched_events"]:
            reasons.append(f"live detected {cmp['live_events'] - cmp['matched_events']} event(s) "
                           "the offline replay did not")
        if cmp["matched_events"] and not cmp["mask_iou_min"] >= min_mask_iou:
            reasons.append(f"live and offline function masks disagree (IoU min {cmp['mask_iou_min']:.3f} "
                           f"< {min_mask_iou})")
        if cmp.get("rejected_live", 0) != cmp.get("rejected_offline", 0):
            reasons.append(f"live rejected {cmp['rejected_live']} sound(s) as not actions, offline "
                           f"{cmp['rejected_offline']}")
        if cmp.get("missing_clouds"):
            reasons.append(f"live: {cmp['missing_clouds']} detection(s) without the grasp region "
                           "the offline replay has")
    return reasons


def compare(live: list[Scored], offline: list[Scored], tolerance_s: float = 0.1) -> dict[str, Any]:
    """Same events (starts within ``tolerance_s``, one to one) and the function-mask IoU of
    each pair. Events are paired by their start (``event_start``, what the node publishes):
    the onset can lie later than start + pre-roll (a louder onset re-times an event that a
    background sound began), so it cannot be recovered from the message. Live may analyse
    the neighbouring camera frame when message arrival order moves the detected onset by a
    frame; the masks must still agree."""
    tol = round(tolerance_s * 1e9)
    pairs, used = [], set()
    for d in live:
        best = min((j for j in range(len(offline)) if j not in used),
                   key=lambda j: abs(offline[j].start_ns - d.start_ns), default=None)
        if best is not None and abs(offline[best].start_ns - d.start_ns) <= tol:
            used.add(best)
            pairs.append((d, offline[best]))
    ious = []
    for d, ref in pairs:
        union = (d.function_mask | ref.function_mask).sum()
        ious.append(float((d.function_mask & ref.function_mask).sum() / union) if union else 1.0)
    return {
        "live_events": len(live),
        "offline_events": len(offline),
        "matched_events": len(pairs),
        "same_frames": sum(d.frame_stamp_ns == ref.frame_stamp_ns for d, ref in pairs),
        "same_events": len(pairs) == len(live) == len(offline),
        "missing_clouds": sum((ref.points is not None and ref.points.shape[0] > 0)
                              and (d.points is None or d.points.shape[0] == 0) for d, ref in pairs),
        "mask_iou_min": min(ious) if ious else float("nan"),
        "mask_iou_mean": float(np.mean(ious)) if ious else float("nan"),
    }
