"""Adapting the learned onset model to a room (``train_onset --init FILE --room PATH``) and
scoring it on the half of each benchmark background it never heard
(``hearing_bench --background-part``, ``--write-backgrounds``). Tiny models and the
committed clips, so the tests run in seconds."""

import time

import numpy as np
import pytest
import soundfile as sf
from audio_clips import ACTIONS, load

from avag_core.benchmarks import hearing_bench as hb
from avag_core.benchmarks.hearing_sets import RecordingSet
from avag_core.events.onset_data import HOP, SR, Library, StreamRecipe, make_stream

TINY = ["--streams", "4", "--val-streams", "2", "--epochs", "1", "--batch", "2"]
SHAPE = ["--channels", "8", "--dilations", "1,2", "--lookahead", "2"]


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def band_share(x: np.ndarray, hz: float) -> float:
    """Share of ``x``'s power within 100 Hz of ``hz``."""
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(p[np.abs(f - hz) < 100].sum() / p.sum())


def small_library(cache=None, seed=0, synth=0, more=()) -> Library:
    music, speech = load("music_city_blues"), load("speech_espeak")
    return Library([load(f"action_{a}") for a in ACTIONS], [music], [music[: 4 * SR]], speech)


def test_room_streams_play_the_room_and_other_recipes_draw_as_before():
    lib = small_library()
    lib.room = [tone(3000.0, 3.0)]
    plain = make_stream(small_library(), np.random.default_rng(3), StreamRecipe())
    same = make_stream(lib, np.random.default_rng(3), StreamRecipe())  # room_p 0: no draw, no room
    assert all(np.array_equal(a, b) for a, b in zip(plain, same, strict=True))
    assert band_share(plain[0], 3000.0) < 0.1
    for seed in range(4):
        audio, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(room_p=1.0))
        quiet = np.flatnonzero(labels[:, 1] == 0)[40:]  # frames between actions
        between = np.concatenate([audio[k * HOP:(k + 1) * HOP] for k in quiet])
        assert band_share(between, 3000.0) > 0.9, seed


def test_a_room_fine_tunes_each_member_of_a_trained_file(monkeypatch, tmp_path):
    """``--init`` starts every member from the file's (a learning rate of nothing leaves
    them there; a member with the convolution along the bands keeps it, as in the shipped
    file), ``--room`` puts a share of the streams over the room, the metadata says so; a
    seed count that does not match the members, a missing room or file: one usage line,
    exit 2, nothing written."""
    from safetensors.numpy import load_file

    from avag_core.events import train_onset
    from avag_core.events.onset_model import OnsetEnsemble, load_onset_model
    from avag_core.weights.checkpoint import read_safetensors

    monkeypatch.setattr(train_onset, "load_library", small_library)
    recipes = []
    real_make_stream = train_onset.make_stream

    def make(lib, rng, recipe):
        recipes.append((recipe.room_p, len(lib.room)))
        return real_make_stream(lib, rng, recipe)

    monkeypatch.setattr(train_onset, "make_stream", make)
    init = tmp_path / "init.safetensors"
    plain, across = tmp_path / "plain.safetensors", tmp_path / "across.safetensors"
    assert train_onset.main(["--out", str(plain), "--seed", "0", *TINY, *SHAPE]) == 0
    assert train_onset.main(["--out", str(across), "--seed", "1", "--across", "2", *TINY, *SHAPE]) == 0
    assert train_onset.main(["--out", str(init), "--join", f"{plain},{across}"]) == 0
    room = tmp_path / "room"
    room.mkdir()
    sf.write(room / "fan.wav", tone(3000.0, 2.0), SR)
    (room / "notes.txt").write_text("not audio")  # left out: not an audio file by its name
    recipes.clear()
    still = tmp_path / "still.safetensors"
    assert train_onset.main(["--out", str(still), "--init", str(init), "--room", str(room), "--lr", "1e-30", *TINY]) == 0
    assert set(recipes) == {(0.5, 1)} and len(recipes) == 2 * 6
    assert set(load_file(still)) == set(load_file(init))
    for name, value in load_file(init).items():
        np.testing.assert_allclose(load_file(still)[name], value, atol=1e-6)
    moved = tmp_path / "moved.safetensors"
    assert train_onset.main(["--out", str(moved), "--init", str(init), "--room", str(room / "fan.wav"),
                             "--room-share", "1", "--lr", "1e-2", *TINY]) == 0
    model = load_onset_model(moved)
    assert isinstance(model, OnsetEnsemble) and len(model.members) == 2 and model.shape == load_onset_model(init).shape
    assert [m.shape.across for m in model.members] == [0, 2]
    a, b = load_file(init), load_file(moved)
    assert all(not np.allclose(a[f"members.{k}.head.weight"], b[f"members.{k}.head.weight"]) for k in (0, 1))
    meta = read_safetensors(moved, "onset model")[1]
    assert (meta["init"], meta["room_recordings"], meta["room_seconds"], meta["room_share"]) == (
        "init.safetensors", "1", "2.0", "1.0")
    sf.write(tmp_path / "click.wav", tone(3000.0, 0.1), SR)  # shorter than an excerpt's cross-fades
    bad = tmp_path / "bad.safetensors"
    for wrong in (["--init", str(init), "--seed", "0"], ["--init", str(init), "--room", str(tmp_path / "click.wav")], ["--init", str(init), "--room", str(tmp_path / "no.wav")],
                  ["--init", str(tmp_path / "none.safetensors")], ["--room", str(tmp_path)],
                  ["--init", str(init), "--room-share", "2"]):
        with pytest.raises(SystemExit) as err:
            train_onset.main(["--out", str(bad), *TINY, *wrong])
        assert err.value.code == 2 and not bad.exists(), wrong


