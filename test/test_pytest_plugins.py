"""The test run loads only the pytest plugins avag chose, and a failing test fails once.

colcon-core declares test plugins of its own (for `colcon test`, which avag does not use);
scripts/setup.sh installs colcon with --no-deps (requirements/colcon-nodeps.txt), so the
environment that runs avag's tests holds only the plugins listed here. A plugin that
appears here unasked fails the test by name."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# distribution -> why it is in the test environment
CHOSEN = {
    "pytest-timeout": "every test has a time limit (pyproject.toml)",
    "pytest-cov": "coverage, on request (requirements/base.txt)",
    "anyio": "via huggingface_hub (timm); its plugin acts only on tests marked anyio",
    "colcon-core": "the robot build path; its plugin only routes warnings to stderr",
    "typeguard": "in a fresh scripts/setup.sh environment; its plugin acts only with --typeguard-packages",
}


def test_a_failing_test_fails_once(tmp_path):
    (tmp_path / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                          "--rootdir", str(tmp_path), "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    summary = run.stdout.strip().splitlines()[-1].strip("= ")  # "1 failed in 0.05s": nothing else counted
    assert summary.startswith("1 failed in"), out


def _system_site_packages() -> bool:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    return cfg.is_file() and "include-system-site-packages = true" in cfg.read_text()


@pytest.mark.skipif(_system_site_packages(), reason="a --system install sees apt's pytest plugins too")
def test_only_the_chosen_pytest_plugins_are_installed():
    installed = {e.dist.name for e in entry_points(group="pytest11") if e.dist is not None}
    assert installed - set(CHOSEN) == set(), "pytest plugins avag did not choose are installed"
