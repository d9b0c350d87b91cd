"""Node settings: one dataclass is the source of truth, ROS parameters mirror it.

Every field of ``NodeConfig`` (and of the nested ``EventConfig``, under ``events.``) is
declared with :func:`avag_core.settings.setting`: its default, description, range or
choices, and whether it may change at run time. From that one place come the ROS
parameters with their ``ParameterDescriptor`` (``ros2 param describe`` shows description
and range; out-of-range and wrong-type values are refused with a reason), the shipped
``config/avag.yaml`` (keyed ``/**`` so it applies under any node name and namespace, one
comment per parameter) and the README parameter table:

    python -m avag_ros.params > config/avag.yaml
    python -m avag_ros.params --markdown
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

from avag_core.backends import BACKENDS, DTYPES
from avag_core.events import EventConfig
from avag_core.settings import SettingInfo, info_of, setting

INT64_MAX = 2**63 - 1
RELIABILITY = ("best_effort", "reliable")
AUDIO_TYPES = ("avag", "audio_common", "audio_common_stamped")
DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")


@dataclass
class NodeConfig:
    # --- model ---
    checkpoint: str = setting("", "model checkpoint (.safetensors); empty = the checkpoint shipped with avag")
    device: str = setting("cpu", "torch device; cuda falls back to cpu with a warning")
    fp16: bool = setting(False, "fp16 autocast on CUDA")
    backend: str = setting(
        "auto", "inference backend: auto (onnxruntime on a CPU where it is installed: about half torch's "
        "latency there; torch on CUDA), torch (PyTorch), cudagraph (torch on CUDA, each part replayed from a CUDA "
        "graph captured on first use: no per-kernel launch cost), inductor (CPU: compiled once by TorchInductor "
        "into ~/.cache/avag/inductor, minutes on first start; fastest for the paper preset), onnxruntime "
        "(CPU or CUDA provider), tensorrt (onnxruntime's TensorRT provider; engines built once into "
        "engine_cache_dir)", choices=BACKENDS)
    dtype: str = setting(
        "fp32", "inference precision: fp32; fp16 (CUDA/TensorRT); bf16 (torch on CUDA or an "
        "AVX512-BF16/AMX CPU); int8 (onnxruntime on CPU); auto = torch keeps the fastest dtype whose "
        "masks agree with fp32 on a probe at load. fp16=true still means fp16 on CUDA", choices=DTYPES)
    engine_cache_dir: str = setting(
        "", "TensorRT engine folder (rebuilt when TensorRT or the model changes); empty = "
        "~/.cache/avag/tensorrt, or $AVAG_CACHE_DIR/tensorrt")
    # --- thresholds (reconfigurable at run time) ---
    function_threshold: float = setting(
        0.5, "probability above which a pixel is in the function mask", lo=0.0, hi=1.0, live=True)
    dependency_threshold: float = setting(
        0.5, "probability above which a pixel is in the dependency mask", lo=0.0, hi=1.0, live=True)
    min_mask_pixels: int = setting(
        20, "smaller function masks publish no point cloud / pose", lo=0, hi=100_000_000, live=True)
    # --- what was heard (the action head stored next to the checkpoint) ---
    recognize_actions: bool = setting(
        True, "name the action in each sound and reject sounds that are not actions (speech, "
        "music, coughs...: no masks). Needs <checkpoint stem>.actions.safetensors next to the "
        "checkpoint (the shipped one has it) or action_head; without one: empty labels, no "
        "rejection, with a warning")
    action_head: str = setting("", "action head file; empty = <checkpoint stem>.actions.safetensors")
    enrollment_file: str = setting(
        "", "actions enrolled from a few clips (avag enroll, ~/enroll); empty = none; ~/enroll with "
        "save=true writes it")
    rejection_threshold: float = setting(
        -1.0, "lowest calibrated probability of the top action for a sound to get masks; below it "
        "the event goes to ~/rejected_events. -1 = the head's own threshold (stored in the head "
        "file, chosen to lose at most 1 % of validation actions as heard in a stream)",
        lo=-1.0, hi=1.0, live=True)
    # --- inputs ---
    image_topic: str = setting("/camera/color/image_raw", "camera image topic (remap it, or set it here)")
    compressed: bool = setting(False, "subscribe to sensor_msgs/CompressedImage on image_topic")
    depth_topic: str = setting(
        "/camera/aligned_depth_to_color/image_raw", "depth image aligned to the camera image (16UC1 mm or 32FC1 m)")
    camera_info_topic: str = setting("/camera/color/camera_info", "CameraInfo of the camera image")
    use_depth: bool = setting(True, "subscribe to depth + camera_info and publish grasp regions")
    audio_topic: str = setting("/audio/audio", "audio topic (message type chosen by audio_type)")
    audio_type: str = setting(
        "avag", "avag = avag/AudioFrame, audio_common = ros-drivers AudioData + AudioInfo, "
        "audio_common_stamped = mgonzs13 AudioStamped", choices=AUDIO_TYPES)
    audio_info_topic: str = setting("/audio/audio_info", "ros-drivers AudioInfo topic (audio_type=audio_common)")
    image_qos_reliability: str = setting("best_effort", "image subscription reliability", choices=RELIABILITY)
    # Sensor-data QoS (best effort, volatile) with a queue of 15 instead of 5: callbacks only
    # store a reference, so a deeper queue is no backlog, and it keeps the frames near a
    # sound onset when the executor stalls (a busy CPU) for up to ~0.5 s.
    image_qos_depth: int = setting(15, "image subscription queue depth", lo=1, hi=10_000)
    depth_qos_reliability: str = setting("best_effort", "depth subscription reliability", choices=RELIABILITY)
    depth_qos_depth: int = setting(15, "depth subscription queue depth", lo=1, hi=10_000)
    audio_qos_reliability: str = setting("best_effort", "audio subscription reliability", choices=RELIABILITY)
    audio_qos_depth: int = setting(50, "audio subscription queue depth", lo=1, hi=10_000)
    # --- caches and timing ---
    depth_cache_size: int = setting(30, "depth frames kept for matching to the camera frame", lo=1, hi=10_000)
    depth_max_gap_s: float = setting(
        0.1, "depth further than this from the image stamp is not used (s)", lo=0.0, hi=10.0)
    stale_after_s: float = setting(
        2.0, "inputs silent this long are reported stale in diagnostics (s)", lo=0.01, hi=3600.0)
    max_image_mb: float = setting(
        64.0, "larger image messages are refused (a 4K bgr8 frame is 25 MB)", lo=0.001, hi=4096.0)
    max_audio_mb: float = setting(
        4.0, "larger audio messages are refused before decoding (1 s of 32 ch 32-bit 16 kHz is 2 MB)",
        lo=0.001, hi=1024.0)
    # --- outputs ---
    voxel_size: float = setting(
        0.0, "voxel edge for downsampling the grasp region (m); 0 = none", lo=0.0, hi=1.0, live=True)
    max_depth_m: float = setting(
        5.0, "depth beyond this is ignored in the grasp region (m)", lo=0.01, hi=100.0, live=True)
    marker_lifetime_s: float = setting(
        2.0, "lifetime of the rviz markers (s); 0 = until replaced", lo=0.0, hi=3600.0, live=True)
    overlay_alpha: float = setting(
        0.5, "opacity of the masks on ~/overlay", lo=0.0, hi=1.0, live=True)
    diagnostics_period_s: float = setting(1.0, "period of /diagnostics (s)", lo=0.05, hi=3600.0)
    autostart: bool = setting(True, "configure + activate on start (no lifecycle manager needed)")
    events: EventConfig = field(default_factory=EventConfig)

    # names that take effect at once when set at run time (kept for callers of the old API)
    RECONFIGURABLE: ClassVar[tuple[str, ...]] = ()


@dataclass
class MicConfig:
    """audio_capture_node's parameters (read once at start)."""

    device: str = setting("", "sounddevice input device: index, or part of its name; empty = the default input")
    sample_rate: int = setting(16000, "capture rate (Hz)", lo=8000, hi=192000)
    channels: int = setting(1, "channels captured", lo=1, hi=64)
    chunk_size: int = setting(512, "samples per published AudioFrame (512 at 16 kHz = 32 ms)", lo=16, hi=65536)
    sample_format: str = setting("F32LE", "sample format of the published frames", choices=("F32LE", "S16LE", "S32LE"))
    frame_id: str = setting("mic_link", "frame_id of the published frames")
    topic: str = setting("/audio/audio", "topic of the published avag/msg/AudioFrame")
    reliability: str = setting("best_effort", "publisher reliability", choices=RELIABILITY)
    retry_s: float = setting(2.0, "seconds between attempts to (re)open the device", lo=0.1, hi=600.0)
    resync_s: float = setting(
        0.1, "re-anchor stamps to the clock when the sample count drifts this far (s)", lo=0.001, hi=60.0)


