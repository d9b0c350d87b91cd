"""A run killed (SIGKILL) after logging steps past its last checkpoint and resumed logs
every step exactly once, with the values of an uninterrupted run."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
from train_data import make_tiny_dataset, tiny_train_cmd, train_env

from avag_core.training.trainer import PAUSE_ENV, PAUSE_STEP_ENV, STATE_FILE


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("synth") / "data", n_train=6, n_val=3)


def _cmd(data: Path, out: Path, resume: bool = False) -> list[str]:
    return tiny_train_cmd(data, out, "--set", "train.log_interval=1", resume=resume)


def _env(**extra: str) -> dict[str, str]:
    return train_env(PAUSE_ENV, PAUSE_STEP_ENV, **extra)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_log_has_no_repeated_steps_after_kill_and_resume(tiny_data, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    # The victim stops right after logging step 3; its last checkpoint is from step 2.
    victim = subprocess.Popen(_cmd(tiny_data, killed), env=_env(**{PAUSE_STEP_ENV: "3:300"}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ref = subprocess.run(_cmd(tiny_data, full), env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    log = killed / "train_log.csv"
    deadline = time.monotonic() + 240
    while not (log.exists() and any(r["step"] == "3" for r in _rows(log))):
        assert victim.poll() is None, victim.stdout.read()
        assert time.monotonic() < deadline, "step 3 was never logged"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert [r["step"] for r in _rows(log)] == ["1", "2", "3"]  # one step past the checkpoint

    res = subprocess.run(_cmd(tiny_data, killed, resume=True), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    got, want = _rows(log), _rows(full / "train_log.csv")
    assert [int(r["step"]) for r in got] == list(range(1, 7))
    for a, b in zip(got, want, strict=True):  # the same losses as the uninterrupted run
        assert (a["step"], a["epoch"], a["total"], a["lr"]) == (b["step"], b["epoch"],
                                                                b["total"], b["lr"])
    assert [r["step"] for r in _rows(killed / "val_log.csv")] == \
        [r["step"] for r in _rows(full / "val_log.csv")]
    assert (killed / STATE_FILE).exists()
