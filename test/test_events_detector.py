"""The rule-based detectors (flux, energy) on synthetic signals: silence/noise, clicks,
bursts, hysteresis, limits. The learned detector (the default) has test_events_learned.py."""

import numpy as np
import pytest
from audio_clips import DETECTORS

from avag_core.events import EventConfig, SoundEventDetector, detect_events

SR = 16000
FLUX = EventConfig(detector="flux")


def db(level):
    return 10 ** (level / 20)


def noise(seconds, level_db, seed=0):
    return np.random.default_rng(seed).normal(0, db(level_db), int(seconds * SR)).astype(np.float32)


def add_click(x, t, amp=0.5, n=80):
    i = int(t * SR)
    x[i:i + n] += amp * np.hanning(n).astype(np.float32)


def stream(det, x, chunk=512, t0=0.0):
    events = []
    for i in range(0, x.size, chunk):
        events += det.process(x[i:i + chunk], t0 + i / SR)
    return events + det.flush()


@DETECTORS
@pytest.mark.parametrize("level", [-90, -60, -30, -10])
def test_twenty_seconds_of_steady_white_noise_give_no_events(level, cfg):
    assert detect_events(noise(20, level, seed=-level), SR, cfg) == []


@DETECTORS
def test_silence_and_coloured_noise_give_no_events(cfg):
    assert detect_events(np.zeros(20 * SR, np.float32), SR, cfg) == []
    rng = np.random.default_rng(5)
    brown = np.cumsum(rng.normal(0, 1, 20 * SR))
    brown -= np.convolve(brown, np.ones(400) / 400, "same")  # remove the drift
    brown = (brown / brown.std() * db(-35)).astype(np.float32)
    hum = (0.05 * np.sin(2 * np.pi * 50 * np.arange(20 * SR) / SR)).astype(np.float32)
    assert detect_events(brown, SR, cfg) == []
    assert detect_events(hum + noise(20, -70), SR, cfg) == []


def test_clicks_are_found_at_their_times():
    x = noise(20, -60)
    times = [2.0, 5.003, 8.3, 12.71, 17.5]
    for t in times:
        add_click(x, t)
    events = detect_events(x, SR, FLUX)
    assert len(events) == len(times)
    for ev, t in zip(events, times, strict=True):
        assert abs(ev.onset_time - t) < 0.02
        assert ev.start_time == pytest.approx(ev.onset_time - FLUX.pre_roll_s)
        assert ev.start_time < t < ev.end_time < t + 0.2
        assert ev.peak_score > 30  # -18 dB click over -60 dB noise
        assert not ev.truncated


def test_quiet_burst_in_noise_needs_spectral_flux():
    """+7 dB bursts stay under on_db (10 dB); the flux onset still catches them."""
    x = noise(12, -40, seed=1)
    for t in (3.0, 7.0):
        x[int(t * SR):int((t + 0.4) * SR)] *= db(7)
    events = detect_events(x, SR, FLUX)
    assert [round(e.onset_time, 1) for e in events] == [3.0, 7.0]
    assert all(abs(e.end_time - (e.onset_time + 0.4)) < 0.12 for e in events)
    energy = EventConfig(detector="energy")
    assert [round(e.onset_time, 1) for e in detect_events(x, SR, energy)] == [3.0, 7.0]
    # the energy detector's flux trigger is what catches them there
    assert detect_events(x, SR, EventConfig(detector="energy", flux_on=1e9)) == []


def test_hysteresis_and_release_merge_close_hits_only():
    x = noise(10, -60)
    tone = 0.2 * np.sin(2 * np.pi * 800 * np.arange(int(0.3 * SR)) / SR).astype(np.float32)
    for t in (2.0, 2.45, 6.0):  # 0.15 s dip (< release_s) then a 3.25 s pause
        x[int(t * SR):int(t * SR) + tone.size] += tone
    events = detect_events(x, SR, FLUX)
    assert len(events) == 2
    assert abs(events[0].onset_time - 2.0) < 0.03 and abs(events[0].end_time - 2.8) < 0.1
    assert abs(events[1].onset_time - 6.0) < 0.03
    split = detect_events(x, SR, EventConfig(detector="flux", release_s=0.1, refractory_s=0.0))
    assert len(split) == 3


