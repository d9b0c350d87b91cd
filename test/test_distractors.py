"""Distractor sounds (data/synth/distractors.py): every kind, levels, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from avag_core.data.synth import distractors as D
from avag_core.data.synth.sounds import synth_action_sound
from avag_core.errors import AvagError


@pytest.mark.parametrize("kind", D.GENERATED)
def test_generated_kinds_are_clips_at_action_levels(kind: str) -> None:
    x = D.synth_distractor_sound(kind, np.random.default_rng(3), 16000, duration=1.5)
    assert x.dtype == np.float32 and x.shape == (24000,)
    assert np.isfinite(x).all()
    peak = float(np.abs(x).max())
    if kind == "silence":
        assert peak <= 2e-3
    else:  # the same -18..-3 dBFS peak range as the action sounds
        assert 10 ** (-18.5 / 20) <= peak <= 10 ** (-2.5 / 20)


def test_same_seed_same_clip_other_seed_other_clip() -> None:
    a = D.synth_distractor_sound("clapping", np.random.default_rng(5))
    b = D.synth_distractor_sound("clapping", np.random.default_rng(5))
    c = D.synth_distractor_sound("clapping", np.random.default_rng(6))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def need(kind: str) -> None:
    """Skip, naming the Debian package, where a real-sound kind is not installed."""
    if kind not in D.available_kinds():
        pkg = "espeak-ng" if kind == "speech" else D.RECORDINGS[kind][0]
        pytest.skip(f"distractor {kind!r} needs the Debian package(s) {pkg} (apt-get install)")


def test_speech_is_real_espeak_output() -> None:
    need("speech")
    x = D.synth_distractor_sound("speech", np.random.default_rng(1), 16000, duration=2.0)
    assert x.shape == (32000,)
    # speech has pauses and syllables: the 20 ms envelope varies a lot, unlike noise
    env = np.sqrt(np.mean(x[: 32000 // 320 * 320].reshape(-1, 320) ** 2, axis=1))
    assert env.max() > 10 * np.percentile(env, 10)


@pytest.mark.parametrize("kind", D.RECORDINGS)
def test_recordings_come_from_installed_packages(kind: str) -> None:
    need(kind)
    x = D.synth_distractor_sound(kind, np.random.default_rng(2), 16000, duration=1.0)
    assert x.shape == (16000,) and float(np.abs(x).max()) > 0.05
    assert D.recording_files(kind)[0].startswith("/usr/share/")


def test_missing_espeak_is_a_one_line_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no espeak-ng on PATH
    assert "espeak-ng is not installed" in D.speech_available()
    assert "speech" not in D.available_kinds()
    with pytest.raises(AvagError) as err:
        D.synth_distractor_sound("speech", np.random.default_rng(0))
    assert "\n" not in str(err.value) and "apt-get install espeak-ng" in str(err.value)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown distractor 'kazoo'"):
        D.synth_distractor_sound("kazoo", np.random.default_rng(0))


def test_distractor_set_covers_kinds_reproducibly() -> None:
    kinds = ("cough", "alarm", "noise")
    a = D.distractor_set(2, seed=9, kinds=kinds)
    b = D.distractor_set(2, seed=9, kinds=kinds)
    assert [k for k, _ in a] == ["cough", "cough", "alarm", "alarm", "noise", "noise"]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    # distractors share the action sounds' sample rate and value range
    act = synth_action_sound("hit", np.random.default_rng(0))
    assert act.dtype == a[0][1].dtype
