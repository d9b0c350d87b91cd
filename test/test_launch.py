"""The launch files run for real: `ros2 launch avag avag.launch.py` starts and activates the
perception node (and the microphone node), topic arguments remap its inputs, and
replay.launch.py plays a bag into a node that follows the bag's clock.

launch and launch_ros are not on PyPI, so these tests skip where they are not installed
(a ROS 2 installation or the ros2/launch and ros2/launch_ros sources provide them)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PROCS_DIR, REPO_ROOT, run_proc, stop_proc

_SKIP = "launch/launch_ros not installed (not on PyPI): install ROS 2 or the ros2/launch and ros2/launch_ros sources"
pytest.importorskip("launch.actions", reason=_SKIP)  # PyPI's unrelated `launch` has no launch.actions
pytest.importorskip("launch_ros.actions", reason=_SKIP)

N_SCENES = 2


class Output:
    """Collects a process's output lines in a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *needles: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if all(n in text for n in needles):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> str:
        """Ctrl-C: SIGINT to launch's whole process group, as a terminal delivers it (launch
        then does not forward it: its nodes got it too); anything left is killed."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the launched nodes share its session
        self.proc.wait()
        self._thread.join(timeout=5)
        return self.text


def launch(file: str, env: dict[str, str], *args: str) -> Output:
    proc = run_proc([str(PROCS_DIR / "run_launch.py"), file, *args], env, start_new_session=True)
    return Output(proc)


def probe(env: dict[str, str], node: str, namespace: str, *extra: str) -> dict:
    proc = run_proc([str(PROCS_DIR / "graph_probe.py"), node, namespace, *extra], env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def test_installed_launch_files_are_current():
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("avag"))
    for rel in ("launch/avag.launch.py", "launch/replay.launch.py", "config/avag.yaml", "config/avag.rviz"):
        assert (share / rel).read_bytes() == (REPO_ROOT / rel).read_bytes(), \
            f"{share / rel} is stale: re-run scripts/setup.sh"


@pytest.mark.slow
def test_avag_launch_starts_both_nodes_with_remapped_topics(ros_env, virtual_mic, shipped_checkpoint):
    env = dict(ros_env, XDG_RUNTIME_DIR=virtual_mic["XDG_RUNTIME_DIR"], HOME=virtual_mic["HOME"])
    run = launch("avag.launch.py", env, f"checkpoint:={shipped_checkpoint}", "use_mic:=true",
                 "namespace:=robot1", "image:=/foo/image", "audio:=/my_mic/audio")
    try:
        assert run.wait_for("[robot1.avag_node]: active:", timeout=40), run.text
        node = probe(env, "avag_node", "/robot1")
        mic = probe(env, "audio_capture_node", "/robot1", "--receive", "/my_mic/audio", "avag/msg/AudioFrame")
    finally:
        out = run.stop()
    assert node["found"], out
    assert set(node["subscriptions"]) >= {"/foo/image", "/my_mic/audio"}, node
    assert "/camera/color/image_raw" not in node["subscriptions"]
    assert "/robot1/avag_node/detection" in node["publishers"]
    assert mic["found"] and "/my_mic/audio" in mic["publishers"], (mic, out)
    assert mic["received"] > 0, out  # the virtual microphone's samples reach the graph
    assert "cannot open audio device" not in out
    # Ctrl-C stops both nodes cleanly, within launch's SIGINT grace period
    assert out.count("process has finished cleanly") == 2, out
    assert "escalating to 'SIGTERM'" not in out, out


def test_rviz_action_is_well_formed():
    """rviz2 is started only with rviz:=true (not installed here): its config path resolves."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    from launch import LaunchContext

    share = Path(get_package_share_directory("avag"))
    desc = get_launch_description_from_python_launch_file(str(share / "launch" / "avag.launch.py"))
    ctx = LaunchContext()
    for arg in desc.entities:
        if isinstance(arg, DeclareLaunchArgument):
            ctx.launch_configurations[arg.name] = perform_substitutions(ctx, arg.default_value)
    (rviz,) = [e for e in desc.entities if isinstance(e, Node) and e.node_package == "rviz2"]
    assert not rviz.condition.evaluate(ctx)  # off by default
    ctx.launch_configurations["rviz"] = "true"
    assert rviz.condition.evaluate(ctx)
    args = [perform_substitutions(ctx, part) for part in rviz.process_description.cmd[1:]]
    assert args[:2] == ["-d", str(share / "config" / "avag.rviz")]
    assert Path(args[1]).is_file()


def session_processes(sid: int) -> list[str]:
    """Command lines of the processes still running in session `sid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(cmdline)
    return found


def test_rviz_true_without_rviz2_fails_before_starting_nodes(ros_env, shipped_checkpoint):
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
        pytest.skip("rviz2 is installed: rviz:=true would open a window")
    except PackageNotFoundError:
        pass
    run = launch("avag.launch.py", ros_env, f"checkpoint:={shipped_checkpoint}", "rviz:=true", "use_mic:=true")
    try:
        run.proc.wait(timeout=30)
        time.sleep(1.0)
        left = session_processes(run.proc.pid)
    finally:
        out = run.stop()
    assert run.proc.returncode != 0
    assert "package 'rviz2' not found" in out
    assert not left, f"nodes left running after launch failed: {left}"


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory) -> Path:
    from avag_core.data.synth import generate
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    root = tmp_path_factory.mktemp("synth")
    data = generate(root / "data", seed=3, size="tiny")
    bag = root / "scenes_bag"
    write_synth_bag(load_scenes(data, "val", limit=N_SCENES), bag, SynthBagConfig(seed=3))
    return bag


@pytest.mark.slow
def test_replay_launch_plays_bag_into_node_on_sim_time(ros_env, tmp_path, scene_bag, shipped_checkpoint):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from avag_ros.conversions import stamp_to_ns
    from avag_ros.msg_types import get_message_class

    with Reader(scene_bag) as reader:
        bag_start, bag_end = reader.start_time, reader.end_time
    assert abs(bag_start - time.time_ns()) > 86400e9  # bag time is far from wall time
    out_bag = tmp_path / "outputs"
    rec = run_proc(["-m", "avag_ros.bag.recorder", "--out", str(out_bag),
                    "--topic", "/avag_node/detection:avag/msg/AffordanceDetection",
                    "--topic", "/diagnostics:diagnostic_msgs/msg/DiagnosticArray"], ros_env)
    run = launch("replay.launch.py", ros_env, f"bag:={scene_bag}", f"checkpoint:={shipped_checkpoint}")
    try:
        assert run.wait_for("played ", "process has finished cleanly", timeout=60), run.text
        time.sleep(2.0)  # the last event's detection is published
    finally:
        out = run.stop()
        rec_out = stop_proc(rec)
    assert "[avag_node]: active:" in out
    got: dict[str, list] = {}
    with Reader(out_bag) as reader:
        for conn, _t, raw in reader.messages():
            got.setdefault(conn.topic, []).append(deserialize_message(raw, get_message_class(conn.msgtype)))
    assert len(got.get("/avag_node/detection", [])) == N_SCENES, (out, rec_out)
    # use_sim_time: the node's clock (diagnostics stamps) follows the bag's /clock
    stamps = [stamp_to_ns(d.header.stamp) for d in got["/diagnostics"]]
    on_bag_clock = [s for s in stamps if s]
    assert on_bag_clock, stamps
    assert all(bag_start - 1e9 <= s <= bag_end + 1e9 for s in on_bag_clock), (stamps, bag_start, bag_end)
