"""``train_onset --resume``: a run killed between epochs continues each member from its last
state and writes the tensors a run never stopped writes. The real CLI, run as a script over
the committed clips (``train_onset_small.py``), killed without a word right after a state is
written, as the OOM killer or a reboot would."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

from avag_core.events.onset_state import FORMAT, state_path
from avag_core.weights.checkpoint import read_safetensors

HERE = Path(__file__).parent
RUN = ["--seed", "0,1", "--streams", "4", "--val-streams", "2", "--epochs", "3", "--batch", "2",
       "--channels", "8", "--dilations", "1,2", "--lookahead", "2", "--across", "2"]


def train(tmp_path: Path, *argv: str, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "PIDS": str(tmp_path / "pids"), **extra}
    return subprocess.run([sys.executable, str(HERE / "train_onset_small.py"), *argv], env=env,
                          capture_output=True, text=True, timeout=300)


def same_file(a: Path, b: Path) -> bool:
    x, y = load_file(a), load_file(b)
    return (set(x) == set(y) and all(np.array_equal(x[k], y[k]) for k in x)
            and read_safetensors(a, "onset model")[1] == read_safetensors(b, "onset model")[1])


def test_a_killed_run_resumes_each_member_where_it_stopped_and_writes_the_same_tensors(tmp_path):
    whole, resumed = tmp_path / "whole.safetensors", tmp_path / "resumed.safetensors"
    done = train(tmp_path, "--out", str(whole), *RUN)
    assert done.returncode == 0, done.stderr
    assert not any(state_path(whole, s).exists() for s in (0, 1))  # removed once the file is written

    # killed after member 0's three epochs and member 1's first: nothing written but the states
    killed = train(tmp_path, "--out", str(resumed), *RUN, DIE_AFTER_STATES="4")
    assert killed.returncode != 0 and not resumed.exists()
    assert all(state_path(resumed, s).is_file() for s in (0, 1))

    # resumed two members at a time (each in its own worker process)
    again = train(tmp_path, "--out", str(resumed), *RUN, "--resume", "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert "seed 0: trained before (--resume)" in again.stdout
    assert "seed 1: resumed after epoch 1/3" in again.stdout
    assert "seed 1 epoch 1/3" not in again.stdout and "seed 1 epoch 3/3" in again.stdout
    assert same_file(whole, resumed)
    assert not any(state_path(resumed, s).exists() for s in (0, 1))


def test_a_state_of_another_recipe_or_a_damaged_one_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out.safetensors"
    killed = train(tmp_path, "--out", str(out), *RUN, DIE_AFTER_STATES="1")
    assert killed.returncode != 0 and state_path(out, 0).is_file()

    other = train(tmp_path, "--out", str(out), *RUN, "--lr", "1e-3", "--resume")
    assert other.returncode == 2 and not out.exists()
    assert other.stderr.strip().splitlines()[-1] == (
        f"train_onset_small.py: error: {state_path(out, 0)} was trained with --lr 0.003, this run has 0.001: "
        "run it as it was, or without --resume to start anew")

    state_path(out, 1).write_bytes(b"not a state")
    damaged = train(tmp_path, "--out", str(out), *RUN, "--resume")
    assert damaged.returncode == 2 and not out.exists()
    assert damaged.stderr.strip().splitlines()[-1].startswith(
        f"train_onset_small.py: error: {state_path(out, 1)} cannot be read as a member's training state")

    torch.save({"format": FORMAT, "seed": 1}, state_path(out, 1))  # the tag, but not a whole state
    partial = train(tmp_path, "--out", str(out), *RUN, "--resume")
    assert partial.returncode == 2 and not out.exists()
    assert partial.stderr.strip().splitlines()[-1] == (
        f"train_onset_small.py: error: {state_path(out, 1)} is not a member's training state of train_onset")

    # without --resume the run starts anew over the states (and says so), the same file as never stopped
    anew = train(tmp_path, "--out", str(out), *RUN)
    assert anew.returncode == 0, anew.stderr
    assert "starting anew over the states of a stopped run" in anew.stderr
    assert "resumed" not in anew.stdout
    whole = tmp_path / "whole.safetensors"
    assert train(tmp_path, "--out", str(whole), *RUN).returncode == 0
    assert same_file(whole, out)
