"""Replay a recorded (or `avag bag record-synth`) rosbag2 through the perception node.

    ros2 launch avag replay.launch.py bag:=/path/to/bag [rate:=1.0] [rviz:=true]

The bag is played by avag's player with /clock, the node runs with use_sim_time so its
clock, caches and diagnostics follow the bag. Works with mcap and sqlite3 bags.
"""

import sys

from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    bag = LaunchConfiguration("bag")
    player = ExecuteProcess(
        cmd=[sys.executable, "-m", "avag_ros.bag.player", bag, "--clock", "10",
             "--rate", LaunchConfiguration("rate"),
             "--wait-for", "/camera/color/image_raw", "/audio/audio"],
        name="bag_player",
        output="screen",
    )
    avag = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("avag"), "launch", "avag.launch.py"])),
        launch_arguments={
            "use_sim_time": "true",
            "rviz": LaunchConfiguration("rviz"),
            "checkpoint": LaunchConfiguration("checkpoint"),
        }.items(),
    )
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder to replay"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz2"),
        DeclareLaunchArgument("checkpoint", default_value="", description="model checkpoint"),
        player,
        avag,
    ])
