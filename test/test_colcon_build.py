"""Install path (a): the repository builds as a ROS 2 package with colcon (interfaces,
Python packages, node executables, launch and config files) and runs from the install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_colcon_build_installs_a_runnable_package(tmp_path):
    colcon = shutil.which("colcon") or os.path.join(os.path.dirname(sys.executable), "colcon")
    if not os.path.exists(colcon):
        pytest.skip("colcon not installed (scripts/setup.sh installs colcon-common-extensions)")
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
    for rel in ("lib/avag/avag_node", "lib/avag/audio_capture_node", "bin/avag",
                "share/avag/launch/avag.launch.py", "share/avag/config/avag.yaml",
                "share/avag/msg/AffordanceDetection.msg", "share/ament_index/resource_index/packages/avag"):
        assert (install / rel).exists(), rel
    site = next(install.glob("lib/python3*/site-packages"))
    assert (site / "avag_core" / "presets" / "realtime.yaml").exists()
    # the installed package (not the source tree) imports and finds its share directory
    probe = ("import avag.msg, avag_core, avag_ros.nodes.avag_node as n; "
             "from ament_index_python.packages import get_package_share_directory as g; "
             "print(avag_core.__file__); print(avag.msg.__file__); print(g('avag'))")
    run_env = dict(env, AMENT_PREFIX_PATH=f"{install}{os.pathsep}{prefix}", PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=run_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0].startswith(str(site)) and lines[1].startswith(str(site))
    assert lines[2] == str(install / "share" / "avag")
    help_out = subprocess.run([str(install / "bin" / "avag"), "--help"], env=run_env, capture_output=True,
                              text=True, timeout=120)
    assert help_out.returncode == 0 and "train" in help_out.stdout
