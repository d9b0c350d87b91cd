"""The robot install never replaces the machine's torch (Jetson: NVIDIA's JetPack build).

A fresh virtual environment gets a stand-in for JetPack 6's torch (its real version string,
as installed metadata), then pip plans the README's robot install with `--dry-run
--report`: no torch, torchvision, torchaudio or nvidia-* wheel may be planned. pip resolves
against the real package index, as on the robot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

JETPACK6_TORCH = "2.5.0a0+872d972e41.nv24.08"  # NVIDIA's wheel for JetPack 6.1/6.2
# source builds of the releases that match torch 2.5 (what a Jetson user installs beside it)
JETPACK6_COMPANIONS = {"torchvision": "0.20.0a0+src", "torchaudio": "2.5.0a0+src"}
FORBIDDEN = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*)$")


def fake_installed(venv: Path, name: str, version: str) -> None:
    """Installed-package metadata as pip sees it (a .dist-info folder in site-packages)."""
    (site,) = venv.glob("lib/python3*/site-packages")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("stand-in\n")
    (info / "RECORD").write_text(f"{info.name}/METADATA,,\n{info.name}/INSTALLER,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def jetson_venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    fake_installed(venv, "torch", JETPACK6_TORCH)
    return venv


def plan(venv: Path, tmp_path: Path, *args: str) -> dict[str, str]:
    """{normalized name: version} that `pip install --dry-run ARGS` would install into venv."""
    report = tmp_path / f"report{len(list(tmp_path.glob('report*')))}.json"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--dry-run",
         "--quiet", "--report", str(report), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode != 0 and re.search(r"(Could not fetch|Failed to establish|NewConnectionError)", out.stderr):
        pytest.skip(f"package index not reachable: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr[-3000:]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
            for i in json.loads(report.read_text())["install"]}


def assert_keeps_torch(planned: dict[str, str]) -> None:
    bad = {n: v for n, v in planned.items() if FORBIDDEN.match(n)}
    assert not bad, f"the robot install would replace the machine's PyTorch: {bad}"


@pytest.mark.slow
def test_robot_install_keeps_a_jetpack_torch(jetson_venv, tmp_path):
    """README: `pip install -r requirements/robot.txt` then `--no-deps -r requirements/robot-nodeps.txt`."""
    planned = plan(jetson_venv, tmp_path, "-r", "requirements/robot.txt")
    assert_keeps_torch(planned)
    assert {"pillow", "safetensors", "soundfile", "rosbags", "huggingface-hub"} <= set(planned)
    nodeps = plan(jetson_venv, tmp_path, "--no-deps", "-r", "requirements/robot-nodeps.txt")
    assert set(nodeps) == {"timm"}


@pytest.mark.slow
def test_a_plain_timm_install_would_replace_it(jetson_venv, tmp_path):
    """Why timm goes in with --no-deps: with its dependencies pip replaces the JetPack torch
    (timm -> torchvision from the index -> an exact, different torch). If this stops being
    true the test tells, and the README's extra step can go."""
    planned = plan(jetson_venv, tmp_path, "-r", "requirements/robot-nodeps.txt")
    assert "torchvision" in planned and "torch" in planned, planned


@pytest.mark.slow
def test_with_jetpack_companions_installed_even_timm_with_deps_keeps_them(jetson_venv, tmp_path):
    for name, version in JETPACK6_COMPANIONS.items():
        fake_installed(jetson_venv, name, version)
    assert_keeps_torch(plan(jetson_venv, tmp_path, "-r", "requirements/robot.txt",
                            "-r", "requirements/robot-nodeps.txt"))


@pytest.mark.slow
def test_jetpack6_requirements_resolve_for_a_jetson(jetson_venv, tmp_path):
    """requirements/jetpack6.txt as pip sees it on a Jetson (aarch64, Python 3.10): binary
    wheels exist for everything, nothing touches PyTorch and numpy stays 1.x."""
    planned = plan(jetson_venv, tmp_path, "--only-binary=:all:", "--python-version", "3.10",
                   "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
                   "--platform", "manylinux_2_17_aarch64", "-r", "requirements/jetpack6.txt")
    assert_keeps_torch(planned)
    assert planned["numpy"].split(".")[0] == "1", planned["numpy"]
    assert {"opencv-python-headless", "onnxruntime", "soundfile", "pillow"} <= set(planned)


