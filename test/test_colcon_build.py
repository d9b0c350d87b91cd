"""Install path (a): the repository builds as a ROS 2 package with colcon (interfaces,
Python packages, node executables, launch and config files) and runs from the install:
`ros2 run avag <every executable>` works (through ros2cli when it is installed, else by
running lib/avag/<name> as ros2 run does) and the shipped checkpoint is installed once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_colcon_build_installs_a_runnable_package(tmp_path, ros_env):
    colcon = shutil.which("colcon") or os.path.join(os.path.dirname(sys.executable), "colcon")
    if not os.path.exists(colcon):
        pytest.skip("colcon not installed (scripts/setup.sh installs it; with --system, ROS's own: apt install python3-colcon-common-extensions)")
    src = tmp_path / "ws" / "src" / "avag"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO_ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, src / rel)
    prefix = sys.prefix  # ament_cmake, rosidl and the message packages come from the venv
    env = dict(os.environ, AMENT_PREFIX_PATH=prefix, CMAKE_PREFIX_PATH=prefix,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    build = subprocess.run(
        [colcon, "build", "--packages-select", "avag", "--cmake-args", "-DBUILD_TESTING=OFF",
         f"-DPython3_EXECUTABLE={sys.executable}"],
        cwd=tmp_path / "ws", env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    install = tmp_path / "ws" / "install" / "avag"
    executables = ("avag", "avag_node", "audio_capture_node", "avag_bag_player")
    for rel in (*(f"lib/avag/{exe}" for exe in executables), "bin/avag",
                "share/avag/launch/avag.launch.py", "share/avag/config/avag.yaml",
                "share/avag/msg/AffordanceDetection.msg", "share/ament_index/resource_index/packages/avag"):
        assert (install / rel).exists(), rel
    assert sorted(p.name for p in (install / "lib" / "avag").iterdir()) == sorted(executables)
    site = next(install.glob("lib/python3*/site-packages"))
    assert (site / "avag_core" / "presets" / "realtime.yaml").exists()
    checkpoints = [p.relative_to(install) for p in install.rglob("realtime_synth.safetensors")]
    assert [str(p) for p in checkpoints] == [str((site / "avag_core" / "checkpoints" / "realtime_synth.safetensors")
                                                  .relative_to(install))], checkpoints
    # the installed package (not the source tree) imports and finds its share directory
    probe = ("import avag.msg, avag_core, avag_ros.nodes.avag_node as n; "
             "from ament_index_python.packages import get_package_share_directory as g; "
             "print(avag_core.__file__); print(avag.msg.__file__); print(g('avag'))")
    python_path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    run_env = dict(ros_env, AMENT_PREFIX_PATH=f"{install}{os.pathsep}{prefix}", PYTHONPATH=python_path,
                   PATH=env["PATH"])
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=run_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0].startswith(str(site)) and lines[1].startswith(str(site))
    assert lines[2] == str(install / "share" / "avag")

    def ros2_run(exe: str, *args: str) -> subprocess.Popen:
        ros2 = shutil.which("ros2", path=run_env["PATH"])
        cmd = [ros2, "run", "avag", exe, *args] if ros2 else [str(install / "lib" / "avag" / exe), *args]
        return subprocess.Popen(cmd, cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    for exe, needle in (("avag", "train"), ("avag_bag_player", "--wait-for")):
        out, _ = ros2_run(exe, "--help").communicate(timeout=120)
        assert needle in out, (exe, out)
    # the nodes start from the install (the node with the installed checkpoint) and stop on Ctrl-C
    # audio_capture_node: it opened the input device, or (no sound card here) said why it could not
    for exe, needles in (("avag_node", ("active:",)),
                         ("audio_capture_node", ("capturing from", "cannot open audio device"))):
        proc = ros2_run(exe)
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(n in line for line in lines for n in needles):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        text = "".join(lines) + rest
        assert any(n in line for line in lines for n in needles), (exe, text)
        assert proc.returncode == 0 and "Traceback" not in text, (exe, proc.returncode, text)
