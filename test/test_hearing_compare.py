"""``hearing_compare``: two hearing benchmark runs over the same mixes, compared action slot
by action slot. The slots add up to the benchmark's own F1, a clear difference gets an
interval that excludes 0, identical runs get none, and runs over other mixes or without
per-slot outcomes are refused in one line."""

import json

import numpy as np
import pytest
from audio_clips import small_set

from avag_core.benchmarks import hearing_bench as hb
from avag_core.benchmarks import hearing_compare as hc
from avag_core.events import SoundEvent


def ev(onset: float) -> SoundEvent:
    return SoundEvent(onset - 0.1, onset + 0.3, 20.0, onset, onset)


def test_each_false_detection_counts_in_the_slot_it_began_in():
    onsets = [1.0, 5.0, 9.0]
    # 0.5: before the first action (first slot); 1.02 hit; 1.05 a second detection of the
    # first action; 5.4 too late for the second (its slot); 9.1 hit
    out = hb.outcomes([ev(0.5), ev(1.02), ev(1.05), ev(5.4), ev(9.1)], onsets)
    assert out == {"onsets_s": onsets, "hit": [1, 0, 1], "false": [2, 1, 0]}
    s = hb.score([ev(0.5), ev(1.02), ev(1.05), ev(5.4), ev(9.1)], onsets)
    assert sum(out["hit"]) == s["hits"] and sum(out["false"]) == s["false_alarms"]


def run(rows: list[tuple[str, float, list[int], list[int]]]) -> dict:
    """A report with the given (background, SNR, hit, false) rows, actions 3 s apart."""
    return {"recordings": "bench", "background_part": "whole", "rows": [
        {"background": b, "snr_db": s, "hit": h, "false": f, "onsets_s": [2.0 + 3 * k for k in range(len(h))],
         "fa_per_min": 0.0} for b, s, h, f in rows]}


def test_a_clear_gain_excludes_zero_and_identical_runs_show_no_difference():
    n = 40
    first = run([("rain", 5.0, [1] * 30 + [0] * 10, [1] * 12 + [0] * 28), ("music", 5.0, [1] * n, [0] * n)])
    second = run([("rain", 5.0, [1] * 38 + [0] * 2, [0] * n), ("music", 5.0, [1] * n, [0] * n)])
    out = hc.compare(first, second)
    (snr,) = out["per_snr"]
    # first: 70 hits, 12 false, 80 actions; second: 78 hits, none false
    assert snr["f1_first"] == pytest.approx(140 / 162) and snr["f1_second"] == pytest.approx(156 / 158)
    lo, hi = snr["interval"]
    assert 0 < lo < snr["difference"] < hi and snr["verdict"] == "second better"
    assert hc.compare(second, first)["per_snr"][0]["verdict"] == "first better"
    same = hc.compare(first, first)["per_snr"][0]
    assert same["difference"] == 0 and same["interval"] == [0.0, 0.0] and same["verdict"] == "no difference shown"


def test_a_one_action_difference_in_forty_is_not_called_a_gain():
    first = run([("rain", 5.0, [1] * 35 + [0] * 5, [0] * 40)])
    second = run([("rain", 5.0, [1] * 36 + [0] * 4, [0] * 40)])
    snr = hc.compare(first, second)["per_snr"][0]
    assert snr["difference"] > 0 and snr["interval"][0] <= 0 and snr["verdict"] == "no difference shown"


