"""Few-shot enrollment: a new action taught from a few clips is named and passes the gate."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from avag_core.data.synth.distractors import synth_distractor_sound
from avag_core.data.synth.sounds import _add, _click, synth_action_sound
from avag_core.errors import AvagError
from avag_core.hearing import ActionRecognizer
from avag_core.hearing.enrollment import Enrollment
from avag_core.weights.checkpoint import load_model_checkpoint


def knock(seed: int, sr: int = 16000) -> np.ndarray:
    """Knuckles on wood, in groups of 2-4: a sound family the head was never trained on."""
    rng = np.random.default_rng([4242, seed])
    n = int(rng.uniform(1.0, 2.0) * sr)
    out = np.zeros(n)
    f = rng.uniform(250, 700)
    t = rng.uniform(0.05, 0.2)
    while t * sr < n - 0.1 * sr:
        for _ in range(int(rng.integers(2, 5))):
            _add(out, _click(rng, sr, f * rng.uniform(0.95, 1.05), 0.02), int(t * sr))
            t += rng.uniform(0.12, 0.2)
        t += rng.uniform(0.3, 0.6)
    out = out / np.abs(out).max() + 0.01 * rng.standard_normal(n)
    return (out / np.abs(out).max() * 10 ** (rng.uniform(-18, -3) / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def model(shipped_checkpoint):
    return load_model_checkpoint(shipped_checkpoint)[0]


def test_enrolled_action_is_named_and_passes_the_gate(shipped_checkpoint, model) -> None:
    rec = ActionRecognizer.load(shipped_checkpoint)
    tests = [knock(100 + i) for i in range(8)]
    before = [rec.recognize(model, x, 16000) for x in tests]
    assert sum(h.is_action for h in before) <= 2  # unknown to the head: mostly rejected
    assert rec.enroll("knock", [knock(i) for i in range(5)], 16000) == 5
    assert rec.classes[-1] == "knock"
    after = [rec.recognize(model, x, 16000) for x in tests]
    assert sum(h.label == "knock" and h.is_action for h in after) >= 7
    # trained actions keep their names, distractors stay rejected
    for i, aff in enumerate(("hit", "twist", "press", "zip")):
        h = rec.recognize(model, synth_action_sound(aff, np.random.default_rng([31, i])), 16000)
        assert h.label == aff and h.is_action
    for i, kind in enumerate(("cough", "clapping", "alarm", "noise")):
        assert not rec.recognize(model, synth_distractor_sound(kind, np.random.default_rng([31, i])), 16000).is_action


def test_enrollment_file_round_trip_and_extension(tmp_path, shipped_checkpoint, model) -> None:
    rec = ActionRecognizer.load(shipped_checkpoint)
    rec.enroll("knock", [knock(i) for i in range(3)], 16000, model)
    path = rec.save_enrollment(tmp_path / "e.safetensors")
    again = ActionRecognizer.load(shipped_checkpoint, enrollment_path=path)
    assert again.enrollment.counts() == {"knock": 3}
    h1 = rec.recognize(model, knock(50), 16000)
    h2 = again.recognize(model, knock(50), 16000)
    assert h1.label == h2.label == "knock" and abs(h1.confidence - h2.confidence) < 1e-5
    assert again.enroll("knock", [knock(10), knock(11)], 16000) == 5  # refines the prototype
    # stereo clips at another rate work too
    stereo = np.stack([knock(12, 22050), knock(12, 22050)])
    assert again.enroll("knock", [stereo], 22050, model) == 6


def test_bad_enrollments_are_refused_in_one_line(tmp_path, shipped_checkpoint, model) -> None:
    rec = ActionRecognizer.load(shipped_checkpoint)
    cases = [
        (lambda: rec.enroll("twist", [knock(0)], 16000, model), "already a trained class"),
        (lambda: rec.enroll("none", [knock(0)], 16000, model), "already a trained class"),
        (lambda: rec.enroll("bad name!", [knock(0)], 16000, model), "must be 1-64 letters"),
        (lambda: rec.enroll("knock", [], 16000, model), "no clips given"),
        (lambda: rec.enroll("knock", [np.array([np.nan] * 100, np.float32)], 16000, model), "NaN"),
    ]
    for call, msg in cases:
        with pytest.raises(AvagError) as err:
            call()
        assert msg in str(err.value) and "\n" not in str(err.value)
    assert len(rec.enrollment) == 0  # nothing half-added
    # an enrollment file made for another head is refused
    other = Enrollment(dim=rec.head.cfg.proj_dim, head_id="0123456789abcdef")
    other.add("knock", rec.project(rec._embedder(model).embed([knock(0)], 16000)))
    path = other.save(tmp_path / "other.safetensors")
    with pytest.raises(AvagError, match="made for another action head"):
        ActionRecognizer.load(shipped_checkpoint, enrollment_path=path)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(AvagError, match=r"junk\.safetensors is not a readable safetensors file"):
        ActionRecognizer.load(shipped_checkpoint, enrollment_path=tmp_path / "junk.safetensors")


def _avag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avag_core.cli.main", *args],
                          capture_output=True, text=True, timeout=180)


def test_enroll_cli_writes_a_file_the_recognizer_uses(tmp_path, shipped_checkpoint) -> None:
    clips = []
    rates = (16000, 44100, 22050, 16000, 48000)
    for i, rate in enumerate(rates):
        p = tmp_path / f"knock{i}.wav"
        sf.write(p, knock(i, rate), rate)
        clips.append(str(p))
    out = tmp_path / "enrolled.safetensors"
    res = _avag("enroll", "--checkpoint", str(shipped_checkpoint), "--name", "knock", "--out", str(out), *clips)
    assert res.returncode == 0, res.stderr
    assert "enrolled 'knock': 5 clip(s)" in res.stdout and out.is_file()
    # the enrolled sounds again, 3 dB quieter: the file must be read and matched
    tests = []
    for i in range(5):
        tests.append(str(tmp_path / f"test{i}.wav"))
        sf.write(tests[-1], 0.7 * knock(i, rates[i]), rates[i])
    res = _avag("heard", "recognize", "--checkpoint", str(shipped_checkpoint), "--enrollment", str(out), *tests)
    assert res.returncode == 0, res.stderr
    named = [line for line in res.stdout.splitlines() if ": knock " in line and "action -> masks" in line]
    assert len(named) >= 4, res.stdout
    # too few clips: exit 2, one line, the file is untouched
    before = out.read_bytes()
    res = _avag("enroll", "--checkpoint", str(shipped_checkpoint), "--name", "tap", "--out", str(out), *clips[:2])
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "enroll needs 3-10 clips, got 2" in res.stderr
    assert out.read_bytes() == before
