"""Replay a recorded (or `avag bag record-synth`) rosbag2 through the perception node.

    ros2 launch avag replay.launch.py bag:=/path/to/bag [rate:=1.0] [rviz:=true] \
        [image:=/my_cam/image_raw audio:=/my_mic/audio ...] [topics:=all]

The bag is played by avag's player with /clock; the node runs with use_sim_time so its
clock, caches and diagnostics follow the bag. Works with mcap and sqlite3 bags.

- Only the topics the node consumes (image, depth, camera_info, audio, after the same
  remapping arguments as avag.launch.py) are played: a bag recorded with everything does
  not replay its own /clock or old avag outputs. topics:=all plays every topic (except
  /clock), or give a space-separated list.
- Launch ends by itself: exit status 0 when the bag was played to its end (the node gets
  linger seconds to finish the last event), 1 when the player failed (bad bag, no topic,
  no subscriber), with the reason in the log. Ctrl-C ends every process with status 0.
"""

from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

INPUTS = ("image", "depth", "camera_info", "audio")


def player(context: LaunchContext) -> list:
    """The player process (topics from the launch arguments) and what its exit means."""
    arg = {name: LaunchConfiguration(name).perform(context) for name in (*INPUTS, "topics", "bag", "rate", "clock_hz")}
    if arg["topics"] in ("", "inputs"):
        topics = ["--topics", *(arg[name] for name in INPUTS)]
    elif arg["topics"] == "all":
        topics = []
    else:
        topics = ["--topics", *arg["topics"].split()]
    proc = Node(
        package="avag",
        executable="avag_bag_player",
        arguments=[arg["bag"], "--clock", arg["clock_hz"], "--rate", arg["rate"], *topics,
                   "--wait-for", arg["image"], arg["audio"]],
        output="screen",
    )

    def on_exit(event, ctx: LaunchContext) -> list:
        if ctx.is_shutdown:
            return []  # Ctrl-C or another process ended launch: nothing more to say
        if event.returncode != 0:
            # an exception makes launch shut everything down and exit with status 1
            raise RuntimeError(f"bag player failed with exit code {event.returncode} (its error is above)")
        linger = float(LaunchConfiguration("linger").perform(ctx))
        return [LogInfo(msg=f"bag played to its end; stopping in {linger:g} s"),
                TimerAction(period=linger, actions=[Shutdown(reason="bag played to its end")])]

    return [proc, RegisterEventHandler(OnProcessExit(target_action=proc, on_exit=on_exit))]


def generate_launch_description() -> LaunchDescription:
    robot = Path(__file__).with_name("avag.launch.py")
    spec = spec_from_file_location("avag_robot_launch", robot)
    robot_launch = module_from_spec(spec)
    spec.loader.exec_module(robot_launch)
    passed = [a for a in robot_launch.arguments() if a.name != "use_sim_time"]  # replay: always sim time
    avag = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(robot)),
        launch_arguments={"use_sim_time": "true", **{a.name: LaunchConfiguration(a.name) for a in passed}}.items(),
    )
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder to replay"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument("clock_hz", default_value="20", description="rate of the /clock the player publishes"),
        DeclareLaunchArgument("topics", default_value="inputs",
                              description="inputs: only the node's inputs; all: every topic; or a list"),
        DeclareLaunchArgument("linger", default_value="3.0",
                              description="seconds the node keeps running after the bag ends"),
        *passed,  # the robot launch file's arguments (topics, namespace, params_file, ...)
        OpaqueFunction(function=player),
        avag,
    ])
