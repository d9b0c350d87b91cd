"""Shared fixtures: ROS 2 process isolation and paths to test data."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

TEST_DIR = Path(__file__).resolve().parent
DATA_DIR = TEST_DIR / "data"
AVAGD_DIR = DATA_DIR / "avagd"
PROCS_DIR = TEST_DIR / "procs"
REPO_ROOT = TEST_DIR.parent

# Tests run with the venv's python without `activate`: expose the venv as an ament prefix
# (where the interface build installed share/avag), as a sourced workspace would.
if sys.prefix not in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
        p for p in (sys.prefix, os.environ.get("AMENT_PREFIX_PATH")) if p
    )

# Each test that talks DDS gets its own domain so parallel or leftover processes never mix.
_domain_ids = itertools.cycle(range(random.Random(os.getpid()).randrange(1, 80), 101))


def ros_available() -> tuple[bool, str]:
    try:
        import rclpy  # noqa: F401

        import avag.msg  # noqa: F401
    except ImportError as exc:
        return False, f"rclpy or the generated avag interfaces are missing ({exc}); run scripts/setup.sh"
    return True, ""


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child ROS process: own domain, loopback discovery, private logs."""
    ok, why = ros_available()
    if not ok:
        pytest.skip(why)
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(next(_domain_ids)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOG_DIR=str(tmp_path / "ros_log"),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    return env


def run_proc(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    """Start a Python helper process from test/procs or a module (`-m ...`)."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def stop_proc(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """Terminate (SIGINT first, like Ctrl-C) and return everything the process printed."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    out = proc.stdout.read() if proc.stdout else ""
    return out