def test_min_length_refractory_and_max_length():
    x = noise(10, -60)
    add_click(x, 3.0)
    add_click(x, 3.4)
    assert len(detect_events(x, SR, EventConfig(detector="flux", release_s=0.1, refractory_s=0.0))) == 2
    assert len(detect_events(x, SR, EventConfig(detector="flux", release_s=0.1, refractory_s=0.5))) == 1
    det = SoundEventDetector(EventConfig(detector="flux", min_event_s=0.2, release_s=0.1))
    assert stream(det, x) == [] and det.dropped_short == 2

    step = np.concatenate([noise(5, -70, seed=2), noise(15, -30, seed=3)])  # a fan turns on
    events = detect_events(step, SR, EventConfig(detector="flux", max_event_s=2.0))
    assert len(events) == 1 and events[0].truncated
    assert abs(events[0].onset_time - 5.0) < 0.03
    assert events[0].end_time == pytest.approx(events[0].onset_time + 2.0)


@DETECTORS
def test_streaming_matches_batch_and_chunk_size_barely_matters(cfg):
    x = noise(12, -55, seed=4)
    for t in (1.5, 4.2, 9.9):
        add_click(x, t, amp=0.3)
    batch = detect_events(x, SR, cfg)
    assert len(batch) == 3
    assert stream(SoundEventDetector(cfg), x) == batch
    small = stream(SoundEventDetector(cfg), x, chunk=160)
    assert len(small) == len(batch)
    for a, b in zip(small, batch, strict=True):
        assert abs(a.onset_time - b.onset_time) < 0.02


@DETECTORS
def test_streaming_reports_active_onset_before_the_event_ends(cfg):
    x = noise(4, -60)
    x[int(2 * SR):int(3 * SR)] += 0.1
    det = SoundEventDetector(cfg)
    seen = None
    for i in range(0, int(2.5 * SR), 512):
        assert det.process(x[i:i + 512], i / SR) == []
        seen = det.active_onset if det.active_onset is not None else seen
    assert seen is not None and abs(seen - 2.0) < 0.03


def test_stamps_not_starting_at_zero_and_nonfinite_samples():
    x = noise(6, -60)
    add_click(x, 4.0)
    x[SR:SR + 10] = np.nan
    events = detect_events(x, SR, FLUX, t0=1_700_000_000_000_000_000)
    assert len(events) == 1 and abs(events[0].onset_time - (1.7e9 + 4.0)) < 0.02


def test_gap_closes_event_and_backward_jump_resets():
    det = SoundEventDetector(FLUX)
    x = noise(3, -60)
    # loud until the stream stops (noise: a DC step was "loud" to the old detector only, and
    # DC is no sound)
    x[int(2.0 * SR):] += noise(1, -20, seed=9)
    events = []
    for i in range(0, x.size, 512):
        events += det.process(x[i:i + 512], 100.0 + i / SR)
    assert events == [] and det.active_onset is not None
    events = det.process(noise(0.032, -60), 110.0)  # 7 s later: the event cannot go on
    assert len(events) == 1 and det.discontinuities == 1
    assert abs(events[0].onset_time - 102.0) < 0.03 and events[0].end_time <= 103.0 + 1e-6
    det.process(noise(0.032, -60), 50.0)  # time jumped back: floor history restarts
    assert det.discontinuities == 2 and det.active_onset is None


def test_continuous_mode_emits_fixed_windows():
    x = noise(10, -60)
    add_click(x, 6.3)
    cfg = EventConfig(detector="flux", mode="continuous", continuous_hop_ms=250, continuous_window_s=1.0)
    windows = detect_events(x, SR, cfg, t0=20.0)
    ends = np.array([w.end_time for w in windows])
    np.testing.assert_allclose(np.diff(ends), 0.25, atol=1e-9)
    assert ends[0] == pytest.approx(21.0) and ends[-1] <= 30.0 + 1e-9 and len(windows) >= 36
    assert all(w.duration == pytest.approx(1.0) for w in windows)
    loud = [w for w in windows if w.peak_score > 20]
    assert loud and all(w.start_time <= 26.3 + 0.05 and w.end_time >= 26.3 for w in loud)
