"""The hearing benchmark's own logic: matching, the action head's count, and a one-line exit
when recordings are missing."""

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_clips import AUDIO, hiss, small_set

from avag_core.benchmarks import hearing_bench as hb
from avag_core.benchmarks import hearing_compare as hc
from avag_core.data.synth.backgrounds import (
    HEADROOM_PEAK,
    Piece,
    active_power,
    background_power,
    background_track,
    in_turn,
    load_mono,
    place,
    playlist,
    reference_onset,
    within_full_scale,
)
from avag_core.events import SoundEvent


def ev(onset: float) -> SoundEvent:
    return SoundEvent(onset - 0.1, onset + 0.3, 20.0, onset, onset)


def test_matching_is_one_to_one_within_the_window():
    truth = [1.0, 5.0, 9.0]
    # 1.02: hit; 1.05: a second detection of the same action (false alarm); 5.4: too late;
    # 8.95: early but inside the window
    s = hb.score([ev(1.02), ev(1.05), ev(5.4), ev(8.95)], truth)
    assert s["hits"] == 2 and s["false_alarms"] == 2
    assert s["recall"] == 2 / 3 and s["precision"] == 0.5
    assert s["onset_errors_ms"] == [20.0, 50.0]


def test_mixes_stay_within_full_scale_and_keep_their_snr():
    """A 20 dB action over a -20 dBFS background peaks far beyond full scale, where the
    detector's input checks would clip it: the mix is scaled down as a whole instead."""
    rng = np.random.default_rng(0)
    bg = (0.1 * rng.standard_normal(hb.SR * 6)).astype(np.float32)
    t = np.arange(hb.SR // 10) / hb.SR
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.02)).astype(np.float32)
    mix, onsets = hb.build_mix(bg, [("click", click)], 20.0, rng)
    assert np.abs(mix).max() == pytest.approx(HEADROOM_PEAK, rel=1e-5)
    s = float(mix[: hb.SR].astype(np.float64) @ bg[: hb.SR] / (bg[: hb.SR].astype(np.float64) @ bg[: hb.SR]))
    assert HEADROOM_PEAK / s > 3.0  # unscaled, the mix would peak 10 dB over full scale
    action = mix.astype(np.float64) - s * bg  # what was placed, at the mix's scale
    start = round(2.0 * hb.SR)
    assert np.abs(action[:start]).max() < 1e-6 and onsets[0] == pytest.approx(2.0, abs=0.011)
    snr = 10 * np.log10(active_power(action[start:start + click.size], hb.SR) / background_power(s * bg))
    assert snr == pytest.approx(20.0, abs=0.01)
    quiet = 0.5 * click
    assert within_full_scale(quiet) is quiet  # nothing to do: untouched


