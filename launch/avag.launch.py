"""avag on a robot: perception node (+ optional microphone node and rviz2).

    ros2 launch avag avag.launch.py
    ros2 launch avag avag.launch.py use_mic:=true device:=cuda rviz:=true \
        image:=/my_cam/image_raw audio:=/my_mic/audio

Topic arguments remap the node's inputs; everything else comes from params_file
(config/avag.yaml by default).
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

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
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("avag")
    defaults = dict(ARGS)
    defaults["params_file"] = (PathJoinSubstitution([share, "config", "avag.yaml"]), ARGS["params_file"][1])
    declared = [DeclareLaunchArgument(name, default_value=d, description=h) for name, (d, h) in defaults.items()]
    cfg = {name: LaunchConfiguration(name) for name in ARGS}
    sim_time = {"use_sim_time": cfg["use_sim_time"]}

    mic = Node(
        package="avag",
        executable="audio_capture_node",
        name="audio_capture_node",
        namespace=cfg["namespace"],
        parameters=[sim_time, {"device": cfg["mic_device"], "topic": cfg["audio"]}],
        condition=IfCondition(cfg["use_mic"]),
        output="screen",
    )
    perception = LifecycleNode(
        package="avag",
        executable="avag_node",
        name="avag_node",
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
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "avag.rviz"])],
        parameters=[sim_time],
        condition=IfCondition(cfg["rviz"]),
    )
    # rviz first: if rviz2 is not installed, launch fails before it has started any node
    # (an error raised after the nodes started would leave them running without launch).
    return LaunchDescription([*declared, rviz, mic, perception])
