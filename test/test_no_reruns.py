"""A failing test fails once: the rerun and repeat plugins that colcon-core declares are
never installed in avag's environment (scripts/setup.sh installs colcon with --no-deps,
requirements/colcon-nodeps.txt) and are blocked by the project's pytest configuration (for
system installs that have them from apt), so neither `--reruns`, `@pytest.mark.flaky` nor
`--count` runs a test again."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_a_failing_test_is_not_rerun(tmp_path):
    (tmp_path / "test_fails_once.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.flaky(reruns=3)\n"
        "def test_fails():\n"
        "    assert False\n"
    )
    run = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                          "--rootdir", str(tmp_path), "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    summary = run.stdout.strip().splitlines()[-1]  # e.g. "1 failed, 1 warning in 0.05s"
    assert "1 failed" in summary and "rerun" not in summary, out
    assert "rerunfailures" not in out, out  # not among the loaded plugins
    asked = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                            "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "--reruns", "2",
                            str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert asked.returncode != 0 and "--reruns" in asked.stderr, asked.stdout + asked.stderr
    assert "repeat" not in out, out  # pytest-repeat is not loaded either
    repeated = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                               "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "--count", "3",
                               str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert repeated.returncode != 0 and "--count" in repeated.stderr, repeated.stdout + repeated.stderr


def _system_site_packages() -> bool:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    return cfg.is_file() and "include-system-site-packages = true" in cfg.read_text()


@pytest.mark.skipif(_system_site_packages(), reason="a --system install keeps apt's pytest plugins (blocked above)")
def test_the_rerun_and_repeat_plugins_are_not_installed():
    assert importlib.util.find_spec("pytest_rerunfailures") is None
    assert importlib.util.find_spec("pytest_repeat") is None
