"""A failing test fails once. colcon-core declares two pytest plugins that run tests again
(for `colcon test`, which avag does not use); scripts/setup.sh installs colcon without them
(requirements/colcon-nodeps.txt) and pyproject.toml blocks them for system installs that
have them from apt. Nothing in avag asks for a test to be run again."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AGAIN_PLUGINS = ("rerunfailures", "repeat")  # their names in pytest's plugin manager


def test_a_failing_test_fails_once(tmp_path):
    (tmp_path / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                          "--rootdir", str(tmp_path), "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    summary = run.stdout.strip().splitlines()[-1].strip("= ")  # "1 failed in 0.05s": no "rerun" count
    assert summary.startswith("1 failed in"), out


def test_no_plugin_that_runs_tests_again_is_loaded(pytestconfig):
    loaded = [name for name in AGAIN_PLUGINS if pytestconfig.pluginmanager.hasplugin(name)]
    assert loaded == []


def _system_site_packages() -> bool:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    return cfg.is_file() and "include-system-site-packages = true" in cfg.read_text()


@pytest.mark.skipif(_system_site_packages(), reason="a --system install keeps apt's pytest plugins (blocked)")
def test_those_plugins_are_not_installed():
    assert [m for m in ("pytest_" + n for n in AGAIN_PLUGINS) if importlib.util.find_spec(m)] == []
