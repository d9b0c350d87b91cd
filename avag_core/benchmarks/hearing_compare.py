"""Is one hearing benchmark run better than another, beyond the luck of the draw?

Two ``hearing_bench --json`` runs over the same mixes (same ``--recordings``, ``--seed``,
``--repeats``, ``--background-part``, backgrounds and SNRs: the actions placed at the same times) are compared
action slot by action slot (``hearing_bench.outcomes``): per SNR, each run's event F1, the
difference (second minus first) and a 95 % paired bootstrap interval for it, resampling
the slots of each mix with the same draws for both runs; the same for the gated input.
Also the false events on speech and music alone, side by side.

Why: a recipe or setting is kept when it is better on the benchmark and the held-out set,
and differences of a few thousandths in F1 turned out to be as large as the spread between
seeds of one recipe (avag_core/checkpoints/onset.md). An interval that excludes 0 says the
difference is larger than what resampling these actions gives; one that includes 0 says
these mixes cannot tell the two apart. It does not cover seed-to-seed spread of training.

    python -m avag_core.benchmarks.hearing_bench --json a.json
    python -m avag_core.benchmarks.hearing_bench --set onset_weights=room.safetensors --json b.json
    python -m avag_core.benchmarks.hearing_compare a.json b.json --json compare.json

Prints a table, writes JSON; exits 2 with a one-line reason when the runs cannot be paired.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.benchmarks.hearing_bench import alone_name
from avag_core.evaluation.report import write_json

LEVEL = 0.95


class Unpaired(ValueError):
    """The two runs did not score the same mixes, or a run has no per-slot outcomes."""


def _slots(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = run.get("rows")
    if not isinstance(rows, list):
        raise Unpaired(f"{name} is not a hearing_bench JSON report (no 'rows')")
    if any("hit" not in r for r in rows):
        raise Unpaired(f"{name} has no per-slot outcomes: run hearing_bench again (this report predates them)")
    return rows


def room_digests(run: dict[str, Any]) -> dict[str, str]:
    """Each ``--room`` background's name and the digest of its recordings (reports written
    before rooms had names hold one room, ``room``)."""
    rooms = run.get("rooms") or ({"room": run["room"]} if run.get("room") else {})
    return {name: r["sha256"] for name, r in rooms.items()}


def paired_rows(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> list[tuple[dict, dict]]:
    """The rows of both runs, pair by pair; ``Unpaired`` unless both scored the same
    recording set, mixes and action times."""
    ra, rb = _slots(a, names[0]), _slots(b, names[1])
    # the same action times over other backgrounds pair nothing; a report without the
    # background part or the mixes' play was written before hearing_bench recorded it, over
    # whole backgrounds played as excerpts
    for key, default in (("recordings", None), ("background_part", "whole"), ("mix_play", "excerpts")):
        if a.get(key, default) != b.get(key, default):
            raise Unpaired(f"{key} differ: {a.get(key, default)} against {b.get(key, default)}")
    if room_digests(a) != room_digests(b):  # --room: the same recordings, under the same names
        raise Unpaired("the runs played different --room recordings (or only one of them played any)")
    if [(r["background"], r["snr_db"]) for r in ra] != [(r["background"], r["snr_db"]) for r in rb]:
        raise Unpaired("the runs have different backgrounds or SNRs")
    for x, y in zip(ra, rb, strict=True):
        if x["onsets_s"] != y["onsets_s"]:
            raise Unpaired(f"the actions were placed differently ({x['background']} at {x['snr_db']:g} dB): "
                           "use the same --seed, --repeats and --recordings")
    return list(zip(ra, rb, strict=True))


def event_f1(hits: np.ndarray, falses: np.ndarray, actions: int) -> np.ndarray:
    """2 x hits / (detections + actions), detections = hits + false events."""
    return 2 * hits / np.maximum(2 * hits + falses + (actions - hits), 1)


def compare_snr(pairs: list[tuple[dict, dict]], resamples: int, rng: np.random.Generator) -> dict[str, Any]:
    """F1 of both runs over these mixes, their difference and its paired bootstrap interval:
    each resample draws every mix's slots with replacement, the same slots for both runs."""
    actions = sum(len(x["hit"]) for x, _ in pairs)
    sums = np.zeros((4, resamples))
    totals = np.zeros(4)
    for x, y in pairs:
        cols = np.array([x["hit"], x["false"], y["hit"], y["false"]], dtype=np.float64)
        totals += cols.sum(axis=1)
        if cols.shape[1]:
            pick = rng.integers(0, cols.shape[1], size=(resamples, cols.shape[1]))
            sums += cols[:, pick].sum(axis=2)
    f1a, f1b = event_f1(totals[0], totals[1], actions), event_f1(totals[2], totals[3], actions)
    diff = event_f1(sums[2], sums[3], actions) - event_f1(sums[0], sums[1], actions)
    lo, hi = np.quantile(diff, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    verdict = "second better" if lo > 0 else "first better" if hi < 0 else "no difference shown"
    return {"actions": actions, "f1_first": float(f1a), "f1_second": float(f1b), "difference": float(f1b - f1a),
            "interval": [float(lo), float(hi)], "verdict": verdict}


def compare(a: dict[str, Any], b: dict[str, Any], resamples: int = 2000, seed: int = 0,
            names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """Per SNR and over all SNRs (``compare_snr``), and the two runs' alone and gated lines."""
    pairs = paired_rows(a, b, names)
    rng = np.random.default_rng(seed)
    snrs = sorted({x["snr_db"] for x, _ in pairs}, reverse=True)
    out: dict[str, Any] = {
        "first": names[0], "second": names[1], "recordings": a.get("recordings"), "level": LEVEL,
        "resamples": resamples,
        "per_snr": [{"snr_db": s, **compare_snr([p for p in pairs if p[0]["snr_db"] == s], resamples, rng)}
                    for s in snrs],
        "all_snrs": compare_snr(pairs, resamples, rng) if pairs else None,
        # paired by background and how it was played (rows before 2026-12-05 say neither way)
        "alone": [{"background": x["background"], "play": x.get("play"), "first_per_min": x["fa_per_min"],
                   "second_per_min": y["fa_per_min"]}
                  for x in a.get("alone") or [] for y in b.get("alone") or []
                  if (x["background"], x.get("play")) == (y["background"], y.get("play"))],
        "gated": None,
    }
    ga, gb = a.get("gated"), b.get("gated")
    if ga and gb:
        out["gated"] = {"actions": ga["actions"], "first_hits": ga["hits"], "second_hits": gb["hits"],
                        "first_false": ga["false_alarms"], "second_false": gb["false_alarms"]}
        if ga.get("onsets_s") is not None and ga.get("onsets_s") == gb.get("onsets_s"):
            out["gated"]["f1"] = compare_snr([(ga, gb)], resamples, rng)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path, help="hearing_bench --json report")
    ap.add_argument("second", type=Path, help="hearing_bench --json report over the same mixes")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="of the bootstrap draws")
    ap.add_argument("--json", type=Path, default=Path("hearing_compare.json"))
    args = ap.parse_args(argv)
    if args.resamples < 100:
        ap.error("--resamples must be at least 100")
    try:
        runs = [json.loads(p.read_text()) for p in (args.first, args.second)]
        result = compare(*runs, resamples=args.resamples, seed=args.seed,
                         names=(str(args.first), str(args.second)))
    except (OSError, json.JSONDecodeError, Unpaired) as exc:
        print(f"hearing_compare: {exc}", file=sys.stderr)
        return 2
    print(f"first: {args.first}\nsecond: {args.second}\n"
          f"event F1, second minus first, {LEVEL:.0%} paired bootstrap interval ({args.resamples} resamples "
          "of each mix's action slots)")
    print(f"{'SNR dB':>6} {'actions':>7} {'first':>7} {'second':>7} {'diff':>7} {'interval':>17}  verdict")
    for r in [*result["per_snr"], *([{"snr_db": "all", **result["all_snrs"]}] if result["all_snrs"] else [])]:
        print(f"{r['snr_db']!s:>6} {r['actions']:>7} {r['f1_first']:>7.3f} {r['f1_second']:>7.3f} "
              f"{r['difference']:>+7.3f} {'[' + ', '.join(f'{v:+.3f}' for v in r['interval']) + ']':>17}  "
              f"{r['verdict']}")
    for al in result["alone"]:
        print(f"{alone_name(al)}: {al['first_per_min']:.2f} against {al['second_per_min']:.2f} "
              "false events per minute")
    if result["gated"]:
        g = result["gated"]
        print(f"gated: {g['first_hits']} against {g['second_hits']} of {g['actions']} actions found, "
              f"{g['first_false']} against {g['second_false']} false events"
              + (f"; F1 {g['f1']['difference']:+.3f} [{g['f1']['interval'][0]:+.3f}, {g['f1']['interval'][1]:+.3f}]"
                 f" {g['f1']['verdict']}" if "f1" in g else ""))
    write_json(args.json, result)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
