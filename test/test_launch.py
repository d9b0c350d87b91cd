"""The launch files run for real: `ros2 launch avag avag.launch.py` starts and activates the
perception node (and the microphone node) under a namespace with the shipped DDS profile,
topic arguments remap its inputs, a parameters file that matches no node stops launch before
any node starts, rviz's config follows the namespace; replay.launch.py plays only the node's
inputs (after remapping) into a node on the bag's clock, ends by itself when the bag ends
(status 0) or the player fails (status 1), and Ctrl-C at any moment ends every process
cleanly.

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
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest

from conftest import PROCS_DIR, REPO_ROOT, read_bag, run_proc, stop_proc

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


def share() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("avag"))


def launch_module(name: str):
    """The installed launch file as a module (its helper functions)."""
    spec = spec_from_file_location(name.replace(".", "_"), share() / "launch" / name)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context_with_defaults(desc, **values: str):
    """A LaunchContext holding every declared argument's default, then ``values``."""
    from launch.actions import DeclareLaunchArgument
    from launch.utilities import perform_substitutions

    from launch import LaunchContext

    ctx = LaunchContext()
    ctx.launch_configurations.update(values)
    for arg in desc.entities:
        if isinstance(arg, DeclareLaunchArgument) and arg.name not in values and arg.default_value is not None:
            ctx.launch_configurations[arg.name] = perform_substitutions(ctx, arg.default_value)
    return ctx


def test_installed_launch_files_are_current():
    from ament_index_python.packages import get_package_prefix

    for rel in ("launch/avag.launch.py", "launch/replay.launch.py", "config/avag.yaml", "config/avag.rviz",
                "config/fastdds_single_host.xml"):
        assert (share() / rel).read_bytes() == (REPO_ROOT / rel).read_bytes(), \
            f"{share() / rel} is stale: re-run scripts/setup.sh"
    lib = Path(get_package_prefix("avag")) / "lib" / "avag"
    for exe in ("avag", "avag_node", "audio_capture_node", "avag_bag_player"):
        assert (lib / exe).read_bytes() == (REPO_ROOT / "scripts" / exe).read_bytes(), f"{lib / exe} is stale"


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


