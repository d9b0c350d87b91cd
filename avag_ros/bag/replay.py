"""Deterministic offline replay of a bag through the node's own pipeline.

Messages are fed in bag order through the node's own ``GroundingAdapter`` (same
validation, conversions, event detector, frame matching and counters), and every event
is run synchronously, so the result does not depend on machine speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avag_core.errors import AvagError
from avag_core.pipeline import Detection
from avag_ros.params import NodeConfig


@dataclass
class ReplayResult:
    detections: list[Detection]
    ground_truth: list[Any]  # AffordanceDetection messages from the bag's truth topic
    bad_messages: dict[str, int] = field(default_factory=dict)  # refusals by kind, as the node counts them
    duration_s: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)  # the adapter's counters at the end
    rejected: list[Any] = field(default_factory=list)  # RejectedSound: heard, not an action (no masks)
    # events still sounding when the bag ended, closed by the replay's end-of-input flush: a
    # live node never sees the stream end, so it cannot report them
    ended_by_bag_end: set[Any] = field(default_factory=set)

    def live_comparable(self) -> tuple[list[Detection], list[Any]]:
        """Detections and rejections a live node playing the same bag can also produce."""
        return ([d for d in self.detections if d.event not in self.ended_by_bag_end],
                [r for r in self.rejected if r.event not in self.ended_by_bag_end])


def replay_offline(
    bag: Path, predictor: Any, cfg: NodeConfig | None = None, truth_topic: str = "/avag/ground_truth",
    warn: Any = None,
) -> ReplayResult:
    """Every detection the node would make on ``bag`` with settings ``cfg``."""
    from rclpy.serialization import deserialize_message

    from avag_ros.adapter import GroundingAdapter, RejectedSound, load_recognizer
    from avag_ros.bag.player import checked_messages, open_bag
    from avag_ros.msg_types import get_message_class

    cfg = cfg or NodeConfig()
    quiet = warn or (lambda _msg: None)
    adapter = GroundingAdapter(cfg, predictor, quiet, load_recognizer(cfg, quiet))
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
    rejected: list[RejectedSound] = []
    truth: list[Any] = []

    def run(jobs: list) -> None:
        for event, audio in jobs:
            det = adapter.run(event, audio)
            if isinstance(det, RejectedSound):
                rejected.append(det)
            elif det is not None:
                detections.append(det)

    messages = reader.messages(connections=conns)
    try:
        for conn, _t, raw in checked_messages(messages, bag):
            try:
                msg = deserialize_message(bytes(raw), classes[conn.topic])
            except Exception as exc:  # count like the node would never see it
                adapter.refuse(f"undecodable:{conn.topic}", f"{type(exc).__name__}: {exc}")
                continue
            if conn.topic == truth_topic:
                truth.append(msg)
            elif conn.topic == cfg.image_topic:
                adapter.on_image(msg)
            elif conn.topic == cfg.depth_topic:
                adapter.on_depth(msg)
            elif conn.topic == cfg.camera_info_topic:
                adapter.on_camera_info(msg)
            elif conn.topic == cfg.audio_topic:
                run(adapter.on_audio(msg))
        flushed = adapter.flush()
        run(flushed)
        duration = (reader.end_time - reader.start_time) / 1e9 if reader.message_count else 0.0
    finally:
        reader.close()
    bad = {k: v for k, v in adapter.counters.items() if k.startswith(("bad_", "undecodable:", "audio_"))}
    return ReplayResult(detections, truth, bad, duration, adapter.diagnostics(), rejected,
                        {event for event, _audio in flushed})
