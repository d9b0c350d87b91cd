"""scripts/gpu_check.sh cannot run without an NVIDIA GPU; what can be checked here is: its
bash parses, it stops at once (non-zero, clear line) on a machine without nvidia-smi,
everything it calls exists, and its training step runs (on the CPU, tiny preset)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def test_script_parses_and_is_strict():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    for test in re.findall(r"test/\S+\.py", text):
        assert (ROOT / test).is_file(), test
    for test, name in re.findall(r"(test/\S+\.py)::(\w+)", text):  # a test named by its node id
        assert f"def {name}(" in (ROOT / test).read_text(), f"{test}::{name}"
    for module in re.findall(r"-m (avag_\w+(?:\.\w+)+)", text):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_script_refuses_a_machine_without_a_gpu(tmp_path):
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1
    assert "nvidia-smi not found" in proc.stderr


def test_training_step_bench_runs_on_cpu(tmp_path):
    out = tmp_path / "train.json"
    subprocess.run(
        [sys.executable, "-m", "avag_core.benchmarks.train_step_bench", "--config", "tiny",
         "--device", "cpu", "--batch", "2", "--steps", "2", "--amp", "fp32", "--json", str(out)],
        check=True, timeout=300, cwd=ROOT,
    )
    row = json.loads(out.read_text())
    assert row["items_per_s"] > 0 and len(row["losses"]) == 2
