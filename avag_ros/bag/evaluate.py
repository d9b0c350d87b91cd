"""`avag bag eval`: replay a bag offline (deterministic) or live through the real node
over DDS, score the detections against the bag's ground truth and write a report.

Live mode starts three processes in the caller's ROS domain: the recorder (node outputs
-> a bag), the perception node and the player (bag -> topics at the recorded pace, with
/clock). Its report also compares live with offline: the same events must be detected
and their function masks must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.errors import AvagError
from avag_ros.bag.report import Scored, score, truth_from_msgs, write_report

NODE = "/avag_node"
LIVE_TOPICS = {
    f"{NODE}/detection": "avag/msg/AffordanceDetection",
    f"{NODE}/function_prob": "sensor_msgs/msg/Image",
    f"{NODE}/dependency_prob": "sensor_msgs/msg/Image",
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
        classes = {}
        for c in conns:
            try:
                classes[c.topic] = get_message_class(c.msgtype)
            except ValueError as exc:
                raise AvagError(f"bag {bag}: topic {c.topic}: {exc}") from None
        for conn, t, raw in reader.messages(connections=conns):
            out.setdefault(conn.topic, []).append((t, deserialize_message(bytes(raw), classes[conn.topic])))
    except AvagError:
        raise
    except Exception as exc:
        raise AvagError(f"bag {bag} is truncated or corrupt: {str(exc).splitlines()[0] or type(exc).__name__}") from None
    finally:
        reader.close()
    return out


def scored_from_live(recorded: dict[str, list[tuple[int, Any]]], frames: dict[int, Any],
                     pre_roll_s: float) -> list[Scored]:
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
            onset_ns=start + round(pre_roll_s * 1e9), start_ns=start, end_ns=stamp_to_ns(m.event_end),
            frame_stamp_ns=stamp, function_prob=fprobs.get(stamp, fmask.astype(np.float32)),
            dependency_prob=dprobs.get(stamp, dmask.astype(np.float32)), function_mask=fmask, dependency_mask=dmask,
            rgb=image_to_rgb(frames[stamp]) if stamp in frames else None, inference_ms=m.inference_ms,
            points=points, colors=colors, probability=probability,
        ))
    return out


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def run_live(bag: Path, checkpoint: Path, work: Path, device: str = "cpu", rate: float = 1.0,
             timeout_s: float = 600.0) -> Path:
    """Play ``bag`` into a fresh avag_node process; returns the bag of its outputs."""
    work.mkdir(parents=True, exist_ok=True)
    out_bag = work / "node_outputs"
    if out_bag.exists():
        import shutil

        shutil.rmtree(out_bag)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("ROS_LOG_DIR", str(work / "ros_log"))
    topics = [a for t, ty in LIVE_TOPICS.items() for a in ("--topic", f"{t}:{ty}")]
    rec = _start(["-m", "avag_ros.bag.recorder", "--out", str(out_bag), *topics], env, work / "recorder.log")
    # The node works from header stamps, so wall time is fine for it; /clock is still
    # published for sim-time tools (rviz2). rclpy nodes on sim time lose input under load
    # (see player.py), so the node under test does not use it.
    node = _start(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={checkpoint}",
                   "-p", f"device:={device}"], env, work / "node.log")
    procs = [rec, node]
    try:
        player = _start(["-m", "avag_ros.bag.player", str(bag), "--clock", "20", "--rate", str(rate),
                         "--wait-for", "/camera/color/image_raw", "/audio/audio", "--delay", "1.0"],
                        env, work / "player.log")
        procs.append(player)
        try:
            player.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AvagError(f"live replay did not finish within {timeout_s:.0f} s (see {work}/player.log)") from None
        if player.returncode != 0:
            raise AvagError(f"bag player failed: {(work / 'player.log').read_text().strip().splitlines()[-1:]}")
        if node.poll() is not None:
            raise AvagError(f"avag_node exited early (see {work}/node.log)")
        time.sleep(2.0)  # the last event ends (release time) and its detection arrives
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(2)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return out_bag


def evaluate_bag(bag: Path, checkpoint: Path, out_dir: Path, live: bool = False, device: str = "cpu",
                 rate: float = 1.0) -> dict[str, Any]:
    from avag_core.predictor import Predictor
    from avag_ros.bag.replay import replay_offline
    from avag_ros.params import NodeConfig

    cfg = NodeConfig()
    if not Path(checkpoint).exists():
        raise AvagError(f"checkpoint {checkpoint} does not exist")
    # camera frames are only needed to draw the live detections' overlays
    inputs = read_topics(bag, {cfg.image_topic, "/avag/ground_truth"} if live else {"/avag/ground_truth"})
    truth = truth_from_msgs([m for _t, m in inputs.get("/avag/ground_truth", [])])
    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    offline = replay_offline(bag, predictor, cfg)
    offline_scored = [scored_from_detection(d) for d in offline.detections]
    result = {"bag": str(bag), "checkpoint": str(checkpoint), "mode": "live" if live else "offline",
              "offline": score(offline_scored, truth)}
    result["offline"]["bad_messages"] = offline.bad_messages
    scored, report = offline_scored, result["offline"]
    if live:
        from avag_ros.conversions import stamp_to_ns

        frames = {stamp_to_ns(m.header.stamp): m for _t, m in inputs.get(cfg.image_topic, [])}
        recorded = read_topics(run_live(bag, Path(checkpoint), out_dir / "live", device, rate))
        scored = scored_from_live(recorded, frames, cfg.events.pre_roll_s)
        report = result["live"] = score(scored, truth)
        result["live_vs_offline"] = compare(scored, offline_scored)
    result["report"] = str(write_report(out_dir, report, scored, truth, f"avag replay of {Path(bag).name}"))
    summary = {k: v for k, v in result.items() if k not in ("offline", "live")}
    summary["offline"] = {k: v for k, v in result["offline"].items() if k != "records"}
    if live:
        summary["live"] = {k: v for k, v in result["live"].items() if k != "records"}
    import json

    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float).replace("NaN", "null"))
    return result


def compare(live: list[Scored], offline: list[Scored], tolerance_s: float = 0.1) -> dict[str, Any]:
    """Same events (onsets within ``tolerance_s``, one to one) and the function-mask IoU of
    each pair. Live may analyse the neighbouring camera frame when message arrival order
    moves the detected onset by a frame; the masks must still agree."""
    tol = round(tolerance_s * 1e9)
    pairs, used = [], set()
    for d in live:
        best = min((j for j in range(len(offline)) if j not in used),
                   key=lambda j: abs(offline[j].onset_ns - d.onset_ns), default=None)
        if best is not None and abs(offline[best].onset_ns - d.onset_ns) <= tol:
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
        "mask_iou_min": min(ious) if ious else float("nan"),
        "mask_iou_mean": float(np.mean(ious)) if ious else float("nan"),
    }
