"""Deterministic offline replay of a bag through the node's own pipeline.

Messages are fed to ``GroundingPipeline`` in bag order exactly as the node's callbacks
feed it (same conversions, same event detector, same frame matching), and every event
is run synchronously, so the result does not depend on machine speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avag_core.errors import AvagError
from avag_core.pipeline import Detection, GroundingPipeline, Thresholds
from avag_ros import audio_inputs
from avag_ros.params import NodeConfig


@dataclass
class ReplayResult:
    detections: list[Detection]
    ground_truth: list[Any]  # AffordanceDetection messages from the bag's truth topic
    bad_messages: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


def make_pipeline(predictor: Any, cfg: NodeConfig) -> GroundingPipeline:
    from avag_ros.conversions import image_to_numpy
    from avag_ros.nodes.avag_node import decode_frame

    return GroundingPipeline(
        predictor,
        cfg.events,
        decode_frame=decode_frame,
        decode_depth=image_to_numpy,
        depth_cache_size=cfg.depth_cache_size,
        depth_max_gap_s=cfg.depth_max_gap_s,
        thresholds=Thresholds(cfg.function_threshold, cfg.dependency_threshold, cfg.min_mask_pixels,
                              cfg.voxel_size, cfg.max_depth_m),
    )


def _checked(messages: Any, bag: Path) -> Any:
    """Re-raise the reader's own failures (truncated/corrupt file) as one-line errors."""
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:
            raise AvagError(f"bag {bag} is truncated or corrupt: {str(exc).splitlines()[0] or type(exc).__name__}") from None
        yield item


def replay_offline(
    bag: Path, predictor: Any, cfg: NodeConfig | None = None, truth_topic: str = "/avag/ground_truth"
) -> ReplayResult:
    from rclpy.serialization import deserialize_message

    from avag_ros.bag.player import open_bag
    from avag_ros.conversions import camera_info_to_k, stamp_to_ns
    from avag_ros.msg_types import get_message_class

    cfg = cfg or NodeConfig()
    pipeline = make_pipeline(predictor, cfg)
    reader = open_bag(bag)
    wanted = {cfg.image_topic, cfg.audio_topic, truth_topic}
    if cfg.use_depth:
        wanted |= {cfg.depth_topic, cfg.camera_info_topic}
    conns = [c for c in reader.connections if c.topic in wanted]
    classes = {}
    for c in conns:
        try:
            classes[c.topic] = get_message_class(c.msgtype)
        except ValueError as exc:
            reader.close()
            raise AvagError(f"bag {bag}: {exc}") from None
    present = {c.topic for c in reader.connections}
    for required in (cfg.image_topic, cfg.audio_topic):
        if required not in present:
            reader.close()
            raise AvagError(f"bag {bag} has no {required} topic (topics: {', '.join(sorted(present))})")
    detections: list[Detection] = []
    truth: list[Any] = []
    bad: dict[str, int] = {}
    messages = reader.messages(connections=conns)
    try:
        for conn, _t, raw in _checked(messages, bag):
            try:
                msg = deserialize_message(bytes(raw), classes[conn.topic])
                if conn.topic == truth_topic:
                    truth.append(msg)
                elif conn.topic == cfg.image_topic:
                    pipeline.push_frame(stamp_to_ns(msg.header.stamp), msg, msg.header)
                elif conn.topic == cfg.depth_topic:
                    pipeline.push_depth(stamp_to_ns(msg.header.stamp), msg)
                elif conn.topic == cfg.camera_info_topic:
                    K, size = camera_info_to_k(msg)
                    pipeline.set_intrinsics(K, size)
                elif conn.topic == cfg.audio_topic:
                    samples, rate = audio_inputs.to_numpy(msg, cfg.audio_type)
                    for event in pipeline.push_audio(samples, stamp_to_ns(msg.header.stamp), rate):
                        det = pipeline.run(event)
                        if det is not None:
                            detections.append(det)
            except Exception as exc:  # count like the node does, keep going
                key = f"{conn.topic}: {type(exc).__name__}"
                bad[key] = bad.get(key, 0) + 1
        for event in pipeline.flush_audio():
            det = pipeline.run(event)
            if det is not None:
                detections.append(det)
        duration = (reader.end_time - reader.start_time) / 1e9 if reader.message_count else 0.0
    finally:
        reader.close()
    return ReplayResult(detections, truth, bad, duration)
