"""Node settings: one dataclass is the source of truth, ROS parameters mirror it.

Every field of ``NodeConfig`` (and of the nested ``EventConfig``, under ``events.``)
becomes a ROS parameter with the same name and default, so the YAML file in
``config/avag.yaml``, ``--ros-args -p`` and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from avag_core.events import EventConfig


@dataclass
class NodeConfig:
    # --- model ---
    checkpoint: str = ""  # empty = the checkpoint shipped with avag
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"; cuda falls back to cpu with a warning
    fp16: bool = False  # fp16 autocast on CUDA
    # --- thresholds (reconfigurable at run time) ---
    function_threshold: float = 0.5
    dependency_threshold: float = 0.5
    min_mask_pixels: int = 20  # smaller function masks publish no point cloud / pose
    # --- inputs ---
    image_topic: str = "/camera/color/image_raw"
    compressed: bool = False  # subscribe to sensor_msgs/CompressedImage on image_topic
    depth_topic: str = "/camera/aligned_depth_to_color/image_raw"
    camera_info_topic: str = "/camera/color/camera_info"
    use_depth: bool = True
    audio_topic: str = "/audio/audio"
    audio_type: str = "avag"  # avag (AudioFrame) | audio_common (ros-drivers) | audio_common_stamped (mgonzs13)
    audio_info_topic: str = "/audio/audio_info"  # ros-drivers AudioInfo (audio_type=audio_common)
    image_qos_reliability: str = "best_effort"
    # Sensor-data QoS (best effort, volatile) with a queue of 15 instead of 5: callbacks only
    # store a reference, so a deeper queue is no backlog, and it keeps the frames near a
    # sound onset when the executor stalls (a busy CPU) for up to ~0.5 s.
    image_qos_depth: int = 15
    depth_qos_reliability: str = "best_effort"
    depth_qos_depth: int = 15
    audio_qos_reliability: str = "best_effort"
    audio_qos_depth: int = 50
    # --- caches and timing ---
    depth_cache_size: int = 30
    depth_max_gap_s: float = 0.1  # depth further than this from the image stamp is not used
    stale_after_s: float = 2.0  # inputs silent this long are reported stale in diagnostics
    # --- outputs ---
    voxel_size: float = 0.0  # metres; 0 = no downsampling of the grasp region
    max_depth_m: float = 5.0
    marker_lifetime_s: float = 2.0
    overlay_alpha: float = 0.5
    diagnostics_period_s: float = 1.0
    autostart: bool = True  # configure + activate on start (no lifecycle manager needed)
    events: EventConfig = field(default_factory=EventConfig)

    RECONFIGURABLE = ("function_threshold", "dependency_threshold", "min_mask_pixels",
                      "overlay_alpha", "voxel_size", "max_depth_m", "marker_lifetime_s")


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def declare(node: Any, defaults: NodeConfig | None = None) -> None:
    for name, value in flatten(defaults or NodeConfig()).items():
        node.declare_parameter(name, value)


def read(node: Any) -> NodeConfig:
    """Current parameter values -> NodeConfig (validated)."""
    values = {name: node.get_parameter(name).value for name in flatten(NodeConfig())}
    return build(values)


def build(values: dict[str, Any]) -> NodeConfig:
    events = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("events.")}
    top = {k: v for k, v in values.items() if not k.startswith("events.")}
    cfg = NodeConfig(**top, events=EventConfig(**events).validate())
    for name in ("image_qos_reliability", "depth_qos_reliability", "audio_qos_reliability"):
        if getattr(cfg, name) not in ("best_effort", "reliable"):
            raise ValueError(f"parameter {name} must be best_effort or reliable")
    if cfg.audio_type not in ("avag", "audio_common", "audio_common_stamped"):
        raise ValueError("parameter audio_type must be avag, audio_common or audio_common_stamped")
    return cfg


def to_ros_yaml(cfg: NodeConfig | None = None, node_name: str = "avag_node") -> str:
    """A ROS 2 parameters file for ``cfg`` (config/avag.yaml is generated from this)."""
    import yaml

    values = dataclasses.asdict(cfg or NodeConfig())
    return yaml.safe_dump({node_name: {"ros__parameters": values}}, sort_keys=False)


if __name__ == "__main__":
    print(to_ros_yaml(), end="")
