"""The detector on real recordings committed under test/data/audio (licences in LICENSES.md).

Speech (espeak-ng, three voices) and music (lincity-ng) alone, and real action recordings
(a metal chink, a stamp, a demolition crash, coins) laid over them at known times and
SNRs, fed in 512-sample chunks as the node feeds them. The full benchmark (many more
recordings, 20/10/5/0 dB) is ``python -m avag_core.benchmarks.hearing_bench``; this checks
what the committed clips can show in CI.
"""

import numpy as np
import pytest
from audio_clips import ACTIONS, DETECTORS, SR, load, onsets_of

from avag_core.data.synth.backgrounds import (
    active_power,
    background_power,
    background_track,
    gain_for_snr,
    place,
    shipped_recordings,
)
from avag_core.events import EventConfig


def mix(background: str, snr_db: float) -> tuple[np.ndarray, list[float]]:
    x = load(background)
    bp = background_power(x)
    times = list(np.arange(2.0, 19.0, 2.2))
    for k, t in enumerate(times):
        a = load(f"action_{ACTIONS[k % len(ACTIONS)]}")
        place(x, a, int(t * SR), gain_for_snr(a, bp, snr_db, SR))
    return x, times


def hits(found: list[float], truth: list[float], tol: float = 0.05) -> int:
    return sum(any(abs(f - t) <= tol for f in found) for t in truth)


@DETECTORS
def test_speech_alone_gives_no_event_and_energy_detector_is_the_bug(cfg):
    speech = load("speech_espeak")
    assert onsets_of(speech, cfg) == []
    # the old energy detector holds on speech: it finds none of the actions over it
    x, truth = mix("speech_espeak", 20.0)
    assert hits(onsets_of(x, EventConfig(detector="energy")), truth) <= 2


@DETECTORS
def test_actions_over_speech_at_20_db_are_found_within_50_ms(cfg):
    x, truth = mix("speech_espeak", 20.0)
    found = onsets_of(x, cfg)
    # flux 7 of 8: the last action starts 2.2 s into an event that is still sounding and
    # rises too little to split it (split_min_s 2.5 s, split_rise_db 10 dB)
    assert hits(found, truth) >= 7
    assert hits(found, truth, tol=0.1) == len(found)  # no false alarm


@DETECTORS
def test_actions_over_speech_at_10_db_half_are_found_and_nothing_else(cfg):
    x, truth = mix("speech_espeak", 10.0)
    found = onsets_of(x, cfg)
    assert hits(found, truth) >= len(truth) // 2
    assert hits(found, truth, tol=0.1) == len(found)  # no false alarm


@DETECTORS
def test_actions_over_music(cfg):
    music = load("music_city_blues")
    alone = onsets_of(music, cfg)
    assert len(alone) <= 3  # drum-like hits in 20 s of music: what this detector still calls events
    x, truth = mix("music_city_blues", 10.0)
    found = onsets_of(x, cfg)
    assert hits(found, truth) >= 5
    assert len(found) <= hits(found, truth) + len(alone)


def test_background_helpers_keep_the_snr_convention():
    rng = np.random.default_rng(0)
    recs = [load("speech_espeak"), load("music_city_blues")]
    track = background_track(recs, 30.0, rng, SR)
    assert track.size == 30 * SR and np.isfinite(track).all()
    a = load("action_raze")
    g = gain_for_snr(a, background_power(track), 5.0, SR)
    assert 10 * np.log10(active_power(g * a, SR) / background_power(track)) == pytest.approx(5.0, abs=1e-3)
    assert {p.stem for p in shipped_recordings()} == {"speech_espeak", "music_city_blues"}