def test_hard_negatives_weigh_only_the_background_frames_that_fire():
    """``loss_of(..., hard_negatives=W)``: a background frame scored at or above
    HARD_NEGATIVE_P counts W times, one below it and every onset frame (even one that fires)
    count once, a frame of weight 0 stays out; W = 1 is the plain loss."""
    import torch
    import torch.nn.functional as F

    from avag_core.events.train_onset import _ONSET_POS_WEIGHT, HARD_NEGATIVE_P, loss_of

    p_fire = torch.tensor(HARD_NEGATIVE_P)  # exactly at the threshold: fires
    on = torch.tensor([4.0, torch.logit(p_fire), -1.0, 3.0, 2.0, -4.0])  # onset logits
    act = torch.tensor([0.5, -0.5, 1.0, 0.0, -2.0, 1.5])
    y = torch.tensor([[0, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1]], dtype=torch.float32)
    logits = torch.stack([on, act])[None]
    onset = F.binary_cross_entropy_with_logits(on, y[:, 0], reduction="none",
                                               pos_weight=torch.tensor(_ONSET_POS_WEIGHT))
    per_frame = onset + 0.5 * F.binary_cross_entropy_with_logits(act, y[:, 1], reduction="none")

    def expected(w):
        return float((per_frame * w).sum() / w.sum())

    plain = torch.tensor([1.0, 1, 1, 1, 0, 1])
    hard = torch.tensor([3.0, 3, 1, 1, 0, 1])  # frames 0 and 1 fire on background; 3 fires on an onset
    assert float(loss_of(logits, y[None])) == pytest.approx(expected(plain), rel=1e-6)
    assert float(loss_of(logits, y[None], 1.0)) == float(loss_of(logits, y[None]))
    assert float(loss_of(logits, y[None], 3.0)) == pytest.approx(expected(hard), rel=1e-6)
    grads = []
    for w in (1.0, 3.0):
        x = logits.clone().requires_grad_(True)
        loss_of(x, y[None], w).backward()
        grads.append(x.grad[0, 0])
    # the firing background frame's pull grows against a quiet one's; the onset frame's does not
    ratio = (grads[1][0] / grads[1][2]) / (grads[0][0] / grads[0][2])
    assert float(ratio) == pytest.approx(3.0, rel=1e-5)
    assert float((grads[1][3] / grads[1][2]) / (grads[0][3] / grads[0][2])) == pytest.approx(1.0, rel=1e-5)
    assert float(grads[1][4]) == 0.0