@pytest.fixture
def recorded_setup(tmp_path):
    """Runs a copy of scripts/setup.sh against a venv whose pip and cmake are recorders:
    the check is on what setup.sh asks pip to install. Returns (run, repo copy); run(*args)
    gives the pip install lines of that run. The file `numpy_major` in tmp_path stands in for
    the machine's numpy (its major version, as setup.sh asks it): 2 unless a test writes 1."""
    root = tmp_path / "repo"  # what setup.sh reads: its inputs' hashes are its stamps
    for folder in ("scripts", "requirements", "msg", "srv", "launch", "config"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    for name in ("CMakeLists.txt", "package.xml", "setup.py", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, root / name)
    log = tmp_path / "pip.log"
    (tmp_path / "numpy_major").write_text("2\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("# a venv's activate\n")
    python = venv / "bin" / "python"  # everything but pip and the numpy question runs in this venv's python
    python.write_text(f'#!/bin/sh\nif [ "$1 $2" = "-m pip" ]; then echo "$@" >> {log}; exit 0; fi\n'
                      f'case "$2" in *numpy.__version__*) exec cat {tmp_path}/numpy_major;; esac\n'
                      f'exec {sys.executable} "$@"\n')
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "cmake").write_text("#!/bin/sh\nexit 0\n")
    for exe in (python, fake_bin / "cmake"):
        exe.chmod(0o755)
    env = {**os.environ, "AVAG_VENV": str(venv), "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> list[str]:
        log.write_text("")
        out = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *args], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return [line for line in log.read_text().splitlines() if " install " in f" {line} "]

    return run, root


def test_a_system_setup_is_kept_by_a_later_plain_run(recorded_setup):
    """`scripts/setup.sh --system` on a robot, then `scripts/test.sh` (which runs setup.sh
    without flags): the second run must not install the pinned workstation stack (torch
    2.11 from PyPI) over the machine's torch."""
    setup, root = recorded_setup
    first = setup("--system")
    assert any("robot.txt" in line for line in first), first
    assert not any("jetpack6.txt" in line for line in first), first  # numpy 2.x
    (root / "requirements" / "robot.txt").write_text(  # a later pull changed the requirements
        (REPO_ROOT / "requirements" / "robot.txt").read_text() + "# changed\n")
    again = setup()
    assert any("robot.txt" in line for line in again), again  # it did install again, the system way
    assert not any("base.txt" in line or "torch==" in line for line in first + again), first + again


def test_a_system_setup_over_numpy_1_keeps_numpy_1(recorded_setup, tmp_path):
    """Ubuntu 22.04 (JetPack 6, Humble): apt's Python modules are built against numpy 1.x,
    so over an installed numpy 1.x `setup.sh --system` installs `requirements/jetpack6.txt`
    (robot.txt with numpy<2)."""
    setup, _root = recorded_setup
    (tmp_path / "numpy_major").write_text("1\n")
    lines = setup("--system")
    assert any("jetpack6.txt" in line for line in lines), lines
    assert not any("torch==" in line or "base.txt" in line for line in lines), lines


def test_the_pinned_setup_refuses_another_python_with_the_way_out(tmp_path):
    """The pinned set is made for CPython 3.11 and 3.12: on another Python setup.sh stops before
    it creates anything, in one line that names the version and the two ways on."""
    python = tmp_path / "python3.10"  # a stand-in that answers the version question as 3.10
    python.write_text(f'#!/bin/sh\ncase "$*" in *version_info*) echo 3.10;; *) exec {sys.executable} "$@";; esac\n')
    python.chmod(0o755)
    venv = tmp_path / "venv"
    out = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup.sh")], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "AVAG_VENV": str(venv), "PYTHON": str(python)})
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"setup.sh: the pinned environment (requirements/constraints.txt) is for Python 3.11 or 3.12 (found 3.10 "
        f"via {python}); set PYTHON=python3.12, or use --system to build on this Python and its installed packages"]
    assert not (venv / "bin").exists()