def session_environ(sid: int, needle: str) -> dict[str, str]:
    """Environment of the process in session `sid` whose command line contains `needle`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) != sid:
                continue
            if needle in (stat.parent / "cmdline").read_bytes().decode(errors="replace"):
                pairs = (stat.parent / "environ").read_bytes().split(b"\0")
                return dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)
    return {}


@pytest.mark.slow
def test_avag_launch_starts_both_nodes_with_remapped_topics(ros_env, virtual_mic, shipped_checkpoint):
    env = dict(ros_env, XDG_RUNTIME_DIR=virtual_mic["XDG_RUNTIME_DIR"], HOME=virtual_mic["HOME"])
    run = launch("avag.launch.py", env, f"checkpoint:={shipped_checkpoint}", "use_mic:=true",
                 "namespace:=robot1", "image:=/foo/image", "audio:=/my_mic/audio")
    try:
        assert run.wait_for("[robot1.avag_node]: active:", timeout=40), run.text
        node = probe(env, "avag_node", "/robot1")
        mic = probe(env, "audio_capture_node", "/robot1", "--receive", "/my_mic/audio", "avag/msg/AudioFrame")
        node_env = session_environ(run.proc.pid, "avag_node")
    finally:
        out = run.stop()
    assert node["found"], out
    assert set(node["subscriptions"]) >= {"/foo/image", "/my_mic/audio"}, node
    assert "/camera/color/image_raw" not in node["subscriptions"]
    assert "/robot1/avag_node/detection" in node["publishers"]
    assert mic["found"] and "/my_mic/audio" in mic["publishers"], (mic, out)
    assert mic["received"] > 0, out  # the virtual microphone's samples reach the graph
    assert "cannot open audio device" not in out
    # the shipped Fast DDS profile, since the user set none (ros_env unsets it)
    assert node_env.get("FASTDDS_DEFAULT_PROFILES_FILE") == str(share() / "config" / "fastdds_single_host.xml")
    # Ctrl-C stops both nodes cleanly, within launch's SIGINT grace period
    assert out.count("process has finished cleanly") == 2, out
    assert "escalating to 'SIGTERM'" not in out, out


def test_dds_profile_is_the_users_when_set(monkeypatch, tmp_path):
    from launch.actions import SetEnvironmentVariable, UnsetEnvironmentVariable

    module = launch_module("avag.launch.py")
    desc = module.generate_launch_description()
    mine = tmp_path / "my_profile.xml"
    mine.write_text("<dds/>")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(mine))
    (action,) = module.dds_profile(context_with_defaults(desc))
    assert isinstance(action, SetEnvironmentVariable)
    assert action.value[0].text == str(mine)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE")
    (action,) = module.dds_profile(context_with_defaults(desc))
    assert action.value[0].text == str(share() / "config" / "fastdds_single_host.xml")
    (action,) = module.dds_profile(context_with_defaults(desc, dds_profile=""))
    assert isinstance(action, UnsetEnvironmentVariable)
    with pytest.raises(RuntimeError, match="does not exist"):
        module.dds_profile(context_with_defaults(desc, dds_profile=str(tmp_path / "nope.xml")))


def test_params_file_keys_are_matched_like_ros_does():
    match = launch_module("avag.launch.py")._key_matches
    assert match("/**", "/robot1/avag_node") and match("/**", "/avag_node")
    assert match("avag_node", "/avag_node") and not match("avag_node", "/robot1/avag_node")
    assert match("/robot1/avag_node", "/robot1/avag_node") and match("robot1/avag_node", "/robot1/avag_node")
    assert match("/**/avag_node", "/a/b/avag_node") and match("/*/avag_node", "/robot1/avag_node")
    assert not match("/*/avag_node", "/avag_node") and not match("/robot2/avag_node", "/robot1/avag_node")


def test_rviz_config_follows_namespace_and_image():
    from launch.actions import OpaqueFunction
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    module = launch_module("avag.launch.py")
    desc = module.generate_launch_description()
    ctx = context_with_defaults(desc, namespace="robot1", image="/foo/image", rviz="true")
    (rviz,) = module.rviz_config(ctx)
    assert isinstance(rviz, Node) and rviz.node_package == "rviz2"
    args = [perform_substitutions(ctx, part) for part in rviz.process_description.cmd[1:]]
    assert args[0] == "-d"
    text = Path(args[1]).read_text()
    Path(args[1]).unlink()
    for topic in ("overlay", "grasp_region", "markers"):
        assert f"Value: /robot1/avag_node/{topic}" in text
    assert "Value: /avag_node/" not in text and "Value: /foo/image" in text
    (opaque,) = [e for e in desc.entities if isinstance(e, OpaqueFunction) and e.condition is not None]
    ctx = context_with_defaults(desc)
    assert not opaque.condition.evaluate(ctx)  # rviz off by default
    ctx.launch_configurations["rviz"] = "true"
    assert opaque.condition.evaluate(ctx)


def test_params_file_for_another_node_fails_before_starting_nodes(ros_env, tmp_path, shipped_checkpoint):
    """A file keyed `avag_node:` with namespace:=robot1 would be ignored by ROS without a word."""
    mine = tmp_path / "my.yaml"
    mine.write_text("avag_node:\n  ros__parameters:\n    function_threshold: 0.7\n")
    run = launch("avag.launch.py", ros_env, f"checkpoint:={shipped_checkpoint}", "namespace:=robot1",
                 f"params_file:={mine}")
    try:
        run.proc.wait(timeout=60)
        left = session_processes(run.proc.pid)
    finally:
        out = run.stop()
    assert run.proc.returncode != 0
    assert f"params_file {mine} has no section for /robot1/avag_node (it has avag_node)" in out, out
    assert "process started" not in out and not left, (out, left)


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


# ---------------------------------------------------------------- replay
CAMERA, MIC = "/cam/image", "/mic/audio"


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory) -> Path:
    from avag_core.data.synth import generate
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    root = tmp_path_factory.mktemp("synth")
    data = generate(root / "data", seed=3, size="tiny")
    bag = root / "scenes_bag"
    write_synth_bag(load_scenes(data, "val", limit=N_SCENES), bag, SynthBagConfig(seed=3))
    return bag


@pytest.fixture(scope="module")
def everything_bag(scene_bag, tmp_path_factory) -> Path:
    """The scenes as a robot records them with everything: camera and microphone on their
    own topic names, plus a recorded /clock (from another time) and avag's own outputs."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Reader, Writer
    from rosgraph_msgs.msg import Clock

    from avag_ros.bag.typestore import avag_typestore

    rename = {"/camera/color/image_raw": CAMERA, "/audio/audio": MIC, "/avag/ground_truth": "/avag_node/detection"}
    out = tmp_path_factory.mktemp("everything") / "bag"
    store = avag_typestore()
    with Reader(scene_bag) as reader, Writer(out, version=9) as writer:
        conns = {c.id: writer.add_connection(rename.get(c.topic, c.topic), c.msgtype, typestore=store)
                 for c in reader.connections}
        clock = writer.add_connection("/clock", "rosgraph_msgs/msg/Clock", typestore=store)
        last_clock = 0
        for conn, stamp, raw in reader.messages():
            writer.write(conns[conn.id], stamp, raw)
            if stamp - last_clock >= 100_000_000:
                msg = Clock()
                msg.clock.sec = 12345  # another day: a node following it would leave the bag's time
                writer.write(clock, stamp, serialize_message(msg))
                last_clock = stamp
    return out