def test_hard_negatives_change_the_fine_tune_and_are_recorded(monkeypatch, tmp_path):
    """``train_onset --hard-negatives W`` reaches the loss (same streams, other weights),
    the file records W; W below 1 or not a number: one usage line, exit 2, nothing written."""
    from safetensors.numpy import load_file

    from avag_core.events import train_onset
    from avag_core.weights.checkpoint import read_safetensors

    monkeypatch.setattr(train_onset, "load_library", small_library)
    init = tmp_path / "init.safetensors"
    assert train_onset.main(["--out", str(init), *TINY, *SHAPE]) == 0
    room = tmp_path / "fan.wav"
    sf.write(room, tone(3000.0, 2.0), SR)
    common = ["--init", str(init), "--room", str(room), "--lr", "1e-2", *TINY]
    files = {}
    for w in ("1", "1", "50"):
        files.setdefault(w, []).append(tmp_path / f"w{w}_{len(files.get(w, []))}.safetensors")
        assert train_onset.main(["--out", str(files[w][-1]), "--hard-negatives", w, *common]) == 0
    same, other = load_file(files["1"][0]), load_file(files["1"][1])
    assert all(np.array_equal(same[k], other[k]) for k in same)  # one command, one file
    hard = load_file(files["50"][0])
    assert any(not np.allclose(same[k], hard[k]) for k in same)
    assert read_safetensors(files["50"][0], "onset model")[1]["hard_negatives"] == "50"
    assert read_safetensors(files["1"][0], "onset model")[1]["hard_negatives"] == "1"
    bad = tmp_path / "bad.safetensors"
    for wrong in ("0.5", "nan", "inf", "many"):
        with pytest.raises(SystemExit) as err:
            train_onset.main(["--out", str(bad), "--hard-negatives", wrong, *common])
        assert err.value.code == 2 and not bad.exists(), wrong


