"""The held-out tuning tool for the learned detector's event settings: reference onsets
from the training labels, the same streams for every setting, and a one-line exit when
the training recordings are missing. Streams are built from the committed real clips
(test/data/audio) instead of the Debian library, so the test runs in seconds."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from audio_clips import ACTIONS, load

from avag_core.benchmarks import onset_tuning as ot
from avag_core.data.synth.backgrounds import reference_onset
from avag_core.events.onset_data import HOP, SHORT_ACTION_P, SR, Library, StreamRecipe, make_stream


def small_library(cache, seed) -> Library:
    music, speech = load("music_city_blues"), load("speech_espeak")
    return Library([load(f"action_{a}") for a in ACTIONS], [music], [music[: 4 * SR]], speech)


def test_reference_onsets_are_the_first_frame_of_each_onset_run():
    labels = np.zeros((100, 3), np.float32)
    labels[10:12, 0] = 1.0
    labels[50:52, 0] = 1.0
    assert ot.onsets_of(labels) == [11 * HOP / SR, 51 * HOP / SR]


def test_each_setting_is_scored_on_the_same_held_out_streams(monkeypatch, tmp_path):
    """Every setting is scored on the same held-out streams, read under avag's one cache root by
    default (``AVAG_CACHE_DIR``, as user_cache promises)."""
    caches = []

    def library(cache, seed):
        caches.append(cache)
        return small_library(cache, seed)

    monkeypatch.setattr(ot, "load_library", library)
    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path / "avag_cache"))
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    # the streams' onsets are the actions make_stream placed (same seed, same draws)
    lib = small_library(None, 0)
    rng = np.random.default_rng(1000)
    _, labels = make_stream(lib, rng, StreamRecipe(short_action_p=SHORT_ACTION_P))
    streams = ot.heldout_streams(3, 1000, tmp_path)
    assert streams[0][1] == ot.onsets_of(labels) and len(streams[0][1]) >= 1
    out = tmp_path / "t.json"
    caches.clear()
    assert ot.main(["--streams", "4", "--grid", "learned_on=0.3,0.99", "--json", str(out)]) == 0
    assert caches == [tmp_path / "avag_cache" / "onset_train"]
    rows = json.loads(out.read_text())["rows"]
    assert [r["settings"] for r in sorted(rows, key=lambda r: r["settings"]["learned_on"])] == [
        {"learned_on": 0.3}, {"learned_on": 0.99}]
    assert rows[0]["actions"] == rows[1]["actions"] > 0
    assert rows[0]["f1"] >= rows[1]["f1"]  # sorted by F1
    low, high = sorted(rows, key=lambda r: r["settings"]["learned_on"])
    assert low["detections"] >= high["detections"] and low["recall"] >= high["recall"]


def test_retake_streams_are_the_retake_recipes_streams(monkeypatch, tmp_path):
    """``--retakes P`` draws the held-out streams with that share of other takes: the streams
    make_stream draws for that recipe (not the plain ones), the share in the JSON; a share
    outside 0-1 is a usage error (exit 2). ``--gated P`` likewise draws the gated recipe's."""
    monkeypatch.setattr(ot, "load_library", small_library)
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    lib = small_library(None, 0)
    rng = np.random.default_rng(1000)
    audio, labels = make_stream(lib, rng, StreamRecipe(short_action_p=SHORT_ACTION_P, retake_p=1.0))
    plain = ot.heldout_streams(1, 1000, tmp_path)[0]
    (retaken, onsets), = ot.heldout_streams(1, 1000, tmp_path, retake_p=1.0)
    np.testing.assert_array_equal(retaken, audio)
    assert onsets == ot.onsets_of(labels) and not np.array_equal(retaken[: plain[0].size], plain[0])
    out = tmp_path / "t.json"
    assert ot.main(["--streams", "2", "--retakes", "0.5", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["retakes"] == 0.5
    with pytest.raises(SystemExit) as bad:
        ot.main(["--streams", "2", "--retakes", "1.5"])
    assert bad.value.code == 2
    audio, _ = make_stream(lib, np.random.default_rng(1000), StreamRecipe(short_action_p=SHORT_ACTION_P, gate_p=1.0))
    (gated, _), = ot.heldout_streams(1, 1000, tmp_path, gate_p=1.0)  # --gated: the gated recipe's streams
    np.testing.assert_array_equal(gated, audio)
    assert (gated == 0).mean() > (plain[0] == 0).mean()
    assert ot.main(["--streams", "2", "--gated", "0.5", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["gated"] == 0.5


def test_missing_training_recordings_exit_2_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": [], "music": ["m"], "ambient": ["b"]})
    assert ot.main(["--streams", "2", "--json", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "action" in err[0] and "onset.md" in err[0]
    assert not (tmp_path / "t.json").exists()


def test_the_shipped_recipes_streams_stay_as_they_were_drawn():
    """Recipe options added later (ambient share, SNR range, retakes, silent share) make no random draw
    when off, so the plain recipe and the previous file's recipe draw the streams they drew
    before the options existed: onset frames and 'active' frame counts of six streams per recipe, as
    the code of commit f08319f (before the retake option) drew them from this library. Two of
    them hold a stretch of digital silence, whose labels are muted since the release that
    added _mute_labels: 10 active frames of plain seed 4, and in short-action seed 0
    the action placed at frame 643 inside the silence (and 7 active frames) are gone."""
    lib = small_library(None, 0)
    before = {
        0.0: [([118, 340, 549], 78), ([], 0), ([], 0), ([44, 152, 368], 148), ([54, 144, 291, 455], 118),
              ([102, 309, 506, 708], 109)],
        SHORT_ACTION_P: [([118, 221, 418, 510], 45), ([], 0), ([], 0), ([44, 135, 308, 454], 108),
                         ([54, 183, 436, 600], 100), ([102, 307, 468, 546], 91)]}
    for short, expected in before.items():
        drawn = []
        for seed in range(6):
            _, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(short_action_p=short))
            onsets = np.flatnonzero(np.diff(np.concatenate([[0.0], labels[:, 0]])) > 0).tolist()
            drawn.append((onsets, int(labels[:, 1].sum())))
        assert drawn == expected, short


def test_a_stretch_of_digital_silence_mutes_the_labels_it_covers():
    """_mute_labels: frames wholly in the zeros are no onset and not active; where sound
    comes back inside an action the next RETURN_FRAMES frames weigh nothing, unless what
    comes back is an action's onset; the rest stays."""
    from avag_core.events.onset_data import FRAME, RETURN_FRAMES, _mute_labels

    labels = np.zeros((100, 3), np.float32)
    labels[:, 2] = 1.0
    labels[10:61, 1] = 1.0  # an action sounding from frame 10 to 60
    labels[30:32, 0] = 1.0  # and another's onset inside it
    muted = labels.copy()
    _mute_labels(muted, 25 * HOP, 40 * HOP)  # frames 25-38 lie wholly within
    inside = slice(25, (40 * HOP - FRAME) // HOP + 1)
    assert not muted[inside, :2].any() and muted[inside, 2].all()
    assert (muted[39:39 + RETURN_FRAMES, 2] == 0).all() and muted[39:39 + RETURN_FRAMES, 1].all()
    rest = np.r_[0:25, 39 + RETURN_FRAMES:100]
    assert np.array_equal(muted[rest], labels[rest]) and muted[39:, :2].sum() == labels[39:, :2].sum()
    opened = labels.copy()  # a third action's onset (frames 80-81) opens a gate closed since frame 70
    opened[80:90, 1] = 1.0
    opened[80:82, 0] = 1.0
    _mute_labels(opened, 70 * HOP, 81 * HOP)  # frames 70-79 lie wholly within; 80 holds the onset
    assert not opened[70:80, :2].any() and opened[80:82, 0].all() and opened[:, 2].all()
    quiet = labels.copy()
    quiet[:, 1] = 0.0
    _mute_labels(quiet, 70 * HOP, 80 * HOP)  # no action there: nothing comes back inside one
    assert quiet[:, 2].all()
    short = labels.copy()
    _mute_labels(short, 0, HOP // 2)  # shorter than a frame: no frame lies wholly within
    assert np.array_equal(short, labels)


def test_no_training_onset_lies_in_digital_silence():
    """An action placed where a stream's stretch of digital silence later fell is gone from
    the audio, and so from the labels: no onset frame is all zeros (in 300 streams, some
    of which place an action there)."""
    from avag_core.events.onset_data import FRAME

    lib = small_library(None, 0)
    onsets = 0
    for seed in range(300):
        audio, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(short_action_p=SHORT_ACTION_P))
        on = np.flatnonzero(labels[:, 0] * labels[:, 2] > 0)
        onsets += on.size
        assert not any(np.all(audio[k * HOP:k * HOP + FRAME] == 0.0) for k in on), seed
    assert onsets > 300


def test_a_gate_sends_exact_zeros_below_its_threshold_and_passes_what_opens_it():
    """onset_data._gate: room noise at -60 dBFS is gated to exact zeros, a -20 dBFS burst
    passes unchanged (less the DC the gate's high-pass takes out) and holds the gate open for
    at most GATE_HOLD_S after it; the closed stretches it returns are the zeros it wrote."""
    from avag_core.events.onset_data import GATE_HOLD_S, _gate

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(12 * SR) * 10 ** (-60 / 20)).astype(np.float32) + 0.01  # a DC offset too
    x[5 * SR:5 * SR + SR // 4] += (np.sin(np.arange(SR // 4) * 0.3) * 0.1).astype(np.float32)
    centred = x - x.mean()
    gated = x.copy()
    closed = _gate(gated, np.random.default_rng(1))
    burst = slice(5 * SR, 5 * SR + SR // 4)
    np.testing.assert_array_equal(gated[burst], centred[burst])
    assert not gated[: 5 * SR - 64].any()
    assert not gated[5 * SR + SR // 4 + round(GATE_HOLD_S[1] * SR) + 64:].any()
    zeros = np.ones(x.size, bool)
    for s, e in closed:
        zeros[s:e] = False
    assert np.array_equal(zeros, gated != 0) and len(closed) == 2


def test_gated_streams_hear_actions_come_out_of_zeros():
    """``StreamRecipe.gate_p`` (train_onset --gated): gated streams hold exact zeros between
    sounds; actions that open the gate keep their weighted onset label right after zeros (the
    case the recipe is for), and no onset frame is all zeros."""
    from avag_core.events.onset_data import FRAME

    lib = small_library(None, 0)
    out_of_zeros = onsets = 0
    closed = []
    for seed in range(40):
        audio, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(gate_p=1.0))
        closed.append(float((audio == 0.0).mean()))
        on = np.flatnonzero(labels[:, 0] * labels[:, 2] > 0)
        onsets += on.size
        assert not any(np.all(audio[k * HOP:k * HOP + FRAME] == 0.0) for k in on), seed
        out_of_zeros += sum(k >= 4 and not audio[(k - 4) * HOP:k * HOP].any() for k in on)
    assert onsets > 40 and out_of_zeros > onsets // 8, (out_of_zeros, onsets)
    assert np.mean(closed) > 0.3, closed  # closed for most of a stream, open over loud speech or music


def test_silent_streams_hold_actions_over_exact_zeros():
    """``StreamRecipe.silent_p`` (train_onset --silent): a silent stream has no background, so
    outside its actions it is one constant (zero, or a drawn DC offset) and every action rises
    out of it, lead-in included, with its weighted onset label; its "sounding" label never
    covers a constant frame. At 0 the option draws nothing
    (test_the_shipped_recipes_streams_stay_as_they_were_drawn)."""
    from avag_core.events.onset_data import FRAME

    lib = small_library(None, 0)
    onsets = out_of_silence = 0
    for seed in range(20):
        audio, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(silent_p=1.0))
        plain, _ = make_stream(lib, np.random.default_rng(seed), StreamRecipe())
        level = float(np.median(audio))  # the constant between the actions
        assert np.mean(audio == level) > 0.3 and np.mean(plain == np.median(plain)) < 0.05, seed
        on = np.flatnonzero(labels[:, 0] * labels[:, 2] > 0)
        onsets += on.size
        out_of_silence += sum(k >= 24 and np.all(audio[(k - 24) * HOP:(k - 16) * HOP] == level) for k in on)
        for k in np.flatnonzero(labels[:, 1]):
            assert np.any(audio[k * HOP:k * HOP + FRAME] != level), (seed, k)
        # ...and follows each action's tail until it is 20 dB under the action's loudest frame
        # (the labels are whole hops of the action as placed: up to two hops of tail beyond)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], labels[:, 1], [0]])))
        power = [float(np.mean((audio[k * HOP:k * HOP + FRAME] - level) ** 2)) for k in range(labels.shape[0])]
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            assert e + 2 >= labels.shape[0] or power[e + 2] <= 0.01 * max(power[s:e]), (seed, s, e)
    assert onsets > 40 and out_of_silence > onsets // 2, (out_of_silence, onsets)


def test_short_actions_option_places_transients():
    """``--short-actions P`` (train_onset): with P = 1 every action is a 10-80 ms transient
    (its 'active' label spans a few 16 ms frames)."""
    lib = small_library(None, 0)
    longest = []
    for seed in range(6):
        _, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(short_action_p=1.0))
        active = np.flatnonzero(np.diff(np.concatenate([[0], labels[:, 1], [0]])))
        longest += [int(e - s) for s, e in zip(active[::2], active[1::2], strict=True)]
    assert longest and max(longest) <= 0.080 * SR / HOP + 3, longest


def test_weights_files_are_a_grid_axis_too(monkeypatch, tmp_path, capsys):
    """--grid onset_weights=,FILE compares the shipped weights ('' = shipped) with a file on
    the same streams (a string setting is printed as given)."""
    from pathlib import Path

    import avag_core

    monkeypatch.setattr(ot, "load_library", small_library)
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    shipped = Path(avag_core.__file__).parent / "checkpoints" / "onset.safetensors"
    out = tmp_path / "w.json"
    assert ot.main(["--streams", "3", "--grid", f"onset_weights=,{shipped}", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert sorted(r["settings"]["onset_weights"] for r in rows) == ["", str(shipped)]
    assert rows[0]["f1"] == rows[1]["f1"]  # the same weights twice: the same events
    assert f"onset_weights={shipped}" in capsys.readouterr().out


def test_synthetic_world_actions_join_the_training_library_reproducibly():
    """``--synth-actions N``: N sounds of each of the demo world's action kinds, the same for
    the same seed (training stays reproducible), other sounds for another seed."""
    from avag_core.data.synth.sounds import SOUND_FAMILIES
    from avag_core.events.onset_data import synthetic_actions

    a, again, other = synthetic_actions(0, 2), synthetic_actions(0, 2), synthetic_actions(1, 2)
    assert len(a) == 2 * len(SOUND_FAMILIES)
    assert all(np.array_equal(x, y) for x, y in zip(a, again, strict=True))
    assert not np.array_equal(a[0], other[0])
    assert all(x.dtype == np.float32 and np.isfinite(x).all() and 0 < np.abs(x).max() <= 1.0 for x in a)
    assert synthetic_actions(0, 0) == []


def test_training_writes_weights_that_carry_their_shape(monkeypatch, tmp_path):
    """train_onset end to end on a few streams: the file it writes loads with the shape asked
    for, and the defaults are the shipped weights' shape (the command in onset.md)."""
    from avag_core.events import train_onset
    from avag_core.events.learned import LearnedOnsetScorer
    from avag_core.events.onset_model import load_onset_model
    from avag_core.weights.checkpoint import read_safetensors

    asked_more, caches = [], []

    def library(cache, seed, synth, more):
        asked_more.append(more)
        caches.append(cache)
        return small_library(cache, seed)

    monkeypatch.setattr(train_onset, "load_library", library)
    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path / "avag_cache"))  # the one cache root, by default
    out = tmp_path / "tiny.safetensors"
    tiny = ["--streams", "4", "--val-streams", "2", "--epochs", "1", "--batch", "2", "--channels", "8",
            "--dilations", "1,2", "--lookahead", "5"]
    assert train_onset.main(["--out", str(out), *tiny]) == 0
    more = tmp_path / "more.safetensors"
    assert train_onset.main(["--out", str(more), "--more-recordings", "colobot,asterisk", *tiny]) == 0
    assert asked_more == [(), ("colobot", "asterisk")]
    assert set(caches) == {tmp_path / "avag_cache" / "onset_train"}
    assert read_safetensors(out, "onset model")[1]["recordings"] == "default"
    assert read_safetensors(more, "onset model")[1]["recordings"] == "default,colobot,asterisk"
    plain = tmp_path / "plain.safetensors"  # the recipe of the weights shipped before the peaks input
    assert train_onset.main(["--out", str(plain), "--no-peaks", "--retakes", "0", *tiny]) == 0
    assert read_safetensors(out, "onset model")[1]["retakes"] == "0.5"
    assert read_safetensors(plain, "onset model")[1]["retakes"] == "0.0"
    recipes = []

    def recorded(lib, rng, recipe):
        recipes.append(recipe)
        return make_stream(lib, rng, recipe)

    monkeypatch.setattr(train_onset, "make_stream", recorded)
    gated = tmp_path / "gated.safetensors"
    assert train_onset.main(["--out", str(gated), "--gated", "1", *tiny]) == 0
    assert {r.gate_p for r in recipes} == {1.0} and len(recipes) == 6  # 4 streams + 2 held out
    assert read_safetensors(gated, "onset model")[1]["gated"] == "1.0"
    assert read_safetensors(out, "onset model")[1]["gated"] == "0.0"
    assert load_onset_model(out).shape.peaks and load_onset_model(out).proj.in_channels == 151
    harmonics = tmp_path / "harmonics.safetensors"  # the broadband part's input (onset.md, "Tried")
    assert train_onset.main(["--out", str(harmonics), "--percussive", "2048", *tiny]) == 0
    assert load_onset_model(harmonics).shape.percussive == 2048 and load_onset_model(harmonics).proj.in_channels == 295
    assert load_onset_model(out).shape.percussive == 0
    across = tmp_path / "across.safetensors"  # a convolution along the bands (onset.md, "Tried")
    assert train_onset.main(["--out", str(across), "--across", "4", *tiny]) == 0
    assert load_onset_model(across).shape.across == 4 and load_onset_model(across).proj.in_channels == 151 + 4 * 48
    assert load_onset_model(out).shape.across == 0 and load_onset_model(out).across is None
    model = load_onset_model(plain)
    assert (model.shape.channels, model.shape.dilations, model.shape.lookahead, model.shape.peaks) == (8, (1, 2), 5,
                                                                                                      False)
    for weights in (out, plain, harmonics, across):
        times, p_on, _ = LearnedOnsetScorer(512, 256, SR, weights)(np.zeros((20, 512), np.float32),
                                                                   np.arange(20) * HOP / SR)
        assert times.size == p_on.size == 15
    assert load_onset_model().shape == train_onset.SHIPPED_SHAPE
    for wrong in (["--dilations", "1,two"], ["--lookahead", "-1"], ["--channels", "0"], ["--ambient-share", "2"],
                  ["--more-recordings", "nope"], ["--streams", "8", "--batch", "16"], ["--snr-db=20,-10"],
                  ["--retakes", "1.5"], ["--gated", "-0.1"], ["--percussive", "2000"], ["--percussive", "-256"],
                  ["--across", "-1"]):
        with pytest.raises(SystemExit) as bad:  # argparse: one usage line, exit 2, nothing trained
            train_onset.main(["--out", str(tmp_path / "bad.safetensors"), *wrong])
        assert bad.value.code == 2 and not (tmp_path / "bad.safetensors").exists(), wrong


def test_an_ensemble_holds_the_models_its_seeds_train_alone(monkeypatch, tmp_path):
    """``--seed 0,1`` writes two members equal to ``--seed 0`` and ``--seed 1`` trained alone,
    and ``--join`` of those two files writes the same tensors (of an ensemble's file and one
    with ``--across``: every member, in order); a file of another input or timing or a
    repeated seed is refused with a usage line (exit 2), nothing written."""
    from safetensors.numpy import load_file

    from avag_core.events import train_onset
    from avag_core.events.onset_model import OnsetEnsemble, load_onset_model
    from avag_core.weights.checkpoint import read_safetensors

    monkeypatch.setattr(train_onset, "load_library", lambda cache, seed, synth, more: small_library(cache, seed))
    tiny = ["--streams", "4", "--val-streams", "2", "--epochs", "1", "--batch", "2", "--channels", "8",
            "--dilations", "1,2", "--lookahead", "2"]
    for seed in ("0", "1", "0,1"):
        assert train_onset.main(["--out", str(tmp_path / f"s{seed}.safetensors"), "--seed", seed, *tiny]) == 0
    both = load_file(tmp_path / "s0,1.safetensors")
    for k, seed in enumerate("01"):
        alone = load_file(tmp_path / f"s{seed}.safetensors")
        assert set(alone) == {name.split(".", 2)[2] for name in both if name.startswith(f"members.{k}.")}
        for name, value in alone.items():
            np.testing.assert_array_equal(both[f"members.{k}.{name}"], value)
    assert not np.array_equal(both["members.0.head.weight"], both["members.1.head.weight"])
    model = load_onset_model(tmp_path / "s0,1.safetensors")
    assert isinstance(model, OnsetEnsemble) and len(model.members) == 2
    joined = tmp_path / "joined.safetensors"
    assert train_onset.main(["--out", str(joined), "--join",
                             f"{tmp_path / 's0.safetensors'},{tmp_path / 's1.safetensors'}"]) == 0
    for name, value in load_file(joined).items():
        np.testing.assert_array_equal(value, both[name])
    # a file of several members and one with the convolution along the bands join too, in order
    assert train_onset.main(["--out", str(tmp_path / "across.safetensors"), "--across", "2", *tiny]) == 0
    three, pair = tmp_path / "three.safetensors", tmp_path / "pair.safetensors"
    pair.write_bytes((tmp_path / "s0,1.safetensors").read_bytes())  # --join splits its list at commas
    assert train_onset.main(["--out", str(three), "--join", f"{pair},{tmp_path / 'across.safetensors'}"]) == 0
    model = load_onset_model(three)
    assert [m.shape.across for m in model.members] == [0, 0, 2]
    for name, value in load_file(tmp_path / "across.safetensors").items():
        np.testing.assert_array_equal(load_file(three)[f"members.2.{name}"], value)
    assert read_safetensors(three, "onset model")[1]["seed"] == "0,1,0"
    assert train_onset.main(["--out", str(tmp_path / "other.safetensors"), *tiny[:-4], "--dilations", "1,3"]) == 0
    bad = tmp_path / "bad.safetensors"
    for wrong in (["--join", f"{tmp_path / 's0.safetensors'},{tmp_path / 'other.safetensors'}"],
                  ["--join", f"{three},{tmp_path / 'other.safetensors'}"], ["--seed", "1,1"]):
        with pytest.raises(SystemExit) as err:
            train_onset.main(["--out", str(bad), *wrong])
        assert err.value.code == 2 and not bad.exists(), wrong


def test_training_keeps_streams_without_their_zero_context_and_gives_the_model_the_same_input():
    """The training store drops each stream's all-zero context (it held the data twice at the
    peak) and a batch gets it back: the model sees exactly what ``stream_tensors`` makes."""
    from avag_core.events import train_onset
    from avag_core.events.onset_model import OnsetShape

    shape = OnsetShape(channels=8, dilations=(1, 2), lookahead=3)
    lib = small_library(None, 0)
    xs, ys = train_onset._stream_store(lib, np.random.default_rng(4), 3, StreamRecipe(short_action_p=SHORT_ACTION_P), shape)
    rng = np.random.default_rng(4)
    for i in range(3):
        x, y = train_onset.stream_tensors(*make_stream(lib, rng, StreamRecipe(short_action_p=SHORT_ACTION_P)), shape)
        assert xs.shape[2] == x.shape[1] - (shape.receptive - 1)
        assert torch.equal(train_onset._with_context(xs[i:i + 1], shape)[0], x) and torch.equal(ys[i], y)


def test_band_mask_hides_one_run_of_bands_in_every_per_band_input_and_nothing_else():
    """``mask_bands``: a masked stream has one run of 1-12 adjacent mel bands at 0 in the
    level against the background, the rise and (with peaks) the level against the peaks, the
    same bands in each; the broadband level, the quarters and the other streams are as they
    were. About the share asked for is masked, and one generator seed gives one result."""
    from avag_core.events import train_onset
    from avag_core.events.onset_features import MELS, QUARTERS
    from avag_core.events.onset_model import OnsetShape

    for peaks in (True, False):
        shape = OnsetShape(channels=8, dilations=(1, 2), lookahead=3, peaks=peaks)
        starts = [0, MELS + 1] + ([2 * (MELS + 1) + QUARTERS] if peaks else [])
        x = torch.randn(400, shape.inputs, 20) + 5.0  # no input is 0 before the mask
        y = train_onset.mask_bands(x.clone(), shape, 0.5, torch.Generator().manual_seed(3))
        assert torch.equal(y, train_onset.mask_bands(x.clone(), shape, 0.5, torch.Generator().manual_seed(3)))
        masked = 0
        for b in range(x.shape[0]):
            hidden = torch.nonzero((y[b] != x[b]).any(dim=1)).flatten().tolist()
            if not hidden:
                continue
            masked += 1
            assert (y[b, hidden] == 0).all()
            runs = [[h - start for h in hidden if start <= h < start + MELS] for start in starts]
            assert sum(map(len, runs)) == len(hidden)  # nothing outside the mel bands of those inputs
            first = runs[0]
            assert 1 <= len(first) <= train_onset.BAND_MASK_WIDTH and first == list(range(first[0], first[-1] + 1))
            assert all(run == first for run in runs)
        assert 160 <= masked <= 240
        assert torch.equal(train_onset.mask_bands(x.clone(), shape, 0.0, torch.Generator().manual_seed(3)), x)


def test_band_mask_reaches_training_and_is_recorded(monkeypatch, tmp_path):
    """``train_onset --band-mask P`` trains other weights from the same streams, the same
    command writes the same file, the file records P; a share outside 0-1 is one usage line."""
    from safetensors.numpy import load_file

    from avag_core.events import train_onset
    from avag_core.weights.checkpoint import read_safetensors

    monkeypatch.setattr(train_onset, "load_library", lambda cache, seed, synth, more: small_library(cache, seed))
    tiny = ["--streams", "4", "--val-streams", "2", "--epochs", "1", "--batch", "2", "--channels", "8",
            "--dilations", "1,2", "--lookahead", "2"]
    files = {}
    for name, share in (("plain", "0"), ("masked", "1"), ("again", "1")):
        files[name] = tmp_path / f"{name}.safetensors"
        assert train_onset.main(["--out", str(files[name]), "--band-mask", share, *tiny]) == 0
    plain, masked, again = (load_file(files[k]) for k in ("plain", "masked", "again"))
    assert all(np.array_equal(masked[k], again[k]) for k in masked)
    assert any(not np.array_equal(masked[k], plain[k]) for k in masked)
    assert read_safetensors(files["masked"], "onset model")[1]["band_mask"] == "1"
    assert read_safetensors(files["plain"], "onset model")[1]["band_mask"] == "0"
    for wrong in ("1.5", "-0.1", "some"):
        with pytest.raises(SystemExit) as err:
            train_onset.main(["--out", str(tmp_path / "bad.safetensors"), "--band-mask", wrong, *tiny])
        assert err.value.code == 2 and not (tmp_path / "bad.safetensors").exists(), wrong


def test_training_leaves_out_every_benchmark_file_and_its_numbered_variants():
    """The strict split that keeps the hearing benchmark an honest test: a benchmark file, or
    another take of it (same name without digits), never trains the model; other files do,
    and a name with fewer than three letters is no variant of anything, nor is a file of the
    same name in another folder (megaglest's rain.ogg is not tuxpaint's). Both benchmark sets
    (the README's and the held-out one) are left out."""
    from avag_core.benchmarks.hearing_sets import SC
    from avag_core.events.onset_data import LC, TP, _is_variant, bench_files

    bench = bench_files()
    assert LC + "Build2.wav" in bench and TP + "eraser1.wav" in bench and SC + "Effects/DoorClose.mp3" in bench
    for taken in (LC + "Build2.wav", LC + "Build1.wav", TP + "eraser2.wav", LC + "Water3.wav", LC + "Fire4.wav",
                  SC + "Effects/DoorClose2.mp3"):
        assert _is_variant(taken, bench), taken
    for kept in (LC + "Blacksmith1.wav", TP + "paint1.wav", "/usr/share/buckle/wav/01-0.wav",
                 "/usr/share/buckle/wav/0b-0.wav", "/usr/share/games/megaglest/tilesets/autumn/sounds/rain.ogg"):
        assert not _is_variant(kept, bench), kept


def test_more_recordings_add_the_named_groups_each_recording_once(monkeypatch, tmp_path):
    """``training_sources(more=(...))``: the named groups' files (every n-th in name order, a
    file with the same bytes as an earlier one once) join the candidates of their kind; a
    group not named adds nothing, an unknown name is refused."""
    from avag_core.events import onset_data

    keys, rooms = tmp_path / "keys", tmp_path / "rooms"
    keys.mkdir()
    for i in range(8):
        (keys / f"0{i}-0.wav").write_bytes(bytes([i]))
    for room, data in (("a", b"rain a"), ("b", b"rain a"), ("c", b"rain c")):  # b is a copy of a
        (rooms / room).mkdir(parents=True)
        (rooms / room / "rain.ogg").write_bytes(data)
    monkeypatch.setattr(onset_data, "MORE_RECORDINGS", {
        "keys": (("action", str(keys), "*.wav", 4),), "rooms": (("ambient", str(rooms), "*/rain.ogg", 1),)})
    plain, keys_only = onset_data.training_sources(), onset_data.training_sources(("keys",))
    both = onset_data.training_sources(("keys", "rooms"))
    assert [p for p in keys_only["action"] if p not in plain["action"]] == [str(keys / "00-0.wav"),
                                                                           str(keys / "04-0.wav")]
    assert keys_only["ambient"] == plain["ambient"] and keys_only["music"] == plain["music"]
    assert both["ambient"][len(plain["ambient"]):] == [str(rooms / "a" / "rain.ogg"), str(rooms / "c" / "rain.ogg")]
    assert not any(str(tmp_path) in p for ps in plain.values() for p in ps)
    with pytest.raises(ValueError, match="unknown recording group 'nope'"):
        onset_data.training_sources(("nope",))


def test_an_ambient_share_draws_recorded_ambience_and_leaves_the_default_streams_alone():
    """``ambient_p`` 0 makes no draw (the shipped recipe's streams stay the same); 1 puts
    every stream over an excerpt of the library's ambience."""
    from avag_core.events import onset_data

    lib = small_library(None, 0)
    n = 4 * SR
    a, b = (onset_data.background(lib, n, np.random.default_rng(5), p) for p in (0.0, 0.0))
    assert np.array_equal(a, b)
    # a share that never picks ambience still draws once and so shifts every later draw:
    # the same background at 0 shows that 0 draws nothing
    rng = np.random.default_rng(5)
    rng.random()
    shifted = onset_data.background(lib, n, np.random.default_rng(5), 1e-300)
    assert np.array_equal(shifted, onset_data.background(lib, n, rng, 0.0)) and not np.array_equal(shifted, a)
    rng = np.random.default_rng(7)
    rng.random()  # the share's draw
    expected = onset_data._norm(onset_data._excerpt(lib.ambient, n, rng))
    assert np.array_equal(onset_data.background(lib, n, np.random.default_rng(7), 1.0), expected)


def test_a_named_look_alike_of_a_benchmark_file_never_trains(monkeypatch, tmp_path):
    """SAME_RECORDING_AS_BENCH: a file of another folder that may be a benchmark recording is
    left out although its name matches no benchmark file's."""
    from avag_core.events import onset_data

    kept, alike = tmp_path / "kettle.ogg", tmp_path / "camera_35mm.ogg"
    kept.write_bytes(b"k")
    alike.write_bytes(b"c")
    monkeypatch.setattr(onset_data, "ACTION_CANDIDATES", [str(kept), str(alike)])
    assert onset_data.training_sources()["action"] == [str(kept), str(alike)]
    monkeypatch.setattr(onset_data, "SAME_RECORDING_AS_BENCH", (str(alike),))
    assert onset_data.training_sources()["action"] == [str(kept)]


def test_the_snr_range_sets_every_action_level_and_the_default_streams_stay(monkeypatch):
    """``snr_db``: the default range gives the same stream as before it was a setting, and
    every action is placed at an SNR drawn from the range asked for."""
    from avag_core.events import onset_data

    lib = small_library(None, 0)
    a, la = onset_data.make_stream(lib, np.random.default_rng(8))
    b, lb = onset_data.make_stream(lib, np.random.default_rng(8), StreamRecipe(snr_db=(-5.0, 25.0)))  # the range before the option
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    asked = []
    real = onset_data.gain_for_snr

    def gain(x, bgp, snr, sr):  # the real gain; the SNR it was asked for kept
        asked.append(snr)
        return real(x, bgp, snr, sr)

    monkeypatch.setattr(onset_data, "gain_for_snr", gain)
    for seed in range(4):
        onset_data.make_stream(lib, np.random.default_rng(seed), StreamRecipe(snr_db=(40.0, 41.0)))
    assert asked and all(40.0 <= v < 41.0 for v in asked)


def test_a_retake_plays_a_recording_at_another_speed_through_another_equaliser():
    """``_retake`` (train_onset --retakes): pitch and length scale together by the speed, the
    level changes by at most RETAKE_EQ_DB, and a sharp onset stays sharp and moves with the
    speed (nothing rings ahead of it): the label placed at the retaken action's onset is
    where the sound starts."""
    from avag_core.events import onset_data

    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    burst = np.zeros(SR, np.float32)
    burst[SR // 2:SR // 2 + 400] = np.random.default_rng(1).standard_normal(400) * np.exp(-np.arange(400) / 80)
    for seed, speed in enumerate((0.8, 1.0, 1.25)):
        y = onset_data._retake(tone, np.random.default_rng(seed), speed)
        assert y.size == round(SR / speed) and y.dtype == np.float32
        assert np.argmax(np.abs(np.fft.rfft(y))) * SR / y.size == pytest.approx(1000 * speed, abs=2)
        level_db = 20 * np.log10(np.sqrt(2 * np.mean(y[SR // 8:-SR // 8] ** 2)))
        assert abs(level_db) <= onset_data.RETAKE_EQ_DB + 0.1
        b = onset_data._retake(burst, np.random.default_rng(seed), speed)
        assert reference_onset(b, SR) == pytest.approx(0.5 / speed, abs=0.011)
        ahead = b[: round((0.5 - 0.005) * SR / speed)]
        assert np.abs(ahead).max() < 0.01 * np.abs(b).max()
    drawn = [onset_data._retake(tone, np.random.default_rng(s)).size for s in range(40)]
    assert min(drawn) >= round(SR / onset_data.RETAKE_SPEED[1]) and max(drawn) <= round(SR / onset_data.RETAKE_SPEED[0])
    assert len(set(drawn)) > 20  # a speed drawn per take


def test_a_retake_share_of_one_retakes_the_background_and_every_action(monkeypatch):
    """``retake_p`` 1: the background and each action placed are retakes, and the onset labels
    sit at the retaken actions' onsets (the stream's labels come from what is played)."""
    from avag_core.events import onset_data

    lib = small_library(None, 0)
    taken = []
    real = onset_data._retake

    def retake(x, rng, speed=None):
        taken.append(x.size)
        return real(x, rng, speed)

    monkeypatch.setattr(onset_data, "_retake", retake)
    placed = []
    real_place = onset_data.place

    def place(mix, x, start, gain):
        placed.append((start, x))
        return real_place(mix, x, start, gain)

    monkeypatch.setattr(onset_data, "place", place)
    for seed in (0, 3, 4):
        taken.clear()
        placed.clear()
        _, labels = onset_data.make_stream(lib, np.random.default_rng(seed), StreamRecipe(retake_p=1.0))
        assert len(taken) == 1 + len(placed) and placed
        assert taken[0] > round(onset_data.STREAM_S * SR / onset_data.RETAKE_SPEED[1])  # the background first
        onsets = np.flatnonzero(np.diff(np.concatenate([[0.0], labels[:, 0]])) > 0)
        expected = [max(0, (start + round(reference_onset(x, SR) * SR)) // HOP - 1) for start, x in placed]
        assert onsets.tolist() == expected
        assert all(x.size % HOP == 0 for _, x in placed)


def test_headroom_keeps_training_mixes_within_full_scale_with_the_same_draws():
    """``StreamRecipe.headroom`` (train_onset --headroom): loud mixes are scaled into full scale
    instead of clipping wherever they exceed it (only the deliberate hot inputs still clip),
    and the option draws nothing: the labels are those of the same stream without it."""
    from avag_core.events import onset_data

    lib = small_library(None, 0)
    loud = StreamRecipe(snr_db=(28.0, 30.0))
    clipped = {False: 0, True: 0}
    for seed in range(8):
        a, la = onset_data.make_stream(lib, np.random.default_rng(seed), loud)
        b, lb = onset_data.make_stream(lib, np.random.default_rng(seed), replace(loud, headroom=True))
        assert np.array_equal(la, lb)
        clipped[False] += bool(np.mean(np.abs(a) >= 1.0) > 1e-4)
        clipped[True] += bool(np.mean(np.abs(b) >= 1.0) > 1e-4)
    assert clipped[False] >= 4 and clipped[True] <= 1, clipped  # 5 and 0 for these seeds


def test_headroom_streams_are_the_headroom_recipes_streams(monkeypatch, tmp_path):
    """``onset_tuning --headroom`` draws the held-out streams as ``train_onset --headroom``
    trains on them, and says so in the JSON."""
    monkeypatch.setattr(ot, "load_library", small_library)
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    lib = small_library(None, 0)
    seed = 1002  # a stream that clips without headroom (many do not, and are the same with it)
    audio, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(short_action_p=SHORT_ACTION_P,
                                                                              headroom=True))
    (got, onsets), = ot.heldout_streams(1, seed, tmp_path, headroom=True)
    (plain, _), = ot.heldout_streams(1, seed, tmp_path)
    np.testing.assert_array_equal(got, audio)
    assert onsets == ot.onsets_of(labels)
    assert np.abs(plain).max() >= 1.0 > np.abs(got).max()
    out = tmp_path / "t.json"
    assert ot.main(["--streams", "2", "--headroom", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["headroom"] is True


def test_an_onset_is_heard_over_what_already_sounds_only_when_it_stands_above_it():
    """onset_data._heard_over: with nothing sounding an action's onset is heard; over an
    earlier action still sounding it is heard only OVERLAP_HEARD_DB above that action and the
    background together."""
    from avag_core.events.onset_data import OVERLAP_HEARD_DB, _heard_over

    p = np.array([0.0, 1.0, 0.5, 0.2])  # the new action's power per hop, its onset at hop 1
    quiet = np.zeros(4)
    assert _heard_over(p, quiet, 1, 0.01)
    limit = 10 ** (-OVERLAP_HEARD_DB / 10) * 1.0 - 0.01  # what may sound there, the background's 0.01 aside
    assert _heard_over(p, np.full(4, limit - 0.01), 1, 0.01)
    assert not _heard_over(p, np.full(4, limit + 0.01), 1, 0.01)
    assert not _heard_over(p, np.full(4, 2.0), 1, 0.0)


def test_overlapping_actions_start_while_the_previous_still_sounds():
    """``StreamRecipe.overlap_p`` (train_onset --overlap): with P = 1 each action follows the
    previous one's onset by OVERLAP_AFTER_S; an onset heard over it keeps its weighted label,
    one buried under it is weighed 0 on its frames (neither onset nor background)."""
    from avag_core.events import onset_data as od

    lib = small_library(None, 0)
    heard, buried, gaps = [], 0, []
    real = od._heard_over

    def spy(p, before, k, bgp):
        out = real(p, before, k, bgp)
        heard.append(out)
        return out

    od._heard_over = spy
    try:
        for seed in range(30):
            _, labels = make_stream(lib, np.random.default_rng(seed), StreamRecipe(overlap_p=1.0))
            on = np.flatnonzero(np.diff(np.concatenate([[0.0], labels[:, 0]])) > 0)
            gaps += np.diff(on).tolist()
            assert np.all(labels[on, 2] > 0)  # every labelled onset weighs in the loss
    finally:
        od._heard_over = real
    buried = heard.count(False)
    lo, hi = (round(s * SR / HOP) for s in od.OVERLAP_AFTER_S)
    # onsets OVERLAP_AFTER_S apart (a buried onset between two labelled ones doubles a gap);
    # the plain recipe places them 1 s or more apart
    assert gaps and min(gaps) >= lo - 2 and np.median(gaps) <= hi
    assert 0 < buried < len(heard)  # some onsets are under a louder action, most are not
    # the plain recipe never buries one: its actions follow the previous one's end
    heard.clear()
    od._heard_over = spy
    try:
        for seed in range(10):
            make_stream(lib, np.random.default_rng(seed), StreamRecipe())
    finally:
        od._heard_over = real
    assert heard and all(heard)


@pytest.mark.parametrize("grid, says", [
    ("learned_on=0.5,abc", "learned_on expects float, got 'abc'"),
    ("learned_on=0.5,5", "learned_on must be <= 1.0"),
    ("no_such_setting=1", "unknown config key(s) no_such_setting"),
    ("learned_on", "expected an EventConfig setting NAME=V1,V2,..."),
])
def test_a_wrong_grid_value_exits_2_with_one_line_before_any_stream_is_drawn(monkeypatch, capsys, grid, says):
    """``--grid`` values are read and range-checked as ``hearing_bench --set`` reads them (the
    project's override parsing), every value before the (minutes long) stream drawing starts."""
    def no_streams(*a, **k):
        raise AssertionError("streams drawn before the grid was checked")

    monkeypatch.setattr(ot, "heldout_streams", no_streams)
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    with pytest.raises(SystemExit) as bad:
        ot.main(["--streams", "1", "--grid", grid])
    assert bad.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f": error: --grid {grid}: " in last and says in last, last


def test_grid_values_take_each_fields_type(monkeypatch, tmp_path):
    """A bool, a blank weights path (the shipped file) and an int-looking float come out as the
    field's type, in the row's settings."""
    monkeypatch.setattr(ot, "heldout_streams", lambda *a, **k: [])
    seen = []
    monkeypatch.setattr(ot, "evaluate", lambda streams, cfg: seen.append(cfg) or {
        "actions": 0, "detections": 0, "recall": 1.0, "precision": 1.0, "f1": 1.0, "onset_p90_ms": None})
    monkeypatch.setattr(ot, "training_sources", lambda: {"action": ["a"], "music": ["m"], "ambient": ["b"]})
    assert ot.main(["--streams", "1", "--grid", "learned_on=1", "--grid", "onset_weights=",
                    "--grid", "reset_on_rate_change=yes"]) == 0
    (cfg,) = seen
    assert cfg.detector == "learned" and cfg.learned_on == 1.0 and isinstance(cfg.learned_on, float)
    assert cfg.onset_weights == "" and cfg.reset_on_rate_change is True


def test_paused_streams_put_a_pause_of_the_background_right_before_actions():
    """``StreamRecipe.pause_p`` (train_onset --pauses): the background pauses right before an
    action's onset, as exact zeros (labels muted as for a dropout, the action's onset kept) or
    PAUSE_QUIET_DB quieter, never cutting into an earlier action; the onset stays a weighted
    onset. Only actions at least PAUSE_MIN_SNR_DB over the background (2/3 of the recipe's
    SNR range) are paused, half of them into zeros. Why: with no such streams the only sound
    after a background's pause was the background coming back, and the shipped members missed
    actions after a pause."""
    from avag_core.events.onset_data import PAUSE_MIN_SNR_DB, PAUSE_QUIET_DB, SNR_DB

    def pauses(p: float) -> tuple[int, int, int]:
        onsets = zeros = quiet = 0
        for seed in range(30):
            audio, labels = make_stream(small_library(None, 0), np.random.default_rng(seed), StreamRecipe(pause_p=p))
            level = 10 * np.log10(np.median(audio.astype(np.float64) ** 2) + 1e-20)  # the background's
            for k in np.flatnonzero(labels[:, 0] * labels[:, 2] > 0):
                if k < 12 or labels[k - 1, 0]:
                    continue
                onsets += 1
                before = audio[(k - 10) * HOP:(k - 1) * HOP].astype(np.float64)  # 144 ms ending 16 ms before the frame
                if not before.any():
                    zeros += 1
                    assert not labels[k - 10:k - 1, :2].any(), (seed, k)  # nothing starts or sounds in the zeros
                elif 10 * np.log10(np.mean(before ** 2) + 1e-20) < level - PAUSE_QUIET_DB[0] + 6:
                    quiet += 1
        return onsets, zeros, quiet

    share = (SNR_DB[1] - PAUSE_MIN_SNR_DB) / (SNR_DB[1] - SNR_DB[0])
    onsets, zeros, quiet = pauses(1.0)
    assert onsets > 40 and min(zeros, quiet) > onsets * share / 2 * 0.6, (onsets, zeros, quiet)
    onsets, zeros, quiet = pauses(0.0)  # without the option: a dropout's zeros or a silent stream now and then
    assert onsets > 40 and zeros + quiet < onsets * 0.15, (onsets, zeros, quiet)


def test_paused_streams_also_pause_the_background_on_its_own():
    """``_pauses_alone``: as many pauses again where no action is near, the background coming
    back on its own: a weighted frame with no onset (with only pauses that end in an action,
    the members learned that any sound out of a quiet stretch is one, and music after a rest
    started false events)."""
    from avag_core.events.onset_data import PAUSE_QUIET_DB

    def alone(p: float) -> int:
        count = 0
        for seed in range(30):
            audio, labels = make_stream(small_library(None, 0), np.random.default_rng(seed), StreamRecipe(pause_p=p))
            hops = audio[: audio.size // HOP * HOP].astype(np.float64).reshape(-1, HOP)
            level = 10 * np.log10((hops ** 2).mean(axis=1) + 1e-20)
            low = np.concatenate([level < np.median(level) - PAUSE_QUIET_DB[0] + 6, [False]])
            edges = np.flatnonzero(np.diff(np.concatenate([[False], low]).astype(int)))
            for s, e in zip(edges[::2], edges[1::2], strict=True):  # quiet or silent stretches [s, e) in hops
                if (e - s) * HOP >= 0.2 * SR and 40 < e < labels.shape[0] - 32 and not labels[e - 2:e + 32, 0].any():
                    assert labels[e:e + 4, 2].min() > 0, (seed, e)  # taught as no onset, not left out
                    count += 1
        return count

    assert alone(1.0) >= alone(0.0) + 10