@pytest.mark.slow
def test_replay_plays_the_node_inputs_on_bag_time_and_ends_with_the_bag(
        ros_env, tmp_path, everything_bag, shipped_checkpoint):
    from rosbags.rosbag2 import Reader

    from avag_ros.conversions import stamp_to_ns

    with Reader(everything_bag) as reader:
        bag_start, bag_end = reader.start_time, reader.end_time
    assert abs(bag_start - time.time_ns()) > 86400e9  # bag time is far from wall time
    out_bag = tmp_path / "outputs"
    rec = run_proc(["-m", "avag_ros.bag.recorder", "--out", str(out_bag),
                    "--topic", "/avag_node/detection:avag/msg/AffordanceDetection",
                    "--topic", "/clock:rosgraph_msgs/msg/Clock",
                    "--topic", "/diagnostics:diagnostic_msgs/msg/DiagnosticArray"], ros_env)
    run = launch("replay.launch.py", ros_env, f"bag:={everything_bag}", f"checkpoint:={shipped_checkpoint}",
                 f"image:={CAMERA}", f"audio:={MIC}", "linger:=3.0")
    try:
        run.proc.wait(timeout=120)  # ends by itself
    finally:
        out = run.stop()
        rec_out = stop_proc(rec)
    assert run.proc.returncode == 0, out
    assert "bag played to its end" in out and "[avag_node]: active:" in out, out
    assert out.count("process has finished cleanly") == 2 and "Traceback" not in out, out
    got = read_bag(out_bag)
    # the bag's own /avag_node/detection (ground truth here) is not replayed: every recorded
    # detection is the node's (it timed an inference), and each event of the bag has one
    dets = got.get("/avag_node/detection", [])
    assert dets and all(d.inference_ms > 0 for d in dets), (out, rec_out)
    truth = [stamp_to_ns(d.event_start) for d in read_bag(everything_bag)["/avag_node/detection"]]
    assert len(truth) == N_SCENES
    for onset in truth:
        assert any(abs(stamp_to_ns(d.event_start) - onset) < 0.3e9 for d in dets), (onset, out)
    # the bag's /clock (another day) is not replayed: only the player's, on the bag's time
    clocks = [stamp_to_ns(c.clock) for c in got["/clock"]]
    assert clocks and all(bag_start <= c <= bag_end for c in clocks), (clocks[:5], bag_start)
    # use_sim_time: the node's clock (diagnostics stamps) follows the bag's /clock
    stamps = [stamp_to_ns(d.header.stamp) for d in got["/diagnostics"]]
    on_bag_clock = [s for s in stamps if s]
    assert on_bag_clock, stamps
    assert all(bag_start - 1e9 <= s <= bag_end + 1e9 for s in on_bag_clock), (stamps, bag_start, bag_end)


def test_replay_fails_when_the_player_fails(ros_env, tmp_path, shipped_checkpoint):
    run = launch("replay.launch.py", ros_env, f"bag:={tmp_path / 'nonexistent'}",
                 f"checkpoint:={shipped_checkpoint}")
    try:
        run.proc.wait(timeout=120)
    finally:
        out = run.stop()
    assert run.proc.returncode == 1, out
    assert f"bag {tmp_path / 'nonexistent'} does not exist" in out
    assert "bag player failed with exit code 2" in out
    assert "[avag_node-2]: process has finished cleanly" in out, out


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["starting", "playing"])
def test_ctrl_c_at_any_moment_ends_every_process_cleanly(ros_env, scene_bag, shipped_checkpoint, moment):
    run = launch("replay.launch.py", ros_env, f"bag:={scene_bag}", f"checkpoint:={shipped_checkpoint}")
    try:
        if moment == "starting":  # both processes started, still importing torch, rclpy, rosbags
            assert run.wait_for("[avag_node-2]: process started with pid", timeout=60), run.text
            time.sleep(0.3)
        else:
            assert run.wait_for("[avag_node]: active:", timeout=60), run.text
            time.sleep(2.0)  # a Ctrl-C in the middle of playback, between inference and publishing
        assert run.proc.poll() is None, run.text
        left_before = session_processes(run.proc.pid)
        out = run.stop()  # SIGINT to the whole group, like a terminal's Ctrl-C
    finally:
        run.stop()
    assert run.proc.returncode == 0, out
    for bad in ("Traceback", "RCLError", "exception was never retrieved", "inference failed", "escalating to 'SIGTERM'",
                "process has died"):
        assert bad not in out, out
    assert out.count("process has finished cleanly") == out.count("process started with pid") == 2, out
    assert len(left_before) >= 2