def test_jobs_train_members_in_their_own_processes_and_write_the_same_file(monkeypatch, tmp_path):
    """``train_onset --jobs N`` (the real CLI, run as a script over the small library, in a
    process that has run autograd as torch.compile does: a forked worker could not train):
    each member trains in a worker process (not the command's, one each), fresh members and a
    room fine-tuning of a mixed file alike, and the file is the same tensors and metadata as
    the members trained in turn; N below 1 or not a number: one usage line, exit 2, nothing
    written; a worker that dies: one line, exit 1, nothing written; the command stopped with
    SIGTERM while its workers train: they end with it (none trains on, orphaned)."""
    import os
    import subprocess
    import sys
    from collections import Counter
    from pathlib import Path

    from safetensors.numpy import load_file

    from avag_core.events import train_onset
    from avag_core.weights.checkpoint import read_safetensors

    here = Path(__file__).parent
    pids = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
           "PIDS": str(pids)}

    def train(*argv: str, **extra: str) -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, str(here / "train_onset_small.py"), *argv], env={**env, **extra},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, proc.communicate(timeout=240)[1]

    monkeypatch.setattr(train_onset, "load_library", small_library)
    room = tmp_path / "fan.wav"
    sf.write(room, tone(3000.0, 2.0), SR)
    a, b, mixed = (tmp_path / f"{n}.safetensors" for n in ("a", "b", "mixed"))
    assert train_onset.main(["--out", str(a), "--seed", "0", *TINY, *SHAPE]) == 0
    assert train_onset.main(["--out", str(b), "--seed", "1", "--across", "2", *TINY, *SHAPE]) == 0
    assert train_onset.main(["--out", str(mixed), "--join", f"{a},{b}"]) == 0
    runs = {"fresh": ["--seed", "3,1", *TINY, *SHAPE, "--across", "2"],
            "room": ["--init", str(mixed), "--room", str(room), "--lr", "1e-2", *TINY]}
    for name, common in runs.items():
        files = {}
        for jobs in ("1", "2"):
            pids.unlink(missing_ok=True)
            files[jobs] = tmp_path / f"{name}_{jobs}.safetensors"
            proc, err = train("--out", str(files[jobs]), "--jobs", jobs, *common, TOGETHER=jobs)
            assert proc.returncode == 0, err
            seen = pids.read_text().split()
            assert len(seen) == 2 * 6  # two members, six streams each
            if jobs == "1":
                assert set(seen) == {str(proc.pid)}, name
            else:  # each member's six streams made in its own worker
                assert str(proc.pid) not in seen and sorted(Counter(seen).values()) == [6, 6], name
        one, two = load_file(files["1"]), load_file(files["2"])
        assert set(one) == set(two) and all(np.array_equal(one[k], two[k]) for k in one), name
        assert read_safetensors(files["1"], "onset model")[1] == read_safetensors(files["2"], "onset model")[1]
    bad = tmp_path / "bad.safetensors"
    for wrong in ("0", "-1", "two", "1.5"):
        with pytest.raises(SystemExit) as err:
            train_onset.main(["--out", str(bad), "--jobs", wrong, *TINY, *SHAPE])
        assert err.value.code == 2 and not bad.exists(), wrong
    proc, err = train("--out", str(bad), "--jobs", "2", *runs["fresh"], KILL="1")  # the OOM killer, say
    assert proc.returncode == 1 and not bad.exists()
    assert err.strip().splitlines() == [
        f"train_onset: error: a training process died (out of memory? fewer --jobs than 2); nothing written to {bad}"]

    # the command stopped with SIGTERM while its workers train: they end with it, none trains on
    pids.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(here / "train_onset_small.py"), "--out", str(bad), "--jobs", "2",
                             *runs["fresh"]], env={**env, "HOLD": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120.0
    while not (pids.exists() and len(pids.read_text().split()) == 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2 and proc.pid not in workers
    proc.terminate()
    proc.wait(timeout=60)

    def running(pid: int) -> bool:  # a zombie no one reaped has ended too
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 60.0
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, workers)) and not bad.exists()


def test_the_benchmark_plays_one_half_of_each_background_and_writes_the_other(tmp_path):
    """``--background-part second`` never plays the first half of a recording (a room
    adapted on ``--write-backgrounds`` of the first half is scored on sounds it never heard)."""
    both = np.concatenate([tone(1000.0, 3.0), tone(2500.0, 3.0)])
    path = tmp_path / "hum.wav"
    sf.write(path, both, SR)
    rset = RecordingSet(name="t", actions=(), backgrounds={"hum": ("none", (str(path),))}, voices=("en",),
                        text=str(tmp_path / "text"))
    assert np.array_equal(hb.part_of(both, "whole"), both)
    assert np.array_equal(np.concatenate([hb.part_of(both, "first"), hb.part_of(both, "second")]), both)
    rng = np.random.default_rng(0)
    second = hb.background("hum", 20.0, rng, tmp_path, rset, "second")
    first = hb.background("hum", 20.0, rng, tmp_path, rset, "first")
    assert band_share(second, 2500.0) > 0.95 and band_share(second, 1000.0) < 0.01
    assert band_share(first, 1000.0) > 0.95 and band_share(first, 2500.0) < 0.01
    out = tmp_path / "room"
    assert hb.write_backgrounds(out, ["hum", "white"], rset, "first", tmp_path, 0) == 0
    hum, rate = sf.read(out / "t_hum_0_first.wav", dtype="float32")
    assert rate == SR and hum.size == both.size // 2 and band_share(hum, 1000.0) > 0.95
    assert abs(10 * np.log10(np.mean(hum ** 2)) + 20.0) < 0.5  # -20 dBFS, as the benchmark plays it
    white, _ = sf.read(out / "t_white_0_first.wav", dtype="float32")
    assert white.size == 60 * SR