def test_each_action_played_is_named_where_it_was_placed_and_its_misses_counted():
    """The rows name the action at each onset (``played``), so a miss can be traced to the
    sound: each named action's own tone is what sounds at its onset in the mix."""
    rng = np.random.default_rng(0)
    bg = (1e-3 * rng.standard_normal(hb.SR * 20)).astype(np.float32)
    t = np.arange(hb.SR // 5) / hb.SR
    tones = {f"tone{f}": (np.sin(2 * np.pi * f * t) * np.exp(-t / 0.05)).astype(np.float32) for f in (500, 1500, 3000)}
    played: list[str] = []
    mix, onsets = hb.build_mix(bg, list(tones.items()), 20.0, rng, played)
    assert sorted(played) == sorted(tones) and len(onsets) == 3
    for name, onset in zip(played, onsets, strict=True):
        k = round(onset * hb.SR)
        spectrum = np.abs(np.fft.rfft(mix[k:k + 1024]))
        assert np.fft.rfftfreq(1024, 1 / hb.SR)[spectrum.argmax()] == pytest.approx(int(name[4:]), abs=16)
    rows = [{"snr_db": 5.0, "action_names": ["a", "b", "c"], "hit": [0, 1, 0]},
            {"snr_db": 5.0, "action_names": ["c", "a", "b"], "hit": [0, 1, 1]},
            {"snr_db": 20.0, "action_names": ["a", "b", "c"], "hit": [1, 1, 1]}]
    assert hb.misses_by_action(rows) == {"20": {"a": [0, 1], "b": [0, 1], "c": [0, 1]},
                                         "5": {"c": [2, 2], "a": [1, 2], "b": [0, 2]}}
    assert list(hb.misses_by_action(rows)["5"]) == ["c", "a", "b"]  # most missed first


def test_per_snr_summary_pools_hits_over_backgrounds_and_counts_those_meeting_targets():
    rows = [{"snr_db": 5.0, "hits": 36, "detections": 38, "actions": 40, "recall": 0.9, "precision": 36 / 38},
            {"snr_db": 5.0, "hits": 20, "detections": 40, "actions": 40, "recall": 0.5, "precision": 0.5},
            {"snr_db": 20.0, "hits": 40, "detections": 40, "actions": 40, "recall": 1.0, "precision": 1.0}]
    high, low = hb.per_snr(rows)
    assert high == {"snr_db": 20.0, "event_f1": 1.0, "backgrounds_meeting_targets": 1, "backgrounds": 1}
    assert low["snr_db"] == 5.0 and low["event_f1"] == 2 * 56 / (78 + 80)
    assert (low["backgrounds_meeting_targets"], low["backgrounds"]) == (1, 2)


@pytest.mark.parametrize("given, named", [("learned_block_s=5", "learned_block_s must be <= 1.0"),
                                           ("no_such=1", "unknown config key(s) no_such"),
                                           ("learned_on=abc", "learned_on expects float, got 'abc'"),
                                           ("learned_on", "'learned_on' must look like")])
def test_a_wrong_setting_exits_2_with_one_line_before_anything_runs(capsys, tmp_path, given, named):
    """Before, a setting out of its range, unknown or of the wrong type ended in a traceback."""
    with pytest.raises(SystemExit) as stop:
        hb.main(["--set", given, "--json", str(tmp_path / "out.json")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert named in err[-1] and "error: --set" in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "out.json").exists()


def test_missing_recordings_exit_2_with_the_install_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(hb.SETS, "bench", replace(hb.BENCH, actions=(("no-such-package", str(tmp_path / "nothing.wav")),)))
    assert hb.main(["--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install" in err[0] and "nothing.wav" in err[0]
    assert not (tmp_path / "out.json").exists()


def test_a_recording_set_brings_its_own_actions_backgrounds_and_voices(monkeypatch, tmp_path):
    """--recordings: the set's actions go into every mix, its backgrounds (then white and pink
    noise) are the default list, its speech is its own voices reading its own text, cached
    apart from the other set's, in avag's cache folder (``AVAG_CACHE_DIR``, as every other
    cache). The set here is made of the test recordings (real Debian
    files, test/data/audio/LICENSES.md)."""
    small = small_set(backgrounds={"music": ("test data", (str(AUDIO / "music_city_blues.flac"),))})
    actions = small.actions
    monkeypatch.setitem(hb.SETS, "heldout", small)
    spoken = []
    real_speak = hb._speak

    def speak(seconds, seed, rset, part):  # the real espeak-ng call; the set it was given kept
        spoken.append(rset)
        return real_speak(seconds, seed, rset, part)

    monkeypatch.setattr(hb, "_speak", speak)
    out = tmp_path / "heldout.json"
    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path / "avag"))
    assert hb.main(["--recordings", "heldout", "--snrs", "10", "--alone-s", "10", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["recordings"] == "heldout"
    assert [r["background"] for r in report["rows"]] == ["speech", "music", "white", "pink"]
    assert all(r["actions"] == len(actions) for r in report["rows"])
    names = sorted(Path(a).name for _, a in actions)
    assert all(sorted(r["action_names"]) == names for r in report["rows"])
    (tally,) = report["misses_by_action"].values()
    assert sum(m for m, _ in tally.values()) == sum(r["actions"] - r["hits"] for r in report["rows"])
    assert report["gated"]["actions"] == len(actions)  # and the gated input, last
    assert spoken and all(r is small for r in spoken)
    cached = [p.name for p in (tmp_path / "avag" / "hearing_bench").iterdir()]
    assert cached and all(name.startswith("heldout_speech_") for name in cached)
    with pytest.raises(SystemExit):  # a background of the other set: argparse's one-line error
        hb.main(["--recordings", "heldout", "--backgrounds", "crackle", "--json", str(out)])


def test_the_gated_input_is_each_action_at_one_peak_with_exact_zeros_between(tmp_path, capsys):
    """``gated``: the actions in order, each peaking at GATED_PEAK, GATED_SPACING_S apart,
    exact zeros everywhere else; the learned detector finds the four committed clips there
    (with the peak envelope held through digital silence it found 1 of 4)."""
    from audio_clips import load

    actions = [(n, load(f"action_{n}")) for n in ("chink", "coins", "raze", "stamp")]
    x, onsets = hb.gated_mix(actions)
    sound = np.zeros(x.size, bool)
    for i, (_, a) in enumerate(actions):
        at = round((2.0 + i * hb.GATED_SPACING_S) * hb.SR)
        n = min(a.size, round(hb.MAX_ACTION_S * hb.SR))
        assert np.abs(x[at:at + n]).max() == pytest.approx(hb.GATED_PEAK)
        assert onsets[i] == pytest.approx(at / hb.SR + reference_onset(a[:n], hb.SR))
        sound[at:at + n] = True
    assert not x[~sound].any()
    small = small_set(tuple(n for n, _ in actions))
    out = tmp_path / "g.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(hb.SETS, "heldout", small)
        assert hb.main(["--recordings", "heldout", "--backgrounds", "gated", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["rows"] == [] and report["gated"]["hits"] == 4 and report["gated"]["false_alarms"] == 0
    assert "gated microphone" in capsys.readouterr().out


def test_the_paused_input_is_a_background_that_pauses_right_before_each_action(tmp_path, capsys):
    """``paused``: 4 s of the background, then a pause of PAUSES_S in turn (exact zeros, every
    other round PAUSED_QUIET_DB quieter), then the action at PAUSED_SNR_DB as the background
    comes back; a run scores it over the set's speech and music, after every other draw."""
    from audio_clips import load

    actions = [(n, load(f"action_{n}")) for n in ("chink", "coins", "raze", "stamp")] * 2
    bg = hb.at_background_level(np.tile(load("music_city_blues"), 3))
    x, onsets = hb.paused_mix(bg, actions)
    assert len(onsets) == len(actions)
    lead = slice(0, 4 * hb.SR)  # the background alone: the mix's scale within full scale
    scale = float(np.dot(x[lead], bg[lead]) / np.dot(bg[lead], bg[lead]))
    t = 4.0
    for k, (_, a) in enumerate(actions):
        gap = hb.PAUSES_S[k % len(hb.PAUSES_S)]
        s, start = round(t * hb.SR), round((t + gap) * hb.SR)
        assert onsets[k] == pytest.approx(t + gap + reference_onset(a, hb.SR))
        pause, before = x[s:start].astype(np.float64), x[s - hb.SR:s].astype(np.float64)
        np.testing.assert_allclose(before, scale * bg[s - hb.SR:s], atol=1e-6)  # the background plays up to it
        if k // len(hb.PAUSES_S) % 2 == 0:
            assert not pause.any(), k
        else:
            np.testing.assert_allclose(pause, scale * 10 ** (-hb.PAUSED_QUIET_DB / 20) * bg[s:start], atol=1e-7)
        t += gap + max(4.0, a.size / hb.SR + 1.2)
    out = tmp_path / "p.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(hb.SETS, "heldout", small_set(backgrounds={"music": ("test data", (str(AUDIO / "music_city_blues.flac"),))}))
        assert hb.main(["--recordings", "heldout", "--backgrounds", "music,paused", "--snrs", "10", "--alone-s", "5",
                        "--cache", str(tmp_path / "c"), "--json", str(out)]) == 0
        assert hb.main(["--recordings", "heldout", "--backgrounds", "music", "--snrs", "10", "--alone-s", "5",
                        "--cache", str(tmp_path / "c"), "--json", str(tmp_path / "q.json")]) == 0
    report, without = json.loads(out.read_text()), json.loads((tmp_path / "q.json").read_text())
    assert [r["background"] for r in report["paused"]] == list(hb.PAUSED_OVER)
    assert all(r["actions"] == 4 and r["snr_db"] == hb.PAUSED_SNR_DB for r in report["paused"])
    assert report["rows"] == without["rows"]  # its own draw: the other rows stay as they were
    assert "pausing before each action" in capsys.readouterr().out


def test_the_two_recording_sets_share_no_file_and_install_as_documented():
    """The install line a missing recording prints is the one the module's docstring shows."""
    bench, held = hb.SETS["bench"], hb.SETS["heldout"]
    assert not set(bench.files()) & set(held.files())
    documented = " ".join(hb.__doc__.replace("\\\n", " ").split())
    for rset in (bench, held):
        assert f"--no-install-recommends {rset.apt} " in documented, rset.apt


def test_head_count_cuts_each_event_where_the_detector_put_it(shipped_checkpoint):
    """--heard: an action sound in a quiet track is one event at the sound's onset (this
    hit's first stroke comes 0.12 s into its clip), and the head, given exactly that event's
    audio, names it; the same track with the action replaced by nothing gives no event to
    pass."""
    import numpy as np

    from avag_core.data.synth.backgrounds import reference_onset
    from avag_core.data.synth.sounds import synth_action_sound
    from avag_core.events import EventConfig

    rng = np.random.default_rng(3)
    track = (rng.standard_normal(6 * hb.SR) * 10 ** (-60 / 20)).astype(np.float32)
    quiet = track.copy()
    hit = synth_action_sound("hit", np.random.default_rng(11), hb.SR, duration=1.2)
    track[2 * hb.SR:2 * hb.SR + hit.size] += hit
    events = hb.run_detector(track, EventConfig()).events
    onset = 2.0 + reference_onset(hit, hb.SR)
    assert len(events) == 1 and abs(events[0].onset_time - onset) < 0.1, (events, onset)
    head = hb.load_head(str(shipped_checkpoint))
    assert hb.accepted_by_head(head, track, events) == ["hit"] == hb.head_verdicts(head, track, events)
    assert hb.accepted_by_head(head, quiet, hb.run_detector(quiet, EventConfig()).events) == []


def test_the_learned_detector_decides_its_hindsight_later_than_flux():
    """What a robot waits after a sound: release_s of quiet, plus the learned model's
    hindsight (shape.lookahead frames), plus at most one block (learned_block_s: the frames
    it gathers to score in one pass); flux decides on the frame itself."""
    import numpy as np

    from avag_core.data.synth.sounds import synth_action_sound
    from avag_core.events import EventConfig
    from avag_core.events.learned import shared_weights

    rng = np.random.default_rng(3)
    track = (rng.standard_normal(14 * hb.SR) * 10 ** (-60 / 20)).astype(np.float32)
    for k, t in enumerate((2, 6, 10)):
        hit = synth_action_sound("hit", np.random.default_rng(k), hb.SR, duration=1.0)
        track[t * hb.SR:t * hb.SR + hit.size] += hit
    cfg = EventConfig()
    runs = {name: hb.run_detector(track, c) for name, c in (
        ("flux", EventConfig(detector="flux")), ("learned", cfg), ("unblocked", EventConfig(learned_block_s=0.0)))}
    after = {name: run.decided_after_s for name, run in runs.items()}
    assert [len(a) for a in after.values()] == [3, 3, 3]
    times = {name: [(e.start_time, e.onset_time, e.end_time) for e in run.events] for name, run in runs.items()}
    assert times["learned"] == times["unblocked"]
    hindsight = shared_weights(None)[0].lookahead * 256 / hb.SR
    quiet = cfg.release_s - cfg.post_roll_s  # the event's end includes its post-roll
    chunk = hb.CHUNK / hb.SR  # an event is returned with the chunk that completes it
    assert all(quiet <= a <= quiet + chunk + 0.02 for a in after["flux"]), after
    assert all(quiet + hindsight <= a <= quiet + hindsight + chunk + 0.02 for a in after["unblocked"]), after
    assert all(quiet + hindsight <= a <= quiet + hindsight + cfg.learned_block_s + chunk + 0.02
               for a in after["learned"]), after


@pytest.mark.skipif(bool(hb.BENCH.missing()), reason="the benchmark's Debian recordings are not installed")
def test_heard_scores_the_events_the_head_accepts_in_every_mix(shipped_checkpoint, tmp_path, monkeypatch):
    """--heard on a mix: recall/precision of only the events the head accepts (what reaches
    the robot), next to the detector's own; alone tracks count the accepted ones."""
    verdicts = []
    real = hb.head_verdicts

    def recorded(head, track, events):  # the real head; its answers kept for the check
        verdicts.append(real(head, track, events))
        return verdicts[-1]

    monkeypatch.setattr(hb, "head_verdicts", recorded)
    out = tmp_path / "hb.json"
    assert hb.main(["--backgrounds", "white", "--snrs", "5", "--alone-s", "20", "--heard",
                    str(shipped_checkpoint), "--json", str(out), "--cache", str(tmp_path / "c")]) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    heard = row["heard"]
    assert row["detections"] > 0 and heard["detections"] <= row["detections"] and heard["hits"] <= row["hits"]
    assert heard["recall"] == heard["hits"] / row["actions"]
    assert heard["precision"] == (heard["hits"] / heard["detections"] if heard["detections"] else 1.0)
    mix_verdicts, alone_verdicts = verdicts
    assert len(mix_verdicts) == row["detections"]
    assert heard["detections"] == sum(v is not None for v in mix_verdicts)
    assert report["per_snr"] == hb.per_snr(report["rows"])
    assert report["per_snr"][0]["event_f1"] == 2 * row["hits"] / (row["detections"] + row["actions"])
    assert report["alone"][0]["background"] == "white"
    assert report["alone"][0]["accepted"] == sum(v is not None for v in alone_verdicts)


def test_a_playlist_plays_whole_recordings_in_turn_crossfaded_only_where_one_ends():
    """Music alone as a room plays it: after a random first point, every recording plays from
    its start to its end, each round of them in a new order, and the only samples that are
    not one recording's own are the 50 ms cross-fades where one ends (here no recording loops:
    ``loop_s=0``)."""
    sr, fade = 16000, 800
    recs = [np.full(n, v, np.float32) for n, v in ((4000, 1.0), (5000, 2.0), (6000, 3.0))]
    starts = set()
    for seed in range(4):
        joins: list[float] = []
        x = playlist(recs, 3.0, np.random.default_rng(seed), sr, loop_s=0.0, joins=joins)
        assert x.size == 3 * sr
        pure = np.isin(x, [1.0, 2.0, 3.0])
        edges = np.flatnonzero(np.diff(pure.astype(np.int8))) + 1
        runs = np.split(np.arange(x.size), edges)
        pure_runs = [r for r in runs if pure[r[0]]]
        mixed_runs = [r for r in runs if not pure[r[0]]]
        # joins only where one recording ends (a cross-fade's end samples are one recording's own)
        assert mixed_runs and all(r.size == fade - 2 for r in mixed_runs)
        starts.add(pure_runs[0].size)
        whole_runs = pure_runs[1:-1]  # the first starts anywhere, the last is cut by the track's end
        assert len(whole_runs) >= 4
        for r in whole_runs:  # each played whole: its own length less the two cross-fades
            n = {1.0: 4000, 2.0: 5000, 3.0: 6000}[float(x[r[0]])]
            assert r.size == n - 2 * (fade - 1)
        # each cross-fade starts one sample before its mixed samples, at a reported join
        assert [r[0] - 1 for r in mixed_runs] == [round(j * sr) for j in joins]
        values = [float(x[r[0]]) for r in pure_runs]
        assert all(a != b for a, b in itertools.pairwise(values))  # never one twice in a row
    assert len(starts) > 1  # the first recording starts at a random point


def test_music_alone_is_scored_as_a_room_plays_it_and_also_as_the_mixes_excerpt_it(monkeypatch, tmp_path):
    """Two music-alone rows, the continuous one first; the target verdict reads the continuous
    one. Here the continuous track holds five real action clips over quiet noise, so it starts
    more events than the excerpts of the real music clip, and the verdict must be its rate."""
    monkeypatch.setitem(hb.SETS, "heldout",
                        small_set(backgrounds={"music": ("test data", (str(AUDIO / "music_city_blues.flac"),))}))
    stamp = load_mono(AUDIO / "action_stamp.flac", hb.SR)
    given = []

    def room_track(name, seconds, seed, rset, part, joins, pieces):
        x = 0.001 * np.random.default_rng(seed).standard_normal(round(seconds * hb.SR)).astype(np.float32)
        for k in range(5):
            place(x, stamp, round((2.0 + 3.5 * k) * hb.SR), 0.5 / float(np.abs(stamp).max()))
        given.append((name, seed, part))
        joins.append(2.0)  # the first stamp: a join here
        pieces.append(Piece(0.0, 0, 1.0))  # as if played from 1 s into the set's one recording
        return x

    monkeypatch.setattr(hb, "played_as_in_a_room", room_track)
    out = tmp_path / "alone.json"
    assert hb.main(["--recordings", "heldout", "--backgrounds", "music", "--snrs", "10", "--alone-s", "20",
                    "--seed", "3", "--json", str(out), "--cache", str(tmp_path / "c")]) == 0
    report = json.loads(out.read_text())
    assert [(a["background"], a["play"]) for a in report["alone"]] == [("music", "continuous"),
                                                                     ("music", "excerpts")]
    continuous, excerpts = report["alone"]
    assert given == [("music", 3, "whole")]
    assert excerpts["joins"] >= 2 and 0 <= excerpts["at_joins"] <= excerpts["events"]
    assert (continuous["joins"], continuous["at_joins"]) == (1, 1)
    assert continuous["events"] >= 5 > excerpts["events"]
    stamps = [w for w in continuous["where"] if w["rise_db"] > 20]  # the five stamps, found in "their" recording
    assert [w["at_s"] for w in stamps] == pytest.approx([3.0 + 3.5 * k + reference_onset(stamp, hb.SR)
                                                         for k in range(5)], abs=0.05)
    assert {w["file"] for w in continuous["where"]} == {str(AUDIO / "music_city_blues.flac")}
    assert "where" not in excerpts  # excerpts jump about: no place to listen to
    assert report["worst"]["fa_per_min_alone"] == continuous["fa_per_min"]


def test_the_continuous_track_is_a_playlist_of_the_sets_recordings_at_the_background_level(monkeypatch):
    """``played_as_in_a_room``: the set's recordings (the asked half of each) go whole into
    ``playlist``, and the track comes out at the benchmark's -20 dBFS background level."""
    city = str(AUDIO / "music_city_blues.flac")
    rset = small_set(backgrounds={"music": ("test data", (city,))})
    seen = []

    def spy(recs, seconds, rng, sr, joins, pieces):
        seen.append([r.size for r in recs])
        return playlist(recs, seconds, rng, sr, joins=joins, pieces=pieces)

    monkeypatch.setattr(hb, "playlist", spy)
    x = hb.played_as_in_a_room("music", 12.0, 0, rset, "second")
    full = load_mono(city, hb.SR).size
    assert seen == [[full - full // 2]]
    assert x.size == 12 * hb.SR
    assert background_power(x) == pytest.approx(0.01, rel=1e-3)


def test_the_excerpts_joins_are_where_one_excerpt_fades_into_the_next_and_events_near_them_count():
    """``background_track(joins=...)`` gives each join's time: every cross-fade between two
    recordings starts there, and the excerpts between joins last 2-8 s (less the fade);
    ``at_joins`` counts the onsets within 0.15 s of one."""
    sr = 16000
    recs = [np.full(10 * sr, v, np.float32) for v in (1.0, 2.0, 3.0)]
    joins: list[float] = []
    x = background_track(recs, 60.0, np.random.default_rng(0), sr, joins=joins)
    gaps = np.diff([0.0, *joins])
    assert len(joins) >= 7 and np.all(gaps >= 2.0 - 0.05 - 1e-9) and np.all(gaps <= 8.0)
    pure = np.isin(x, [1.0, 2.0, 3.0])
    mixed_starts = np.flatnonzero(np.diff(pure.astype(np.int8)) == -1) + 1
    assert mixed_starts.size and all(np.isclose(k - 1, np.round(np.array(joins) * sr)).any() for k in mixed_starts)
    assert hb.at_joins([0.9, 2.0, 5.16, 7.95], [1.0, 5.0, 8.0]) == 2
    assert hb.at_joins([1.0], []) == 0


def test_each_mix_counts_its_false_events_that_began_at_a_join_of_its_excerpts(monkeypatch, tmp_path, capsys):
    """A recorded background's excerpts join every few seconds; each mix row gives how many
    joins its background had and how many of its false events began within 0.15 s of one.
    Here the background is quiet noise whose one join, before the first action, is a real
    stamp: a false event at a join; white noise has no joins."""
    monkeypatch.setitem(hb.SETS, "heldout",
                        small_set(backgrounds={"music": ("test data", (str(AUDIO / "music_city_blues.flac"),))}))
    stamp = load_mono(AUDIO / "action_stamp.flac", hb.SR)

    def joined(recs, seconds, rng, sr, joins=None):
        x = 0.001 * rng.standard_normal(round(seconds * sr)).astype(np.float32)
        place(x, stamp, round(0.6 * sr), 0.3 / float(np.abs(stamp).max()))
        if joins is not None:
            joins.append(0.6)
        return x

    monkeypatch.setattr(hb, "background_track", joined)
    out = tmp_path / "joins.json"
    assert hb.main(["--recordings", "heldout", "--backgrounds", "music,white", "--snrs", "10", "--alone-s", "10",
                    "--json", str(out), "--cache", str(tmp_path / "c")]) == 0
    music, white = json.loads(out.read_text())["rows"]
    assert (music["joins"], white["joins"], white["false_at_joins"]) == (1, 0, 0)
    assert 1 == music["false_at_joins"] <= music["false_alarms"]
    assert f"1 of {music['false_alarms'] + white['false_alarms']} in the mixes" in capsys.readouterr().out


def test_mixes_can_play_a_recorded_background_as_a_room_plays_it(monkeypatch, tmp_path):
    """``--mix-play continuous``: a recorded background under the actions is the playlist
    (its own random stream, not the alone track's), its joins the playlist's; speech and noise are
    made as before; the report says how the mixes played, and hearing_compare pairs it only
    with a report that played them the same way."""
    monkeypatch.setitem(hb.SETS, "heldout",
                        small_set(backgrounds={"music": ("test data", (str(AUDIO / "music_city_blues.flac"),))}))
    calls = []
    real = hb.played_as_in_a_room

    def spy(name, seconds, seed, rset, part, salt=(), joins=None, pieces=None):
        calls.append((name, round(seconds), salt))
        return real(name, seconds, seed, rset, part, salt, joins, pieces)

    monkeypatch.setattr(hb, "played_as_in_a_room", spy)
    outs = {}
    for play in ("continuous", "excerpts"):
        outs[play] = tmp_path / f"{play}.json"
        assert hb.main(["--recordings", "heldout", "--backgrounds", "music,white", "--snrs", "10", "--alone-s", "10",
                        "--mix-play", play, "--json", str(outs[play]), "--cache", str(tmp_path / "c")]) == 0
    mix_s = round(2.0 + 3.6 * 4 + 3.0)
    assert calls == [("music", mix_s, (1,)), ("music", 10, ()), ("music", 10, ())]
    continuous, excerpts = (json.loads(outs[p].read_text()) for p in ("continuous", "excerpts"))
    assert (continuous["mix_play"], excerpts["mix_play"]) == ("continuous", "excerpts")
    whole: list[float] = []  # the 20 s clip looped: its joins are the playlist's, not the excerpts'
    real("music", 2.0 + 3.6 * 4 + 3.0, 0, hb.SETS["heldout"], "whole", (1,), whole)
    assert continuous["rows"][0]["joins"] == len(whole) != excerpts["rows"][0]["joins"]
    with pytest.raises(hc.Unpaired, match="mix_play differ"):
        hc.compare(continuous, excerpts)


def test_a_playlist_loops_a_short_recording_until_it_has_played_loop_s():
    """A 4 s rain loop is one rain: a recording shorter than ``loop_s`` plays that many times
    over from its start (each pass a join), then the next recording."""
    sr = 16000
    recs = [np.full(sr, v, np.float32) for v in (1.0, 2.0)]  # 1 s each
    joins: list[float] = []
    x = playlist(recs, 20.0, np.random.default_rng(0), sr, loop_s=5.0, joins=joins)
    level = np.round(x[::sr // 10])  # every 0.1 s: which recording is playing (joins between)
    changes = np.flatnonzero(np.diff(level)) + 1
    spans = np.diff([0, *changes, level.size]) / 10  # seconds each recording held the track
    assert all(s >= 5.0 - 1.0 for s in spans[1:-1]) and len(spans) >= 3  # >= loop_s, less one pass's fades
    assert len(joins) >= 15  # about one join per 1 s pass


def test_a_playlists_pieces_say_which_recording_plays_each_sample_and_from_where():
    """``pieces``: each pass a playlist laid (the first from a random point, loops from their
    start) names its recording by its index in the list given, a recording too short to play
    included in the count, so that a sound in the track can be found in its recording."""
    sr, fade = 16000, 800
    recs = [np.zeros(100, np.float32)] + [(v + np.arange(n) / n).astype(np.float32)  # value: recording, then where
                                          for v, n in ((1.0, 9000), (2.0, 20000), (3.0, 7000))]
    for seed in range(3):
        pieces: list[Piece] = []
        x = playlist(recs, 6.0, np.random.default_rng(seed), sr, loop_s=1.0, pieces=pieces)
        assert pieces[0].at_s == 0.0 and pieces[0].from_s > 0.0 and all(q.from_s == 0.0 for q in pieces[1:])
        assert {q.index for q in pieces} == {1, 2, 3} and any(a.index == b.index for a, b in itertools.pairwise(pieces))
        ends = [q.at_s for q in pieces[1:]] + [x.size / sr]
        for q, end in zip(pieces, ends, strict=True):
            k = np.arange(round(q.at_s * sr) + fade, round(end * sr))  # past its fade-in, before the next one
            rec = recs[q.index]
            assert np.allclose(x[k], rec[k - round(q.at_s * sr) + round(q.from_s * sr)], atol=1e-6)


def test_your_own_room_plays_under_the_actions_and_alone_and_pairs_only_with_itself(monkeypatch, tmp_path, capsys):
    """``--room``: the user's recordings (here WAVs as ``avag bag audio`` writes them: a quiet
    hiss with three real stamps in it, and a hiss alone) are a background named ``room``: each
    recording whole, from its start, in a drawn order under the mixes (never as excerpts, nor as
    a playlist that loops a short one), once in name order alone, where each stamp is one false
    event; the report names the files and a digest of them, so ``hearing_compare`` pairs the
    run with one over the same room and refuses another room.
    ``--background-part first --write-backgrounds`` writes the first half of each recording,
    the half to adapt on."""
    monkeypatch.setitem(hb.SETS, "heldout", small_set())
    stamp = load_mono(AUDIO / "action_stamp.flac", hb.SR)
    room = tmp_path / "room"
    room.mkdir()
    stamped = hiss(16.0, 0)
    for k in range(3):
        place(stamped, stamp, round((3.0 + 5.0 * k) * hb.SR), 0.3 / float(np.abs(stamp).max()))
    sf.write(room / "a_stamps.wav", stamped, hb.SR)
    sf.write(room / "b_hiss.wav", hiss(6.0, 1), hb.SR)
    calls = []
    real = hb.played_as_in_a_room

    def spy(name, seconds, seed, rset, part, salt=(), joins=None, pieces=None):
        calls.append((name, round(seconds, 3), salt, rset.backgrounds[name][1]))
        return real(name, seconds, seed, rset, part, salt, joins, pieces)

    monkeypatch.setattr(hb, "played_as_in_a_room", spy)
    out = tmp_path / "room.json"
    common = ["--recordings", "heldout", "--snrs", "10", "--alone-s", "600", "--cache", str(tmp_path / "c")]
    assert hb.main([*common, "--room", str(room), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    files = (str(room / "a_stamps.wav"), str(room / "b_hiss.wav"))
    mix_s = round(2.0 + 3.6 * 4 + 3.0, 3)
    # the 19.4 s mix: 16 s and 6 s, whole, in either order, so one join (mix_play stays the default excerpts)
    assert calls == [] and 16.0 < mix_s < 16.0 + 6.0
    (row,) = report["rows"]
    assert row["background"] == "room" and row["joins"] == 1
    (alone,) = report["alone"]  # 16 s, then 6 s, one 50 ms cross-fade: not 600 s
    assert (alone["background"], alone["play"], alone["seconds"], alone["joins"]) == ("room", "continuous", 21.95, 1)
    assert alone["events"] == 3 and alone["fa_per_min"] == pytest.approx(3 * 60 / 21.95)
    assert report["worst"]["fa_per_min_alone"] == alone["fa_per_min"]
    assert report["rooms"]["room"]["files"] == list(files) and report["gated"] is None
    # where to listen: each false event alone is named by its file and its time in that file
    stamps_at = [3.0 + 5.0 * k + reference_onset(stamp, hb.SR) for k in range(3)]
    assert [w["file"] for w in alone["where"]] == [files[0]] * 3
    assert [w["at_s"] for w in alone["where"]] == pytest.approx(stamps_at, abs=0.05)
    assert all(w["rise_db"] > 20 for w in alone["where"])  # each a stamp far over the hiss
    assert alone["by_file"] == [{"file": files[0], "seconds": 15.95, "events": 3},  # up to the cross-fade
                                {"file": files[1], "seconds": 6.0, "events": 0}]
    printed = capsys.readouterr().out
    assert "room alone:" in printed and "the 2 s before): " + ", ".join(
        f"a_stamps.wav {w['at_s']:.2f} {w['rise_db']:+.0f} dB" for w in alone["where"]) in printed

    again = tmp_path / "again.json"
    assert hb.main([*common, "--room", str(room), "--json", str(again)]) == 0
    assert len(hc.paired_rows(report, json.loads(again.read_text()))) == 1
    other = tmp_path / "other.json"
    assert hb.main([*common, "--room", files[1], "--json", str(other)]) == 0
    with pytest.raises(hc.Unpaired, match="--room"):
        hc.paired_rows(report, json.loads(other.read_text()))
    with pytest.raises(hc.Unpaired, match="--room"):  # a room against the set's own backgrounds
        hc.paired_rows(report, {**report, "rooms": None})
    old = {k: v for k, v in report.items() if k != "rooms"}  # written before rooms had names
    assert len(hc.paired_rows({**old, "room": report["rooms"]["room"]}, report)) == 1

    halves = tmp_path / "adapt"
    assert hb.main([*common, "--room", str(room), "--background-part", "first", "--write-backgrounds", str(halves)]) == 0
    assert sorted((f.name, sf.info(f).frames) for f in halves.iterdir()) == [
        ("heldout_room_0_first.wav", 8 * hb.SR), ("heldout_room_1_first.wav", 3 * hb.SR)]

    (tmp_path / "not_audio.wav").write_text("not a recording")
    for bad, reason in ((tmp_path / "none", "does not exist"), (tmp_path / "not_audio.wav", "cannot decode")):
        capsys.readouterr()
        assert hb.main([*common, "--room", str(bad), "--json", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and reason in err


def test_a_place_in_a_rooms_alone_track_is_named_by_its_file_and_its_time_in_the_whole_file(tmp_path):
    """``in_recordings``: a time in a room's alone track (its recordings once each, in name
    order, cross-faded) is in the recording that had begun by then, at the time since it began;
    with ``--background-part second`` that time counts from the file's start, not the half's.
    Under the mixes (a drawn order, over and over) each piece still names its own recording."""
    files = []
    for name, seconds in (("a.wav", 4.0), ("b.wav", 6.0)):
        sf.write(tmp_path / name, hiss(seconds, len(files)), hb.SR)
        files.append(str(tmp_path / name))
    for part, halves in (("whole", (4.0, 6.0)), ("second", (2.0, 3.0))):
        joins: list[float] = []
        pieces: list[Piece] = []
        track = hb.room_track(hb.with_rooms(hb.BENCH, {"r": tuple(files)})[0], 60.0, part, joins, name="r",
                              pieces=pieces)
        assert joins == pytest.approx([halves[0] - 0.05]) and track.size / hb.SR == pytest.approx(sum(halves) - 0.05)
        assert pieces == [Piece(0.0, 0, 0.0), Piece(joins[0], 1, 0.0)]
        skip = {"whole": 0.0, "second": 1.0}[part]
        where = hb.in_recordings(tuple(files), part, pieces, [0.5, joins[0] - 0.01, joins[0] + 0.01, track.size / hb.SR])
        assert [w["file"] for w in where] == [files[0], files[0], files[1], files[1]]
        assert [w["at_s"] for w in where] == pytest.approx(
            [0.5 + 2.0 * skip, halves[0] - 0.06 + 2.0 * skip, 0.01 + 3.0 * skip, halves[1] + 3.0 * skip], abs=1e-3)
        tally = hb.by_file(tuple(files), pieces, track.size / hb.SR, [w["file"] for w in where])
        assert [(r["file"], r["events"]) for r in tally] == [(files[0], 2), (files[1], 2)]
        assert [r["seconds"] for r in tally] == pytest.approx([halves[0] - 0.05, halves[1]], abs=0.01)
    # under the mixes the recordings play in a drawn order, over and over: each piece still names its own
    loud = tmp_path / "loud"
    loud.mkdir()
    for name, seconds, gain in (("a.wav", 1.0, 0.01), ("b.wav", 1.5, 0.1), ("c.wav", 2.0, 0.5)):
        sf.write(loud / name, gain * hiss(seconds, 0) / np.abs(hiss(seconds, 0)).max(), hb.SR)
    room = tuple(sorted(map(str, loud.iterdir())))
    pieces = []
    track = hb.room_track(hb.with_rooms(hb.BENCH, {"r": room})[0], 20.0, "whole", [], seed=3, name="r", pieces=pieces)
    assert len(pieces) > 6 and [q.index for q in pieces[:3]] != [0, 1, 2]
    gains = (0.01, 0.1, 0.5)  # the files' peaks, in name order: the level of each piece says which it is
    per_gain = [float(np.abs(track[round(q.at_s * hb.SR) + 1600: round(q.at_s * hb.SR) + 8000]).max()) / gains[q.index]
                for q in pieces[:-1]]
    assert max(per_gain) < 1.3 * min(per_gain)


def test_a_false_events_rise_is_its_loudest_20_ms_over_the_median_of_the_2_s_before():
    """``rise_db``: hiss that steps up 20 dB rose 20 dB at the step, a click in the hiss by its
    own level, and the hiss itself by about nothing; with no room before it (the track's first
    half second, a gate's zeros) there is nothing to rise over."""
    x = hiss(6.0, 0).astype(np.float64)
    x /= np.sqrt(np.mean(x ** 2))
    stepped = np.concatenate([x[: 3 * hb.SR], 10.0 * x[3 * hb.SR:]])
    assert hb.rise_db(stepped, 3.0) == pytest.approx(20.0, abs=1.0)
    clicked = x.copy()
    clicked[4 * hb.SR: 4 * hb.SR + hb.SR // 50] *= 100.0  # one 20 ms frame 40 dB up
    assert hb.rise_db(clicked, 3.9) == pytest.approx(40.0, abs=1.0)
    assert abs(hb.rise_db(x, 3.0)) < 1.5 and hb.rise_db(x, 5.999) < 1.5  # the end of a track: no error
    assert hb.rise_db(clicked, 0.4) is None and hb.rise_db(clicked, 0.5) is not None  # no room heard before it
    gated = x.copy()
    gated[1 * hb.SR: 3 * hb.SR] = 0.0  # a noise gate's zeros, then a click: no room either
    gated[3 * hb.SR: 3 * hb.SR + hb.SR // 50] *= 100.0
    assert hb.rise_db(gated, 3.0) is None and abs(hb.rise_db(gated, 5.2)) < 1.5  # the hiss heard again


def test_named_rooms_play_each_under_the_actions_and_alone_in_one_run(monkeypatch, tmp_path, capsys):
    """``--room NAME=PATH``, once per room: each room is its own background of one run, under
    the actions and alone, its mixes the same as in a run over it alone, and the report names
    each room's files and digest, so a run over other rooms does not pair with it; a name that
    is already a background (speech) or two rooms under one name exit 2 with the reason."""
    monkeypatch.setitem(hb.SETS, "heldout", small_set())
    stamp = load_mono(AUDIO / "action_stamp.flac", hb.SR)
    stamped = hiss(16.0, 0)
    for k in range(3):
        place(stamped, stamp, round((3.0 + 5.0 * k) * hb.SR), 0.3 / float(np.abs(stamp).max()))
    kitchen, hall = tmp_path / "stamps.wav", tmp_path / "hiss.wav"
    sf.write(kitchen, stamped, hb.SR)
    sf.write(hall, hiss(12.0, 1), hb.SR)
    common = ["--recordings", "heldout", "--snrs", "10", "--alone-s", "600", "--cache", str(tmp_path / "c")]
    both, one = tmp_path / "both.json", tmp_path / "one.json"
    assert hb.main([*common, "--room", f"kitchen={kitchen}", "--room", f"hall={hall}", "--json", str(both)]) == 0
    assert "kitchen: 1 file(s)" in capsys.readouterr().out
    report = json.loads(both.read_text())
    assert [r["background"] for r in report["rows"]] == ["kitchen", "hall"]
    assert all(r["actions"] == 4 for r in report["rows"])
    kitchen_row, hall_row = report["rows"]  # each under its own recordings: the stamps only under the kitchen's
    assert kitchen_row["false_alarms"] > 0 and hall_row["false_alarms"] == 0 and hall_row["hits"] == 4
    assert [(a["background"], a["events"], a["seconds"]) for a in report["alone"]] == [
        ("kitchen", 3, 16.0), ("hall", 0, 12.0)]
    assert {n: r["files"] for n, r in report["rooms"].items()} == {"kitchen": [str(kitchen)], "hall": [str(hall)]}
    assert hb.main([*common, "--room", f"hall={hall}", "--json", str(one)]) == 0
    alone_run = json.loads(one.read_text())
    (hall_alone,) = alone_run["rows"]  # as in a run over the hall alone: the kitchen before it changes nothing
    assert {k: hall_alone[k] for k in ("onsets_s", "action_names", "hit", "false")} == {
        k: hall_row[k] for k in ("onsets_s", "action_names", "hit", "false")}
    with pytest.raises(hc.Unpaired, match="--room"):
        hc.paired_rows(report, alone_run)

    capsys.readouterr()
    assert hb.main([*common, "--room", f"speech={hall}", "--json", str(one)]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "'speech' is already a background" in err
    with pytest.raises(SystemExit) as exit_:
        hb.main([*common, "--room", f"a={hall}", "--room", f"a={kitchen}", "--json", str(one)])
    assert exit_.value.code == 2 and "each room needs its own NAME" in capsys.readouterr().err


def test_in_turn_plays_each_recording_once_whole_in_order():
    """``in_turn`` (a room's recordings alone, ``--room``): every recording once, from its
    start, in the given order, cross-faded where one ends; the joins are where each fades in."""
    sr = 16000
    recs = [np.full(round(s * sr), v, np.float32) for v, s in ((1.0, 1.0), (2.0, 0.5), (3.0, 2.0))]
    joins: list[float] = []
    x = in_turn(recs, sr, joins=joins)
    assert x.size == round((3.5 - 2 * 0.05) * sr) and joins == pytest.approx([0.95, 1.4])
    pure = x[np.isin(x, [1.0, 2.0, 3.0])]
    assert list(pure[np.r_[True, np.diff(pure) != 0]]) == [1.0, 2.0, 3.0]
    # the last plays whole: faded in and out over 50 ms, as every piece, its 1.9 s between heard as recorded
    assert abs(np.count_nonzero(x == 3.0) - round(1.9 * sr)) <= 2 and x[-1] == 0.0
