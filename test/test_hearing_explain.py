"""``hearing_bench --explain``: the learned detector's trace is the scorer's own view and
changes no event; each miss gets the reason its frames give, each false event what the
model heard. The committed action clips over white noise, with reference onsets moved to
make each case."""

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from audio_clips import load, popping_room, small_set

from avag_core.benchmarks import hearing_bench as hb
from avag_core.benchmarks import hearing_explain as hx
from avag_core.data.synth.backgrounds import (
    background_power,
    background_track,
    gain_for_snr,
    place,
    reference_onset,
)
from avag_core.events import EventConfig
from avag_core.events.learned import LearnedOnsetScorer, shared_weights
from avag_core.events.onset_features import frames_of

CLIPS = ("chink", "coins", "raze", "stamp", "gong", "guitar_strum")
MEMBERS = len(shared_weights(None)[1])


@pytest.fixture(scope="module")
def mix() -> tuple[np.ndarray, list[float], hb.DetectorRun]:
    """The clips in random order over white noise at 20 dB (the benchmark's mix), and the
    detector's run over it."""
    rng = np.random.default_rng(0)
    actions = [(n, load(f"action_{n}")[: round(hb.MAX_ACTION_S * hb.SR)]) for n in CLIPS]
    x, onsets = hb.build_mix(hb.noise_track("white", 26.0, rng), actions, 20.0, rng)
    return x, onsets, hb.run_detector(x, EventConfig())


def test_the_trace_is_the_scorers_view_and_changes_no_event(mix):
    x, _, plain = mix
    cfg = EventConfig()
    trace: list[np.ndarray] = []
    assert hb.run_detector(x, cfg, trace).events == plain.events
    frames = np.concatenate(trace)
    whole = frames_of(x, cfg.frame_samples, cfg.hop_samples)
    t, p_on, p_act = LearnedOnsetScorer(cfg.frame_samples, cfg.hop_samples, hb.SR)(
        whole, np.arange(whole.shape[0]) * cfg.hop_samples / hb.SR)
    assert frames.shape == (t.size, 5)
    np.testing.assert_allclose(frames[:, 0], t + (cfg.frame_samples - cfg.hop_samples) / hb.SR, atol=1e-6)
    # an event starts on a frame at learned_on, and every event kept began on such a frame
    starts = frames[frames[:, 4] > 0]
    assert set(np.unique(frames[:, 4])) == {0.0, 1.0} and (starts[:, 1] >= cfg.learned_on).all()
    assert len(starts) >= len(plain.events)
    for e in plain.events:
        assert np.abs(starts[:, 0] - (e.start_time + cfg.pre_roll_s)).min() < 1e-6, e
    np.testing.assert_allclose(frames[:, 1], p_on, atol=1e-5)
    np.testing.assert_allclose(frames[:, 2], p_act, atol=1e-5)
    # the mean of the members' logits reaches learned_on only if one member's does, and
    # stays under it if one member's does
    on = frames[:, 1] >= cfg.learned_on
    assert on.any() and (~on).any()
    assert (frames[on, 3] >= 1).all() and (frames[~on, 3] <= MEMBERS - 1).all()
    assert frames[:, 3].min() >= 0 and frames[:, 3].max() == MEMBERS


def test_every_clip_is_found_so_the_cases_below_are_made_by_the_references(mix):
    x, onsets, _ = mix
    _, why = hb.explained(x, onsets, EventConfig())
    assert why["misses"] == dict.fromkeys(hx.MISS_REASONS, 0) and why["false_events"] == 0
    assert why["hits"] == len(onsets) and why["line"].startswith("misses: none; under 0.1 s: 0 of 0 false, ")


def test_each_miss_gets_the_reason_its_frames_give(mix):
    x, onsets, plain = mix
    cfg = EventConfig()
    events = sorted(plain.events, key=lambda e: e.onset_time)
    # quiet: halfway through the longest stretch with no event
    gaps = [(b.start_time - a.end_time, (a.end_time + b.start_time) / 2) for a, b in itertools.pairwise(events)]
    quiet = max(gaps)[1]
    # inside: 0.45 s into an event still sounding 0.7 s after its onset, no other onset near
    long = [e for e in events if e.end_time - cfg.post_roll_s >= e.onset_time + 0.7
            and not any(e.onset_time < o.onset_time <= e.onset_time + 0.8 for o in events)]
    assert long, "no clip rings long enough: the gong and the strum should"
    inside = long[0].onset_time + 0.45
    # elsewhere: a second action 50 ms after the first, where one detection serves both
    refs = [*onsets, quiet, inside, onsets[0] + 0.05]
    _, why = hb.explained(x, refs, cfg)
    got = {m["onset_s"]: m for m in why["miss_list"]}
    assert set(got) == {round(quiet, 3), round(inside, 3), round(onsets[0] + 0.05, 3)}
    assert got[round(quiet, 3)]["reason"] == "onset under learned_on"
    assert got[round(quiet, 3)]["onset_p"] < cfg.learned_on
    assert got[round(inside, 3)]["reason"] == "inside an earlier event"
    assert got[round(onsets[0] + 0.05, 3)]["reason"] == "matched elsewhere"
    assert why["misses"] == {**dict.fromkeys(hx.MISS_REASONS, 0), "matched elsewhere": 1,
                             "inside an earlier event": 1, "onset under learned_on": 1}
    # every event dropped as too short: each action's onset was heard and started an event,
    # and none was kept
    strict = replace(cfg, min_event_s=cfg.max_event_s)
    run, why = hb.explained(x, onsets, strict)
    assert run.events == [] and why["misses"]["event too short"] == len(onsets)
    assert all(m["onset_p"] >= cfg.learned_on and m["members_on"] >= 1 for m in why["miss_list"])
    # one onset per 10 s: the actions heard sooner than that after an onset start no event
    sparse = replace(cfg, learned_gap_s=10.0)
    run, why = hb.explained(x, onsets, sparse)
    assert {m["reason"] for m in why["miss_list"]} == {"onset heard, none started"}
    assert len(why["miss_list"]) >= len(onsets) - 3  # at most one event starts in each 10 s of the 26 s mix


