"""avag on a robot: perception node (+ optional microphone node and rviz2).

    ros2 launch avag avag.launch.py
    ros2 launch avag avag.launch.py use_mic:=true device:=cuda rviz:=true namespace:=robot1 \
        image:=/my_cam/image_raw audio:=/my_mic/audio params_file:=my.yaml

Topic arguments remap the node's inputs; everything else comes from params_file
(config/avag.yaml by default: keyed `/**`, so it applies under any namespace; a file whose
sections match no node here is an error, not silently ignored). rviz2's displays follow the
namespace. Fast DDS uses the shipped single-host profile (config/fastdds_single_host.xml)
unless FASTDDS_DEFAULT_PROFILES_FILE is set or dds_profile:= says otherwise: with the
default profile most VGA frames sent best effort are lost, not only late.
"""

import os
import re
import tempfile
from pathlib import Path

import yaml
from launch.actions import (
    DeclareLaunchArgument,
    OpaqueFunction,
    SetEnvironmentVariable,
    UnsetEnvironmentVariable,
)
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchContext, LaunchDescription

NODE = "avag_node"
DDS_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
ARGS = {
    "namespace": ("", "namespace for all avag nodes"),
    "params_file": (None, "node parameters (YAML)"),
    "checkpoint": ("", "model checkpoint (empty: the shipped realtime checkpoint)"),
    "device": ("cpu", "cpu, cuda or cuda:N (cuda falls back to cpu with a warning)"),
    "use_sim_time": ("false", "follow /clock (bag replay)"),
    "use_mic": ("false", "start audio_capture_node"),
    "mic_device": ("", "sounddevice input device name or index (empty: default)"),
    "rviz": ("false", "start rviz2 with the shipped config"),
    "image": ("/camera/color/image_raw", "camera image topic"),
    "depth": ("/camera/aligned_depth_to_color/image_raw", "depth image topic (aligned to image)"),
    "camera_info": ("/camera/color/camera_info", "camera_info topic of the image"),
    "audio": ("/audio/audio", "avag/msg/AudioFrame topic"),
    "dds_profile": (None, "Fast DDS XML profile for the nodes (empty: Fast DDS defaults)"),
}


def _fqn(namespace: str, name: str) -> str:
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def _key_matches(key: str, fqn: str) -> bool:
    """ROS 2 parameter-file node key (with `*` / `**` wildcards) against a node's full name."""
    parts = []
    for token in ("/" + key.lstrip("/")).split("/")[1:]:
        parts.append("(/[^/]+)*" if token == "**" else "/" + re.escape(token).replace(r"\*", "[^/]*"))
    return re.fullmatch("".join(parts), fqn) is not None


def check_params_file(context: LaunchContext) -> list:
    """A parameters file with no section for this node would be silently ignored by ROS."""
    path = Path(LaunchConfiguration("params_file").perform(context))
    fqn = _fqn(LaunchConfiguration("namespace").perform(context), NODE)
    if not path.is_file():
        raise RuntimeError(f"params_file {path} does not exist")
    keys = list(yaml.safe_load(path.read_text()) or {})
    if not any(_key_matches(str(k), fqn) for k in keys):
        raise RuntimeError(f"params_file {path} has no section for {fqn} (it has {', '.join(map(str, keys))}): "
                           f"key it '/**:' or '{fqn}:'")
    return []


def dds_profile(context: LaunchContext) -> list:
    value = LaunchConfiguration("dds_profile").perform(context)
    if not value:
        return [UnsetEnvironmentVariable(DDS_ENV)]
    if not os.path.isfile(value):
        raise RuntimeError(f"dds_profile {value} does not exist")
    return [SetEnvironmentVariable(DDS_ENV, value)]


def rviz_config(context: LaunchContext) -> list:
    """rviz2 with the shipped config rewritten for this namespace and image topic."""
    share = Path(FindPackageShare("avag").perform(context))
    fqn = _fqn(LaunchConfiguration("namespace").perform(context), NODE)
    text = (share / "config" / "avag.rviz").read_text()
    text = text.replace(f"/{NODE}/", f"{fqn}/")
    text = text.replace("Value: /camera/color/image_raw", f"Value: {LaunchConfiguration('image').perform(context)}")
    path = os.path.join(tempfile.gettempdir(), f"avag{fqn.replace('/', '_')}.rviz")  # one per node name
    with open(path, "w") as f:
        f.write(text)
    return [Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", path],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
    )]


def arguments() -> list[DeclareLaunchArgument]:
    """This file's launch arguments with their defaults (replay.launch.py declares them too)."""
    share = FindPackageShare("avag")
    defaults = dict(ARGS)
    defaults["params_file"] = (PathJoinSubstitution([share, "config", "avag.yaml"]), ARGS["params_file"][1])
    defaults["dds_profile"] = (
        EnvironmentVariable(DDS_ENV, default_value=PathJoinSubstitution([share, "config", "fastdds_single_host.xml"])),
        ARGS["dds_profile"][1])
    return [DeclareLaunchArgument(name, default_value=d, description=h) for name, (d, h) in defaults.items()]


def generate_launch_description() -> LaunchDescription:
    declared = arguments()
    cfg = {name: LaunchConfiguration(name) for name in ARGS}
    sim_time = {"use_sim_time": cfg["use_sim_time"]}

    mic = Node(
        package="avag",
        executable="audio_capture_node",
        name="audio_capture_node",
        namespace=cfg["namespace"],
        parameters=[sim_time, {"device": ParameterValue(cfg["mic_device"], value_type=str), "topic": cfg["audio"]}],
        condition=IfCondition(cfg["use_mic"]),
        output="screen",
    )
    perception = LifecycleNode(
        package="avag",
        executable="avag_node",
        name=NODE,
        namespace=cfg["namespace"],
        parameters=[
            cfg["params_file"],
            sim_time,
            {"checkpoint": cfg["checkpoint"], "device": cfg["device"], "autostart": True},
        ],
        remappings=[
            ("/camera/color/image_raw", cfg["image"]),
            ("/camera/aligned_depth_to_color/image_raw", cfg["depth"]),
            ("/camera/color/camera_info", cfg["camera_info"]),
            ("/audio/audio", cfg["audio"]),
        ],
        output="screen",
    )
    rviz = OpaqueFunction(function=rviz_config, condition=IfCondition(cfg["rviz"]))
    # Checks and rviz first: if the parameters file is wrong or rviz2 is not installed,
    # launch fails before it has started any node (an error raised after the nodes
    # started would leave them running without launch).
    return LaunchDescription([*declared, OpaqueFunction(function=check_params_file),
                              OpaqueFunction(function=dds_profile), rviz, mic, perception])
