"""Shared fixtures: ROS 2 process isolation and paths to test data."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import random
import subprocess
import sys
import tempfile
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
_first_domain = random.Random(os.getpid()).randrange(1, 101)
_domain_ids = itertools.cycle([*range(_first_domain, 101), *range(1, _first_domain)])  # all of 1-100
_DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "avag-test-ros-domains"


def claim_ros_domain() -> tuple[int, int]:
    """A DDS domain that no other test session on this machine holds, and the descriptor
    of its lock (close it to release). Why: two suites side by side (a clone's CI beside a
    developer's run) once drew the same domain, and each node heard the other's feeder."""
    _DOMAIN_LOCKS.mkdir(exist_ok=True)
    for _ in range(100):
        domain = next(_domain_ids)
        fd = os.open(_DOMAIN_LOCKS / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return domain, fd
    raise RuntimeError(f"every ROS domain 1-100 is held by another test session ({_DOMAIN_LOCKS})")


def ros_available() -> tuple[bool, str]:
    try:
        import rclpy  # noqa: F401

        import avag.msg  # noqa: F401
    except ImportError as exc:
        return False, f"rclpy or the generated avag interfaces are missing ({exc}); run scripts/setup.sh"
    return True, ""


ROS_OK, ROS_WHY = ros_available()
# for tests and modules that need rclpy and the avag interfaces: `pytestmark = needs_ros`
needs_ros = pytest.mark.skipif(not ROS_OK, reason=ROS_WHY)


@pytest.fixture
def ros_env(tmp_path: Path):
    """Environment for a child ROS process: own domain (held for the test), loopback
    discovery, private logs."""
    if not ROS_OK:
        pytest.skip(ROS_WHY)
    domain, lock = claim_ros_domain()
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOG_DIR=str(tmp_path / "ros_log"),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    yield env
    os.close(lock)


@contextlib.contextmanager
def in_ros_env(env: dict[str, str]):
    """Run in-process ROS code (a recorder in the test process) in the test's own domain."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def read_bag(bag: Path) -> dict[str, list]:
    """Every message of a rosbag2 folder, deserialized, by topic (the package's own reader)."""
    from avag_ros.bag.evaluate import read_topics

    return {topic: [m for _t, m in msgs] for topic, msgs in read_topics(bag).items()}


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
    """Terminate (SIGINT first, like Ctrl-C) and return everything the process printed,
    followed by a line saying so where it had to be killed or a signal ended it (a crash
    such as a SIGSEGV prints nothing of its own)."""
    killed = False
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = True
    out = proc.stdout.read() if proc.stdout else ""
    if killed:
        out += f"\n[still running {timeout:g} s after SIGINT: killed]"
    elif proc.returncode < 0:
        out += f"\n[ended by signal {-proc.returncode}]"
    return out


@pytest.fixture
def virtual_mic(tmp_path: Path):
    """A private PulseAudio server with a null sink and a virtual microphone fed by it:
    whatever `paplay` plays reaches `sounddevice` input device 'default' in real time."""
    import shutil
    import time

    if not shutil.which("pulseaudio") or not shutil.which("paplay"):
        pytest.skip("pulseaudio/paplay not installed (scripts/setup.sh installs them)")
    runtime = tmp_path / "pulse_runtime"
    home = tmp_path / "pulse_home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    config = tmp_path / "virtual_mic.pa"
    config.write_text(
        "load-module module-native-protocol-unix auth-anonymous=1\n"
        "load-module module-null-sink sink_name=vspeaker\n"
        "load-module module-virtual-source source_name=vmic master=vspeaker.monitor\n"
        "set-default-sink vspeaker\n"
        "set-default-source vmic\n"
    )
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(home))
    env.pop("PULSE_SERVER", None)
    server = subprocess.Popen(
        ["pulseaudio", "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1",
         "--disallow-exit", "--log-target=stderr"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 15
    while not (runtime / "pulse" / "native").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            err = server.stderr.read() if server.poll() is not None else ""
            server.kill()
            pytest.fail(f"pulseaudio did not start: {err[-500:]}")
        time.sleep(0.05)
    try:
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()


SHIPPED_CHECKPOINT = REPO_ROOT / "avag_core" / "checkpoints" / "realtime_synth.safetensors"


@pytest.fixture(scope="session")
def shipped_checkpoint() -> Path:
    """The small checkpoint shipped in the repository (what the demo and the node use)."""
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.fail(f"{SHIPPED_CHECKPOINT} is missing: it is part of the repository")
    return SHIPPED_CHECKPOINT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint file of the tiny preset with seeded random weights (fast to run)."""
    import torch

    from avag_core.config import load_config
    from avag_core.modeling import build_model
    from avag_core.weights.checkpoint import save_model_checkpoint

    torch.manual_seed(0)
    cfg = load_config("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_model_checkpoint(path, build_model(cfg.model), cfg)
    return path