def test_runs_over_other_mixes_or_without_slots_are_refused(tmp_path, capsys):
    first = run([("rain", 5.0, [1, 1], [0, 0])])
    moved = run([("rain", 5.0, [1, 1], [0, 0])])
    moved["rows"][0]["onsets_s"][1] += 0.5
    old = run([("rain", 5.0, [1, 1], [0, 0])])
    del old["rows"][0]["hit"]
    other = {**run([("rain", 5.0, [1, 1], [0, 0])]), "recordings": "heldout"}
    half = {**run([("rain", 5.0, [1, 1], [0, 0])]), "background_part": "second"}
    paths = {}
    for name, r in (("first", first), ("moved", moved), ("old", old), ("other", other), ("half", half)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(r))
    paths["broken"] = tmp_path / "broken.json"
    paths["broken"].write_text("{")
    for name, says in (("moved", "placed differently"), ("old", "no per-slot outcomes"),
                       ("other", "recordings differ"), ("half", "background_part differ"), ("broken", "")):
        assert hc.main([str(paths["first"]), str(paths[name]), "--json", str(tmp_path / "c.json")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hearing_compare: ") and says in err[0], err
    assert not (tmp_path / "c.json").exists()
    unmarked = run([("rain", 5.0, [1, 1], [0, 0])])
    del unmarked["background_part"]  # written before the part was recorded: whole backgrounds
    assert hc.compare(first, unmarked)["per_snr"][0]["difference"] == 0
    with pytest.raises(hc.Unpaired, match="background_part"):
        hc.compare(half, unmarked)


def test_two_benchmark_runs_compare_with_the_benchmarks_own_f1(tmp_path, capsys):
    """Two real runs of the committed clips over white noise, the shipped detector against a
    start threshold of 0.999: each run's F1 from its slots is the F1 the benchmark printed,
    and the stricter threshold finds fewer actions."""
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    args = ["--recordings", "heldout", "--backgrounds", "white,gated", "--snrs", "5,0", "--repeats", "3",
            "--alone-s", "10", "--cache", str(tmp_path / "c")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(hb.SETS, "heldout", small_set())
        assert hb.main([*args, "--json", str(outs[0])]) == 0
        assert hb.main([*args, "--set", "learned_on=0.999", "--json", str(outs[1])]) == 0
        assert hb.main([*args, "--seed", "1", "--json", str(tmp_path / "other.json")]) == 0
    capsys.readouterr()
    reports = [json.loads(p.read_text()) for p in outs]
    assert hc.main([str(outs[0]), str(outs[1]), "--json", str(tmp_path / "c.json")]) == 0
    out = json.loads((tmp_path / "c.json").read_text())
    for r in out["per_snr"]:
        a, b = ({p["snr_db"]: p["event_f1"] for p in rep["per_snr"]}[r["snr_db"]] for rep in reports)
        assert (r["f1_first"], r["f1_second"]) == (pytest.approx(a), pytest.approx(b))
        assert r["actions"] == 12
    hits = [sum(sum(row["hit"]) for row in rep["rows"]) for rep in reports]
    assert hits[1] < hits[0], hits
    assert out["gated"]["first_hits"] == reports[0]["gated"]["hits"]
    g = reports[0]["gated"]
    assert out["gated"]["f1"]["f1_first"] == pytest.approx(2 * g["hits"] / (g["detections"] + g["actions"]))
    printed = capsys.readouterr().out
    assert "paired bootstrap interval" in printed and "gated:" in printed and "white alone:" in printed
    assert hc.main([str(outs[0]), str(tmp_path / "other.json"), "--json", str(tmp_path / "d.json")]) == 2
    assert "placed differently" in capsys.readouterr().err
    assert np.isfinite(out["all_snrs"]["interval"]).all()


def test_alone_rows_pair_by_background_and_how_it_was_played(tmp_path, capsys):
    """Music alone is played two ways since 2026-12-05: each row pairs with the other run's row
    played the same way, in whatever order; a row from before (no ``play``: its music was
    excerpts) pairs with no row played either new way."""
    a, b, old = (run([("rain", 5.0, [1], [0])]) for _ in range(3))
    a["alone"] = [{"background": "music", "play": "continuous", "fa_per_min": 1.0},
                  {"background": "music", "play": "excerpts", "fa_per_min": 3.0}]
    b["alone"] = [{"background": "music", "play": "excerpts", "fa_per_min": 2.0},
                  {"background": "music", "play": "continuous", "fa_per_min": 0.5}]
    old["alone"] = [{"background": "music", "fa_per_min": 4.0}]
    pairs = {al["play"]: (al["first_per_min"], al["second_per_min"]) for al in hc.compare(a, b)["alone"]}
    assert pairs == {"continuous": (1.0, 0.5), "excerpts": (3.0, 2.0)}
    assert hc.compare(old, a)["alone"] == []
    for name, report in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    assert hc.main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json", str(tmp_path / "c.json")]) == 0
    printed = capsys.readouterr().out
    assert "music alone: 1.00 against 0.50" in printed
    assert "music alone, 2-8 s excerpts as in the mixes: 3.00 against 2.00" in printed