# ------------------------------------------------------------------ metadata
def _fields(cls: type = NodeConfig, prefix: str = "") -> dict[str, tuple[dataclasses.Field, Any]]:
    """Dotted parameter name -> (dataclass field, default value), nested dataclasses flattened."""
    out: dict[str, tuple[dataclasses.Field, Any]] = {}
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_fields(type(value), f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (f, value)
    return out


_FIELDS = _fields()
_MIC_FIELDS = _fields(MicConfig)
Fields = dict[str, tuple[dataclasses.Field, Any]]


def info(name: str, fields: Fields = _FIELDS) -> SettingInfo:
    """The setting metadata of parameter ``name`` (an empty one for undocumented fields)."""
    if name not in fields:
        raise ValueError(f"unknown parameter {name}")
    return info_of(fields[name][0]) or SettingInfo("")


def is_live(name: str) -> bool:
    """True when a run-time change of ``name`` takes effect at once (else at the next configure)."""
    return name in _FIELDS and info(name).live


# top-level names only: the old node code sets them with setattr on NodeConfig
NodeConfig.RECONFIGURABLE = tuple(n for n in _FIELDS if is_live(n) and "." not in n)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``cfg`` as {dotted parameter name: value}."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


# ------------------------------------------------------------------ validation
def check_value(name: str, value: Any, fields: Fields = _FIELDS) -> Any:
    """``value`` converted to the type of parameter ``name`` (int -> float only), or ValueError."""
    if name not in fields:
        raise ValueError(f"unknown parameter {name}")
    default = fields[name][1]
    kind = type(default)
    if fields is _MIC_FIELDS and name == "device" and type(value) is int:
        value = str(value)  # `-p device:=3` arrives as an integer: a device index
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ValueError(f"parameter {name} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"parameter {name} must be finite, got {value!r}")
    info(name, fields).check(f"parameter {name}", value)
    if fields is _FIELDS and name == "device" and not DEVICE_RE.fullmatch(value):
        raise ValueError(f"parameter device must be cpu, cuda or cuda:N, got {value!r}")
    return value


def build(values: dict[str, Any]) -> NodeConfig:
    """Validated ``NodeConfig`` from {dotted name: value}; missing names keep their default.

    Raises ValueError with a one-line reason for an unknown name, a wrong type, a value
    outside its range or choices, or inconsistent event settings."""
    checked = {name: check_value(name, value) for name, value in values.items()}
    events = {k.split(".", 1)[1]: v for k, v in checked.items() if k.startswith("events.")}
    top = {k: v for k, v in checked.items() if not k.startswith("events.")}
    try:
        ev = EventConfig(**events).validate()
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    return NodeConfig(**top, events=ev)


# ------------------------------------------------------------------ ROS parameters
def descriptor(name: str, fields: Fields = _FIELDS) -> Any:
    """The rcl_interfaces ParameterDescriptor of parameter ``name`` (description, range, choices)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    meta = info(name, fields)
    default = fields[name][1]
    # dynamic_typing: rclpy's own type check answers "expected '3' got '4'"; the callback
    # added by declare() checks the type instead and names the parameter and the types.
    desc = ParameterDescriptor(name=name, description=meta.doc, dynamic_typing=True)
    constraints = []
    if isinstance(default, float) and (meta.lo is not None or meta.hi is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(meta.lo if meta.lo is not None else -math.inf),
            to_value=float(meta.hi if meta.hi is not None else math.inf), step=0.0)]
    elif isinstance(default, int) and not isinstance(default, bool) and (meta.lo is not None or meta.hi is not None):
        desc.integer_range = [IntegerRange(
            from_value=int(meta.lo if meta.lo is not None else -INT64_MAX - 1),
            to_value=int(meta.hi if meta.hi is not None else INT64_MAX), step=1)]
    if meta.choices is not None:
        constraints.append("one of: " + ", ".join(map(str, meta.choices)))
    if fields is _FIELDS and name == "device":
        constraints.append("cpu, cuda or cuda:N")
    if fields is _FIELDS:
        constraints.append("takes effect at once" if meta.live else "takes effect at the next configure")
    desc.additional_constraints = "; ".join(constraints)
    return desc


def declare(node: Any, defaults: NodeConfig | None = None) -> None:
    """Declare every parameter on ``node`` with its descriptor, and refuse bad values.

    rclpy itself refuses a number outside the descriptor's range; the callback added here
    refuses a wrong type (an int is taken for a float), a value outside ``choices`` and a
    malformed device, with the same one-line reasons as :func:`build`, even before the node
    is configured.
    A bad value in a parameters file raises ValueError naming the parameter."""
    _declare(node, defaults or NodeConfig(), _FIELDS)


def declare_mic(node: Any) -> MicConfig:
    """audio_capture_node: declare its parameters like :func:`declare`; their values."""
    _declare(node, MicConfig(), _MIC_FIELDS)
    return MicConfig(**{name: check_value(name, node.get_parameter(name).value, _MIC_FIELDS)
                        for name in _MIC_FIELDS})


def _declare(node: Any, defaults: Any, fields: Fields) -> None:
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    for name, value in flatten(defaults).items():
        try:
            node.declare_parameter(name, value, descriptor(name, fields))
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            why = str(exc).splitlines()[0].split("Reason: ", 1)[-1].removesuffix(f": {name}")
            raise ValueError(f"parameter {name}: {why}") from None
        check_value(name, node.get_parameter(name).value, fields)

    def validate(changes: list[Any]) -> SetParametersResult:
        for p in changes:
            if p.name not in fields:
                continue
            try:
                check_value(p.name, p.value, fields)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(validate)


def read(node: Any) -> NodeConfig:
    """Current parameter values -> NodeConfig (validated)."""
    return build({name: node.get_parameter(name).value for name in _FIELDS})


# ------------------------------------------------------------------ generated files
def _range_text(name: str, fields: Fields = _FIELDS) -> str:
    meta = info(name, fields)
    if meta.choices is not None:
        return " | ".join(map(str, meta.choices))
    if fields is _FIELDS and name == "device":
        return "cpu, cuda, cuda:N"
    if meta.lo is None and meta.hi is None:
        return ""
    as_int = isinstance(fields[name][1], int)
    lo = "-inf" if meta.lo is None else (str(int(meta.lo)) if as_int else f"{meta.lo:g}")
    hi = "inf" if meta.hi is None else (str(int(meta.hi)) if as_int else f"{meta.hi:g}")
    return f"[{lo}, {hi}]"


def _scalar(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def to_ros_yaml(cfg: NodeConfig | None = None) -> str:
    """A ROS 2 parameters file for ``cfg`` keyed ``/**`` (any node name, any namespace),
    with one comment line per parameter; ``config/avag.yaml`` is this file."""
    lines = [
        "# avag_node parameters, generated from avag_ros/params.py (python -m avag_ros.params > config/avag.yaml).",
        "# '/**' applies them to the node under any name and namespace:",
        "#   ros2 run avag avag_node --ros-args -r __ns:=/robot1 --params-file config/avag.yaml",
        "# 'live' parameters take effect at once with ros2 param set; the others at the next configure.",
        "/**:",
        "  ros__parameters:",
    ]
    section = None
    for name, value in flatten(cfg or NodeConfig()).items():
        head, _, leaf = name.rpartition(".")
        if head != (section or ""):
            lines.append(f"    {head}:")
            section = head
        indent = "      " if head else "    "
        meta = info(name)
        notes = ", ".join(x for x in (_range_text(name), "live" if meta.live else "") if x)
        comment = f"{meta.doc} ({notes})" if meta.doc and notes else meta.doc or notes
        if comment:
            lines.append(f"{indent}# {comment}")
        lines.append(f"{indent}{leaf}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def to_markdown(node: str = "avag_node") -> str:
    """A README parameter table (name, type, default, range or choices, live, description)
    of ``node``: avag_node or audio_capture_node."""
    fields = _MIC_FIELDS if node == "audio_capture_node" else _FIELDS
    live_col = fields is _FIELDS
    rows = ["| parameter | type | default | range / choices |" + (" live |" if live_col else "") + " description |",
            "|---|---|---|---|" + ("---|" if live_col else "") + "---|"]
    for name, (_f, default) in fields.items():
        shown = json.dumps(default) if isinstance(default, str) else _scalar(default)
        rng = _range_text(name, fields).replace("|", "\\|")
        live = f" {'yes' if is_live(name) else ''} |" if live_col else ""
        rows.append(f"| `{name}` | {type(default).__name__} | `{shown}` | {rng} |{live} "
                    f"{info(name, fields).doc.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="print config/avag.yaml (default) or a README parameter table")
    p.add_argument("--markdown", nargs="?", const="avag_node", choices=("avag_node", "audio_capture_node"),
                   help="print the README parameter table of this node (default avag_node) instead")
    args = p.parse_args(argv)
    sys.stdout.write(to_markdown(args.markdown) if args.markdown else to_ros_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