@pytest.mark.parametrize("seed", [0, 1])
def test_an_onset_taken_by_a_stronger_one_past_the_window_is_named(seed):
    """A quiet stamp's first 100 ms (5 dB over the background: at 0 dB the shipped members
    hear it in one seed's mix of two), then loud coins 0.4 s later, over speech and music: with
    ``learned_gap_s`` 0.5 the coins' onset becomes the stamp's event's onset (the
    stronger-onset rule), past the stamp's match window; with the default 0.25 s each has
    its own event."""
    rng = np.random.default_rng(seed)
    x = 0.3 * background_track([load("speech_espeak"), load("music_city_blues")], 8.0, rng, hb.SR,
                               excerpt_s=(2.0, 6.0))
    bp = background_power(x)
    a, b = load("action_stamp"), load("action_coins")
    place(x, a[: hb.SR // 10], 4 * hb.SR, gain_for_snr(a, bp, 5.0, hb.SR))
    quiet = 4.0 + reference_onset(a, hb.SR)
    start = quiet + 0.4 - reference_onset(b, hb.SR)
    place(x, b, round(start * hb.SR), gain_for_snr(b, bp, 15.0, hb.SR))
    loud = start + reference_onset(b, hb.SR)
    run, why = hb.explained(x, [quiet, loud], replace(EventConfig(), learned_gap_s=0.5))
    assert [m["reason"] for m in why["miss_list"]] == ["taken by a later onset"]
    assert why["miss_list"][0]["onset_s"] == round(quiet, 3)
    assert len(run.events) == 1 and abs(run.events[0].onset_time - loud) <= 0.05
    _, why = hb.explained(x, [quiet, loud], EventConfig())
    assert "taken by a later onset" not in {m["reason"] for m in why["miss_list"]}


def test_a_false_event_shows_what_the_model_heard(mix):
    """Without its reference onset an action's event is a false event: the model's onset
    probability there reached learned_on and it heard the sound go on."""
    x, onsets, _ = mix
    cfg = EventConfig()
    dropped = onsets[2]
    _, why = hb.explained(x, [o for o in onsets if o != dropped], cfg)
    assert why["false_events"] == 1 and why["misses"] == dict.fromkeys(hx.MISS_REASONS, 0)
    false = why["false_list"][0]
    assert abs(false["onset_s"] - dropped) <= hb.MATCH_AFTER_S
    assert false["onset_p"] >= cfg.learned_on and 1 <= false["members_on"] <= MEMBERS
    assert 1 <= false["sounding_frames"] <= round(hx.SOUNDING_S * hb.SR / cfg.hop_samples) + 1
    assert why["line"].startswith("misses: none; 1 false: onset p ")
    # its length, read off the model's frames: from the onset to the end of the last frame
    # inside the event that the model heard sounding
    trace: list[np.ndarray] = []
    event = next(e for e in hb.run_detector(x, cfg, trace).events if abs(e.onset_time - false["onset_s"]) < 1e-3)
    frames = np.concatenate(trace)
    inside = (frames[:, 0] >= event.onset_time - 1e-6) & (frames[:, 0] <= event.end_time)
    last = frames[inside & (frames[:, 2] >= cfg.learned_keep), 0].max()
    assert false["length_s"] == pytest.approx(last + cfg.hop_samples / hb.SR - event.onset_time, abs=1e-3)
    assert false["length_s"] > hx.SHORT_EVENT_S  # an action heard going on, not a pop
    assert why["hits"] == len(onsets) - 1


@pytest.mark.parametrize("seed", [0, 1])
def test_a_popping_rooms_false_events_are_short_and_its_actions_are_not(seed):
    """In a room of 20 ms pops (``popping_room``) most false events (22-27 of 29-30) are
    shorter than ``SHORT_EVENT_S`` and the coins' events are not: what the detector's
    ``room_pops`` rule tells apart. With the rule on, the short false events left are about
    the first ``busy_short_events``, before the room is known to pop."""
    x, coins = popping_room(seed)
    _, off = hb.explained(x, coins, EventConfig(busy_short_events=0))
    assert off["hits"] == 2 and off["hits_short"] == 0
    assert off["false_events"] >= 20 and off["false_short"] >= 0.7 * off["false_events"], off["line"]
    _, on = hb.explained(x, coins, EventConfig())
    assert on["hits"] == 2 and on["false_short"] <= off["false_short"] // 2, on["line"]


def test_the_cli_explains_each_mix_and_refuses_other_detectors(tmp_path, capsys):
    small = small_set()
    out = tmp_path / "g.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(hb.SETS, "heldout", small)
        assert hb.main(["--recordings", "heldout", "--backgrounds", "gated", "--explain", "--json", str(out)]) == 0
        with pytest.raises(SystemExit) as refused:
            hb.main(["--recordings", "heldout", "--backgrounds", "gated", "--detector", "flux", "--explain"])
    assert refused.value.code == 2
    report = json.loads(out.read_text())
    assert report["gated"]["explain"]["misses"] == dict.fromkeys(hx.MISS_REASONS, 0)
    printed = capsys.readouterr()
    assert "explain gated: misses: none" in printed.out
    assert "--explain needs the learned detector" in printed.err
