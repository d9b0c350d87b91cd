"""Loud actions over quiet speech and music (the product demo's room): every action is an event
at its onset, from the first second on, whatever its bandwidth.

Uses the committed recordings under test/data/audio (licences in LICENSES.md): the speech and
music clips alternate in 2-6 s excerpts as the background (as the synthetic demo bag lays
them), the committed action clips go on top 15 or 30 dB above it, fed in 512-sample chunks
with nanosecond stamps as the node feeds them.
"""

import itertools

import numpy as np
from audio_clips import ACTIONS, DETECTORS, SR, T0_NS, events_of, load, onsets_of

from avag_core.data.synth.backgrounds import (
    background_power,
    background_track,
    gain_for_snr,
    place,
    reference_onset,
    shipped_recordings,
)
from avag_core.events import EventConfig


def busy_room(seconds: float, seed: int) -> np.ndarray:
    recs = [load(p.stem) for p in shipped_recordings()]
    return background_track(recs, seconds, np.random.default_rng(seed), SR, excerpt_s=(2.0, 6.0))


def with_actions(bg: np.ndarray, snr_db: float, first_s: float = 1.0, every_s: float = 3.0):
    """Actions every ``every_s`` from ``first_s``; returns the mix and the reference onsets."""
    x, bp = bg.copy(), background_power(bg)
    truth = []
    for k, t in enumerate(np.arange(first_s, bg.size / SR - 2.0, every_s)):
        a = load(f"action_{ACTIONS[k % len(ACTIONS)]}")
        place(x, a, int(t * SR), gain_for_snr(a, bp, snr_db, SR))
        truth.append(float(t) + reference_onset(a, SR))
    return x, truth


def found_and_closed(snr_db: float, seed: int, cfg: EventConfig) -> tuple[int, int, int]:
    """(actions, actions found within 50 ms by exactly one event, events) for one busy room;
    asserts each found action's event ends before the next action (a changing background
    does not hold it open)."""
    x, truth = with_actions(busy_room(26.0, seed), snr_db)
    events = events_of(x, cfg)
    base = T0_NS / 1e9
    found = 0
    for t, nxt in itertools.pairwise([*truth, np.inf]):
        near = [e for e in events if abs(e.onset_time - base - t) <= 0.05]
        assert len(near) <= 1, (t, near)
        found += len(near)
        assert all(e.end_time - base < nxt for e in near), (t, near)
    return len(truth), found, len(events)


@DETECTORS
def test_every_action_30_db_over_quiet_speech_and_music_is_one_event_at_its_onset(cfg):
    for seed in range(3):
        actions, found, events = found_and_closed(30.0, seed, cfg)
        assert found == actions, seed
        assert events <= actions + 2, seed  # what the background itself still starts


@DETECTORS
def test_actions_15_db_over_speech_and_music_are_found_at_their_onset(cfg):
    # flux 23 of 24: in seed 0 the crash at 19 s starts on a loud moment of the background
    # and stays under both start thresholds (score 0.35 < 0.37, lift 5 dB < 10 dB)
    totals = np.sum([found_and_closed(15.0, seed, cfg) for seed in range(3)], axis=0)
    actions, found, events = (int(v) for v in totals)
    assert found >= actions - 1
    assert events <= found + 3


@DETECTORS
def test_the_first_second_of_a_busy_room_is_enough_to_hear_an_action(cfg):
    """The background is learned from every frame until it is known: an action 1 s in is timed
    right (the background's own loud frames used to be left out, delaying readiness)."""
    for seed in range(3):
        x, truth = with_actions(busy_room(6.0, seed), 30.0, first_s=1.0, every_s=10.0)
        onsets = onsets_of(x, cfg)
        assert any(abs(o - truth[0]) <= 0.05 for o in onsets), (seed, truth, onsets)


def test_a_loud_narrow_band_action_over_speech_is_heard():
    """A 4 kHz ping lifts two or three of the 24 bands: its mean z-score is small, its power
    over the background is not (flux's lift_on_db; the learned detector misses the last of
    these four pings and times the others 20-40 ms early)."""
    speech = load("speech_espeak")
    t = np.arange(int(0.25 * SR)) / SR
    ping = (np.sin(2 * np.pi * 4000 * t) * np.exp(-t / 0.05)).astype(np.float32)
    x, bp = speech.copy(), background_power(speech)
    times = [3.0, 7.5, 12.0, 16.5]
    for s in times:
        place(x, ping, int(s * SR), gain_for_snr(ping, bp, 20.0, SR))
    onsets = onsets_of(x, EventConfig(detector="flux"))
    for s in times:
        assert any(abs(o - s) <= 0.03 for o in onsets), (s, onsets)
