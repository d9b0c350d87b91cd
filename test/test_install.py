"""The robot install never replaces the machine's torch (Jetson: NVIDIA's JetPack build).

A fresh virtual environment gets a stand-in for JetPack 6's torch (its real version string,
as installed metadata), then pip plans the README's robot install with `--dry-run
--report`: no torch, torchvision, torchaudio or nvidia-* wheel may be planned. pip resolves
against the real package index, as on the robot."""

from __future__ import annotations

import json
import re
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
