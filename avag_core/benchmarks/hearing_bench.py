"""Hearing benchmark: does the event detector find action sounds in real rooms?

Real action recordings (impacts, tools, clicks, keys, doors, coins, paper, splashes) from
Debian packages are inserted at known times into real backgrounds (speech from espeak-ng
in several voices, music, rain, machines, fire crackle, white and pink noise) at 20, 10,
5 and 0 dB SNR (avag_core.data.synth.backgrounds explains the SNR), each mix scaled down as
a whole where it would peak above -1 dBFS (``within_full_scale``: a microphone's gain set
for the room; the input checks would otherwise clip it), then fed to
``AudioEventTracker`` in 512-sample chunks with nanosecond stamps, as the node feeds it.
Speech and music are also played alone (10 min each by default) to count false alarms;
music twice: as a room plays it, whole pieces one after another (``playlist``: the target's
measure), and in the mixes' 2-8 s excerpts (``background_track``), whose jumps from one
piece into the middle of another the detector hears as new sounds. Played whole, a false
event alone is found in its recording (the file, the seconds into it, its rise over the 2 s
before: ``where``; events and seconds played per recording: ``by_file``), so it can be
listened to. Each mix and the excerpts count their false events that began at such a join;
``--mix-play continuous`` plays the recorded backgrounds under the actions as a room plays
them too.
Then a noise-gated microphone (``gated``): every action at one peak level with exact zeros
between them, as a noise gate or suppressor sends them (no background, so no SNR).
Then speech and music that pause before each action (``paused``): 4 s of the background,
0.3-1.5 s of exact zeros or of it 40 dB quieter, then the action at 10 dB as the background
comes back (``paused_mix``).

Prints a table and writes JSON. Setup (Debian/Ubuntu, as root or with sudo):

    apt-get install -y --no-install-recommends espeak-ng lincity-ng-data tuxpaint-data \\
        tuxpaint-plugins-default frozen-bubble-data pingus-data heroes-sound-effects \\
        sound-theme-freedesktop openclonk-data
    python -m avag_core.benchmarks.hearing_bench --json hearing.json      # the default: the learned CNN
    python -m avag_core.benchmarks.hearing_bench --detector flux           # per-band flux
    python -m avag_core.benchmarks.hearing_bench --detector energy --quick # the first detector
    # the recorded backgrounds under the actions as a room plays them, not as 2-8 s excerpts
    python -m avag_core.benchmarks.hearing_bench --mix-play continuous --json continuous.json
    # why each action was missed, what each false event was to the model (hearing_explain.py)
    python -m avag_core.benchmarks.hearing_bench --explain --json explain.json
    # the held-out set: other packages' recordings, for choosing between training recipes
    apt-get install -y --no-install-recommends espeak-ng scratch extremetuxracer-data lbreakout2-data tuxtype-data
    python -m avag_core.benchmarks.hearing_bench --recordings heldout --repeats 2
    # a detector adapted to the rooms: adapt on the first half of each background, score the second
    python -m avag_core.benchmarks.hearing_bench --background-part first --write-backgrounds room/
    python -m avag_core.events.train_onset --init avag_core/checkpoints/onset.safetensors --room room/ \
        --out room.safetensors --streams 1200 --epochs 4 --lr 1e-3 --room-share 0.8
    python -m avag_core.benchmarks.hearing_bench --background-part second --set onset_weights=room.safetensors
    # your own room (WAVs from `avag bag audio`): the actions over it, and false events on it alone;
    # adapt on the first half of each recording, score the second
    python -m avag_core.benchmarks.hearing_bench --room room/ --background-part first --write-backgrounds adapt/
    python -m avag_core.benchmarks.hearing_bench --room room/ --background-part second --json shipped.json
    # several rooms in one run, each its own background: long real recordings (scripts/real_rooms.sh)
    python -m avag_core.benchmarks.hearing_bench --room rainfall=rooms/rainfall --room street=rooms/street --json rooms.json

Matching: a detection is a hit when its onset lies within [-0.1 s, +0.3 s] of an
unmatched action's reference onset (the first 10 ms of the clean action within 20 dB of
its loudest 10 ms); every other detection is a false alarm. Targets (issue "Hearing in
real rooms"): at 5 dB recall >= 0.9 and precision >= 0.9 on every background, onset
error p90 <= 50 ms, <= 1 false alarm per minute on speech or music alone, real-time
factor < 2 % of one core.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from avag_core.benchmarks import hearing_explain
from avag_core.benchmarks.hearing_sets import BENCH, SETS, RecordingSet
from avag_core.config import from_dict, parse_overrides
from avag_core.data.array_cache import cached_array
from avag_core.data.synth.backgrounds import (
    SILENCE_POWER,
    Piece,
    background_power,
    background_track,
    gain_for_snr,
    in_turn,
    load_mono,
    place,
    playlist,
    reference_onset,
    within_full_scale,
)
from avag_core.errors import AvagError
from avag_core.events import AudioEventTracker, EventConfig, SoundEvent
from avag_core.events.onset_data import check_room, room_files
from avag_core.user_cache import default_cache_dir

SR = 16000
CHUNK = 512
T0_NS = 1_700_000_000 * 10**9
SNRS = (20.0, 10.0, 5.0, 0.0)
MATCH_BEFORE_S, MATCH_AFTER_S = 0.1, 0.3
MAX_ACTION_S = 2.0
TARGETS = {"recall_5db": 0.9, "precision_5db": 0.9, "onset_p90_ms": 50.0, "fa_per_min_alone": 1.0,
           "rtf_percent": 2.0}

PARTS = ("whole", "first", "second")
ROOM = "room"  # the background of an unnamed ``--room``: the user's own recordings
WHERE_SHOWN = 12  # a recorded background alone: how many false events' places are printed (the JSON holds all)
ROOM_NAME = re.compile(r"[a-z][a-z0-9_-]*")  # ``--room NAME=PATH``: a background's name in the table and JSON
GATED_PEAK = 0.1  # -20 dBFS: the peak of every action on the gated input
GATED_SPACING_S = 3.6  # start to start (at least 1.2 s of zeros after each action)
JOIN_NEAR_S = 0.15  # a false event this near a join of two recordings or excerpts is counted as the join's
PAUSED_OVER = ("speech", "music")  # the paused input: the backgrounds that pause before each action
PAUSES_S = (0.3, 0.6, 1.0, 1.5)  # ... how long they pause, in turn
PAUSED_QUIET_DB = 40.0  # ... every other round of pauses: this much quieter instead of exact zeros
PAUSED_SNR_DB = 10.0  # ... and the action's SNR over that background


def at_joins(onsets: list[float], joins: list[float]) -> int:
    """How many of ``onsets`` lie within ``JOIN_NEAR_S`` of a join (two excerpts or recordings)."""
    j = np.sort(np.asarray(joins, np.float64))
    if not j.size:
        return 0
    t = np.asarray(onsets, np.float64)
    i = np.searchsorted(j, t)
    before, after = j[np.clip(i - 1, 0, j.size - 1)], j[np.clip(i, 0, j.size - 1)]
    return int((np.minimum(np.abs(t - before), np.abs(t - after)) <= JOIN_NEAR_S).sum())


def alone_name(row: dict[str, Any]) -> str:
    """How an alone row is printed: "music alone", or "music alone, 2-8 s excerpts as in the
    mixes" (rows written before 2026-12-05 have no ``play``: their music was excerpts)."""
    return f"{row['background']} alone" + (", 2-8 s excerpts as in the mixes" if row.get("play") == "excerpts" else "")


def part_of(x: np.ndarray, part: str) -> np.ndarray:
    """The first or second half of a recording (or text), or all of it. Why: a detector
    adapted to a room (``train_onset --room``) is scored on the half of each background it
    never heard (``--background-part second``, adapted on ``--write-backgrounds`` of the first)."""
    half = len(x) // 2
    return {"whole": x, "first": x[:half], "second": x[half:]}[part]


def speech(seconds: float, cache: Path, seed: int, rset: RecordingSet = BENCH, part: str = "whole") -> np.ndarray:
    """Speech from espeak-ng: the set's licence text (or the ``part`` half of it) read by
    its voices, in turn (made once per set, length, seed and part)."""
    tag = "" if part == "whole" else f"_{part}"
    return cached_array(cache / f"{rset.name}_speech_{seconds:.0f}_{seed}{tag}.npy",
                        lambda: _speak(seconds, seed, rset, part))


def _speak(seconds: float, seed: int, rset: RecordingSet, part: str = "whole") -> np.ndarray:
    text = part_of(Path(rset.text).read_text().split(), part)
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        while total < seconds * SR:
            start = int(rng.integers(0, len(text) - 120))
            voice = rset.voices[len(parts) % len(rset.voices)]
            wav = Path(tmp) / "s.wav"
            words = " ".join(text[start:start + 120])
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(140, 190))),
                            "-w", str(wav), words], check=True, capture_output=True)
            x = load_mono(wav, SR)
            parts.append(x)
            total += x.size
    track = np.concatenate(parts)[: round(seconds * SR)].astype(np.float32)
    track /= max(1e-9, float(np.sqrt(background_power(track)))) * 10 ** (20 / 20)  # -20 dBFS
    return track


def noise_track(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = round(seconds * SR)
    white = rng.standard_normal(n)
    if kind == "white":
        return (0.1 * white).astype(np.float32)
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), n)
    return (0.1 * pink / pink.std()).astype(np.float32)


def background(name: str, seconds: float, rng: np.random.Generator, cache: Path,
               rset: RecordingSet = BENCH, part: str = "whole", joins: list[float] | None = None) -> np.ndarray:
    """A ``seconds`` long track of one background at -20 dBFS, from the ``part`` half of
    each of its recordings (``part_of``; the generated noises have no halves); a recorded
    one is 2-8 s excerpts, whose join times go to ``joins``."""
    if name in ("white", "pink"):
        return noise_track(name, seconds, rng)
    if name == "speech":
        return speech(seconds, cache, int(rng.integers(1 << 30)), rset, part)
    recs = recorded(rset.backgrounds[name][1], part)
    return at_background_level(background_track(recs, seconds, rng, SR, joins=joins))


@functools.cache
def decoded(path: str) -> np.ndarray:
    """One recording at 16 kHz, decoded and resampled once per process (a run plays each one
    up to three ways: the mixes, and alone as excerpts and as a playlist; ``--room`` checks
    it first); read-only, as every track is built from copies."""
    x = load_mono(path, SR)
    x.setflags(write=False)
    return x


def recorded(paths: tuple[str, ...], part: str) -> tuple[np.ndarray, ...]:
    """The ``part`` half of each recording of a recorded background (views of ``decoded``)."""
    return tuple(part_of(decoded(p), part) for p in paths)


def played_as_in_a_room(name: str, seconds: float, seed: int, rset: RecordingSet = BENCH,
                        part: str = "whole", salt: tuple[int, ...] = (),
                        joins: list[float] | None = None, pieces: list[Piece] | None = None) -> np.ndarray:
    """A recorded background, whole recordings one after another, a short one looped
    (``playlist``), at -20 dBFS; its join times go to ``joins``, what it played to
    ``pieces``. Drawn from its own random stream (``seed``, the name and ``salt``: the mixes'
    is not the alone track's), so that adding it left every other draw of a run as it was."""
    recs = recorded(rset.backgrounds[name][1], part)
    rng = np.random.default_rng([seed, *name.encode(), *salt])
    return at_background_level(playlist(recs, seconds, rng, SR, joins=joins, pieces=pieces))


def room_arg(text: str) -> tuple[str, tuple[str, ...]]:
    """One ``--room [NAME=]PATH[,...]``: the background's name (``ROOM`` without one) and paths."""
    name, sep, paths = text.partition("=")
    if not (sep and ROOM_NAME.fullmatch(name)):  # no name: a path may hold "=" itself
        name, paths = ROOM, text
    return name, tuple(v for v in paths.split(",") if v)


def with_rooms(rset: RecordingSet, rooms: dict[str, tuple[str, ...]]) -> tuple[RecordingSet, dict[str, Any]]:
    """``--room``: ``rset`` with one more recorded background per room, made of the audio files
    of its paths (``train_onset --room``'s rule and its check, ``room_files`` and ``check_room``),
    and what the report says of each: the files and a digest of their decoded audio, so that
    ``hearing_compare`` pairs only runs over the same recordings. Why: the benchmark's rooms
    are a game's few seconds of rain or machines; a robot's own room is what decides whether
    the shipped file or one adapted to it (``train_onset --room``) is the one to run."""
    taken = {"speech", "white", "pink", "gated", "paused", *rset.backgrounds}.intersection(rooms)
    if taken:
        raise ValueError(f"--room: {sorted(taken)[0]!r} is already a background of the {rset.name} set")
    report, backgrounds = {}, dict(rset.backgrounds)
    for name, paths in rooms.items():
        files = room_files(paths)  # ValueError with a one-line reason: missing, empty or too short
        recs = [decoded(str(f)) for f in files]  # decoded once: the run plays these same arrays
        check_room(paths, files, recs)
        digest = hashlib.sha256()
        for x in recs:
            digest.update(x.tobytes())
        backgrounds[name] = ("your recordings", tuple(map(str, files)))
        report[name] = {"files": [str(f) for f in files], "sha256": digest.hexdigest()}
    return replace(rset, backgrounds=backgrounds), report


def room_track(rset: RecordingSet, seconds: float, part: str, joins: list[float],
               seed: int | None = None, name: str = ROOM, pieces: list[Piece] | None = None) -> np.ndarray:
    """A room's recordings (``--room``; ``name`` as given there) at the benchmark's background
    level, each whole from its start (``in_turn``), up to ``seconds``: with ``seed`` (the mixes)
    in an order drawn from it, over and over until ``seconds`` are filled (never one twice in a
    row); without, each once in name order (the room alone). Its joins go to ``joins``, what it
    played to ``pieces``. Why not ``playlist``: a stretch recorded in a room is no loop made to
    repeat seamlessly, and looped every few seconds, or cut in at a random point, its joins
    would be sudden changes the room never made (the benchmark's second halves showed how a
    detector hears those, docs/hearing.md). Why a drawn order for the mixes: another ``--seed``
    puts other recordings under the actions."""
    recs = recorded(rset.backgrounds[name][1], part)
    order = list(range(len(recs)))
    if seed is not None:
        rng = np.random.default_rng([seed, *name.encode()])
        order, turns = [], int(np.ceil((seconds * SR + SR) / sum(r.size for r in recs)))  # + 1 s: the cross-fades
        for _ in range(turns):
            turn = list(rng.permutation(len(recs)))
            if order and turn[0] == order[-1] and len(turn) > 1:
                turn = turn[1:] + turn[:1]
            order += turn
    laid: list[Piece] = []
    track = at_background_level(in_turn([recs[i] for i in order], SR, pieces=laid))[: round(seconds * SR)]
    laid = [replace(q, index=order[q.index]) for q in laid if q.at_s < track.size / SR]  # by recording, not turn
    joins += [q.at_s for q in laid[1:]]  # each piece after the first fades in over the one before
    if pieces is not None:
        pieces += laid
    return track


def where_lines(row: dict[str, Any]) -> list[str]:
    """The printed lines of an alone row's ``where`` and ``by_file``: the first ``WHERE_SHOWN``
    places, then the recordings that started false events."""
    def place(w: dict[str, Any]) -> str:
        rise = "after no sound" if w["rise_db"] is None else f"{w['rise_db']:+.0f} dB"
        return f"{Path(w['file']).name} {w['at_s']:.2f} {rise}"

    more = len(row["where"]) - WHERE_SHOWN
    return [f"  {alone_name(row)}, where each false event began (file, seconds into it, its rise over the 2 s "
            "before): " + ", ".join(map(place, row["where"][:WHERE_SHOWN]))
            + (f" and {more} more (all in the JSON)" if more > 0 else ""),
            f"  {alone_name(row)}, false events by recording (events in seconds played): " + ", ".join(
                f"{Path(r['file']).name} {r['events']} in {r['seconds']:.0f} s" for r in row["by_file"] if r["events"])]


def in_recordings(files: tuple[str, ...], part: str, pieces: list[Piece], times: list[float]) -> list[dict[str, Any]]:
    """Where each of ``times`` (s into a track that played ``pieces`` of ``files``) lies in the
    recordings: the file and the seconds into it (into the whole file, also when ``part`` is
    its second half). Why: a false event alone is worth hearing, and a room or a playlist is
    minutes of several recordings, some looped; these say where to listen."""
    starts = [q.at_s for q in pieces]
    out = []
    for t in times:
        q = pieces[bisect.bisect_right(starts, t) - 1]
        skipped = len(decoded(files[q.index])) // 2 / SR if part == "second" else 0.0
        out.append({"file": files[q.index], "at_s": round(t - q.at_s + q.from_s + skipped, 3)})
    return out


def by_file(files: tuple[str, ...], pieces: list[Piece], seconds: float, heard_in: list[str]) -> list[dict[str, Any]]:
    """Per recording a track of ``seconds`` played (``pieces``): how long it played and how
    many false events began in it (``heard_in``: each event's file), most events first. Why:
    one loop played over can hold most of a track's false events."""
    played = dict.fromkeys(files, 0.0)
    for q, end in zip(pieces, [*(q.at_s for q in pieces[1:]), seconds], strict=True):
        played[files[q.index]] += end - q.at_s
    rows = [{"file": f, "seconds": round(s, 2), "events": heard_in.count(f)} for f, s in played.items() if s > 0]
    return sorted(rows, key=lambda r: (-r["events"], r["file"]))


def rise_db(track: np.ndarray, t: float) -> float | None:
    """How far the loudest 20 ms of the half second from ``t`` rose over the median 20 ms of
    the 2 s before it, in dB; None where no room was heard before it (the track's first half
    second, or digital silence). Why: a false event alone that rose well over its room is a
    sound the room made (a drop, a horn), not the detector hearing the room itself as new."""
    hop, i = SR // 50, min(round(t * SR), track.size - SR // 50)
    if i < SR // 2:
        return None

    def levels(lo: int, hi: int) -> np.ndarray:
        x = track[max(0, lo):hi].astype(np.float64)
        n = x.size // hop
        return np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)

    before, after = levels(i - 2 * SR, i), levels(i, i + SR // 2)
    if np.median(before) <= SILENCE_POWER:
        return None
    return round(10 * float(np.log10((after.max() + 1e-12) / (np.median(before) + 1e-12))), 1)


def at_background_level(track: np.ndarray) -> np.ndarray:
    """``track`` scaled to the benchmark's background level, -20 dBFS mean power."""
    return track * (0.1 / max(1e-9, float(np.sqrt(background_power(track)))))


def load_actions(rset: RecordingSet = BENCH) -> list[tuple[str, np.ndarray]]:
    out = []
    for _, path in rset.actions:
        x = load_mono(path, SR)[: round(MAX_ACTION_S * SR)]
        fade = min(x.size // 4, SR // 50)
        if fade:
            x[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out.append((Path(path).name, x))
    return out


def build_mix(bg: np.ndarray, actions: list[tuple[str, np.ndarray]], snr: float,
              rng: np.random.Generator, played: list[str] | None = None) -> tuple[np.ndarray, list[float]]:
    """Actions in random order, 2.5-4.5 s apart (start to start, at least 1.2 s of gap); the
    whole mix then within full scale (``within_full_scale``: the SNRs stay). ``played`` (a
    list) receives each placed action's name, in the order of the onsets."""
    mix = bg.copy()
    bp = background_power(bg)
    onsets, t = [], 2.0
    order = rng.permutation(len(actions))
    for i in order:
        name, x = actions[i]
        start = round(t * SR)
        if start + x.size >= mix.size:
            break
        place(mix, x, start, gain_for_snr(x, bp, snr, SR))
        onsets.append(t + reference_onset(x, SR))
        if played is not None:
            played.append(name)
        t += max(rng.uniform(2.5, 4.5), x.size / SR + 1.2)
    return within_full_scale(mix), onsets


def gated_mix(actions: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[float]]:
    """A noise-gated microphone: the actions in their order, each scaled to peak at
    GATED_PEAK, GATED_SPACING_S apart, exact zeros everywhere else. Why: a gate or a noise
    suppressor sends nothing between sounds, so a detector that judges a sound by what came
    before it must still hear a sound no louder than the last one."""
    starts = [2.0 + i * GATED_SPACING_S for i in range(len(actions))]
    x = np.zeros(round((starts[-1] + MAX_ACTION_S + 3.0) * SR) if starts else 0, np.float32)
    onsets = []
    for t, (_, a) in zip(starts, actions, strict=True):
        a = a[: round(MAX_ACTION_S * SR)]
        at = round(t * SR)
        x[at:at + a.size] = a / max(float(np.abs(a).max()), 1e-9) * GATED_PEAK
        onsets.append(t + reference_onset(a, SR))
    return x, onsets


def paused_mix(bg: np.ndarray, actions: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[float]]:
    """A background that pauses right before each action: 4 s of ``bg``, then a pause (PAUSES_S
    in turn; exact zeros, every other round PAUSED_QUIET_DB quieter), then the action at
    PAUSED_SNR_DB over ``bg`` as the background comes back with it. What a robot hears when
    music rests, a voice stops or a gate closes and then something is knocked. The shipped
    members miss a good share of them (28 of 40 found over the benchmark's music, 33 of 40
    over its speech, with no pause 37 and 40 at 10 dB): trained with no action after a pause,
    they take a sound out of one for the background coming back (docs/hearing.md, "An action
    after a pause")."""
    mix = bg.copy()
    bp = background_power(bg)
    onsets, t = [], 4.0
    for k, (_, x) in enumerate(actions):
        gap = PAUSES_S[k % len(PAUSES_S)]
        s, start = round(t * SR), round((t + gap) * SR)
        if start + x.size >= mix.size:
            break
        if (k // len(PAUSES_S)) % 2 == 0:
            mix[s:start] = 0.0
        else:
            mix[s:start] *= np.float32(10 ** (-PAUSED_QUIET_DB / 20))
        place(mix, x, start, gain_for_snr(x, bp, PAUSED_SNR_DB, SR))
        onsets.append(t + gap + reference_onset(x, SR))
        t += gap + max(4.0, x.size / SR + 1.2)
    return within_full_scale(mix), onsets


class DetectorRun(NamedTuple):
    events: list[SoundEvent]  # times relative to the start of the audio
    cpu_s: float
    # per event ended before the audio did: audio time from the event's end (post-roll
    # included) to the chunk that returned it, what a robot waits after the sound
    decided_after_s: list[float]


def run_detector(x: np.ndarray, cfg: EventConfig, trace: list[np.ndarray] | None = None) -> DetectorRun:
    """The detector fed like the node feeds it; ``trace`` (a list) receives the learned
    detector's frames (``SoundEventDetector.trace``), onset times relative to the audio."""
    tracker = AudioEventTracker(cfg)
    tracker.detector.trace = trace
    events: list[SoundEvent] = []
    decided: list[float] = []
    t_cpu = time.process_time()
    for i in range(0, x.size, CHUNK):
        new = tracker.push(x[i:i + CHUNK], T0_NS + i * 10**9 // SR, SR)
        decided += [(i + CHUNK) / SR - (e.end_time - T0_NS / 1e9) for e in new]
        events += new
    events += tracker.flush()
    cpu = time.process_time() - t_cpu
    base = T0_NS / 1e9
    for part in trace or ():
        part[:, 0] -= base
    return DetectorRun([replace(e, start_time=e.start_time - base, end_time=e.end_time - base,
                                onset_time=e.onset_time - base, peak_time=e.peak_time - base) for e in events],
                       cpu, decided)


def explained(x: np.ndarray, onsets: list[float], cfg: EventConfig) -> tuple[DetectorRun, dict[str, Any]]:
    """``run_detector`` with its trace (learned detector); the misses and false events
    explained (``hearing_explain.as_json``)."""
    from avag_core.events.learned import shared_weights  # torch: only for the learned detector

    trace: list[np.ndarray] = []
    run = run_detector(x, cfg, trace)
    frames = np.concatenate(trace) if trace else np.zeros((0, 5))
    matched = match(run.events, onsets)
    misses, falses = hearing_explain.explain(run.events, onsets, matched, frames, cfg, (MATCH_BEFORE_S, MATCH_AFTER_S))
    hit_lengths = [hearing_explain.length_s(run.events[j], cfg) for j in matched if j is not None]
    return run, hearing_explain.as_json(misses, falses, len(shared_weights(cfg.onset_weights or None)[1]), hit_lengths)


def load_head(checkpoint: str) -> tuple[Any, Any]:
    """(ActionRecognizer, model) for ``--heard``: the head beside ``checkpoint``."""
    from avag_core.hearing import ActionRecognizer
    from avag_core.weights.checkpoint import load_model_checkpoint

    return ActionRecognizer.load(checkpoint), load_model_checkpoint(checkpoint)[0]


def head_verdicts(head: tuple[Any, Any], track: np.ndarray, events: list[SoundEvent]) -> list[str | None]:
    """Per event (times relative to the track): the action the head (``load_head``) names,
    or None where it rejects the sound as not an action (no masks reach the robot)."""
    rec, model = head
    out: list[str | None] = []
    for e in events:
        clip = track[max(0, int(e.start_time * SR)):int(e.end_time * SR)]
        heard = rec.recognize(model, clip, SR) if clip.size else None
        out.append(heard.label if heard is not None and heard.is_action else None)
    return out


def accepted_by_head(head: tuple[Any, Any], track: np.ndarray, events: list[SoundEvent]) -> list[str]:
    """Labels of the events the head accepts as actions: the ones that reach the robot."""
    return [v for v in head_verdicts(head, track, events) if v is not None]


def match(events: list[SoundEvent], onsets: list[float]) -> list[int | None]:
    """Per reference onset, the index in ``events`` of the detection matched to it (None: a
    miss): greedy and one-to-one in time order (see the module docstring)."""
    order = sorted(range(len(events)), key=lambda j: events[j].onset_time)
    used: set[int] = set()
    out: list[int | None] = []
    for ref in onsets:
        hit = next((j for j in order if j not in used
                    and ref - MATCH_BEFORE_S <= events[j].onset_time <= ref + MATCH_AFTER_S), None)
        if hit is not None:
            used.add(hit)
        out.append(hit)
    return out


def outcomes(events: list[SoundEvent], onsets: list[float],
             matched: list[int | None] | None = None) -> dict[str, list]:
    """Per action slot (from its reference onset to the next; detections before the first
    onset count in the first): whether the action was found, and how many false detections
    began in the slot. Why: two runs over the same mixes are then compared slot by slot, so
    the noise of which actions and backgrounds were drawn cancels (``hearing_compare``).
    ``matched``: ``match(events, onsets)`` where the caller has it."""
    m = match(events, onsets) if matched is None else matched
    used = {j for j in m if j is not None}
    false = [0] * len(onsets)
    for j, e in enumerate(events):
        if j not in used and onsets:
            false[max(0, bisect.bisect_right(onsets, e.onset_time) - 1)] += 1
    return {"onsets_s": [round(o, 3) for o in onsets], "hit": [int(j is not None) for j in m], "false": false}


def score(events: list[SoundEvent], onsets: list[float],
          matched: list[int | None] | None = None) -> dict[str, float]:
    """Recall, precision and onset errors of ``match`` (``matched``: its result, where the
    caller has it)."""
    m = match(events, onsets) if matched is None else matched
    errors = [abs(events[j].onset_time - ref) for ref, j in zip(onsets, m, strict=True) if j is not None]
    hits = len(errors)
    return {
        "actions": len(onsets), "detections": len(events), "hits": hits,
        "recall": hits / len(onsets) if onsets else 1.0,
        "precision": hits / len(events) if events else 1.0,
        "false_alarms": len(events) - hits,
        "onset_errors_ms": [round(e * 1000, 1) for e in errors],
    }


def per_snr(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per SNR over all backgrounds: event F1 (2 x hits / (detections + actions)) and how many
    backgrounds meet the recall and precision targets (the README's summary rows)."""
    out = []
    for snr in sorted({r["snr_db"] for r in rows}, reverse=True):
        at = [r for r in rows if r["snr_db"] == snr]
        hits, dets, acts = (sum(r[k] for r in at) for k in ("hits", "detections", "actions"))
        meeting = sum(r["recall"] >= TARGETS["recall_5db"] and r["precision"] >= TARGETS["precision_5db"] for r in at)
        out.append({"snr_db": snr, "event_f1": 2 * hits / (dets + acts) if dets + acts else 1.0,
                    "backgrounds_meeting_targets": meeting, "backgrounds": len(at)})
    return out


def misses_by_action(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """Per SNR, each action's [times missed, times played] over the mixes (``--repeats``
    plays it more than once in each), most missed first. Why: the per-background rows say
    how often the detector misses, not what; a miss spread over many sounds asks for another
    model, one sound missed over every background for a look at that sound (too soft, too
    slow a rise, like a background)."""
    out: dict[str, dict[str, list[int]]] = {}
    for snr in sorted({r["snr_db"] for r in rows}, reverse=True):
        tally: dict[str, list[int]] = {}
        for r in (r for r in rows if r["snr_db"] == snr):
            for name, hit in zip(r["action_names"], r["hit"], strict=True):
                t = tally.setdefault(name, [0, 0])
                t[0] += not hit
                t[1] += 1
        out[f"{snr:g}"] = dict(sorted(tally.items(), key=lambda kv: (-kv[1][0], kv[0])))
    return out


def write_backgrounds(out: Path, names: list[str], rset: RecordingSet, part: str, cache: Path, seed: int) -> int:
    """``--write-backgrounds``: the ``part`` of each background as WAV files, one per
    recording (speech and the noises as one track each), at -20 dBFS like the benchmark's."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        if name in ("speech", "white", "pink"):
            tracks = [background(name, 300.0 if name == "speech" else 60.0, rng, cache, rset, part)]
        else:
            tracks = [at_background_level(r) for r in recorded(rset.backgrounds[name][1], part)]
        for i, t in enumerate(tracks):
            sf.write(out / f"{rset.name}_{name}_{i}_{part}.wav", within_full_scale(t), SR, subtype="FLOAT")
        print(f"{name}: {len(tracks)} file(s), {sum(t.size for t in tracks) / SR:.1f} s")
    print(f"wrote {out}")
    return 0


def event_config(overrides: dict[str, Any]) -> EventConfig:
    """The event settings that ``overrides`` (name -> value as YAML reads it) make of the defaults.

    The project's own override parsing, as the configs use it: unknown names are refused,
    values converted to each field's type, and the ranges checked (``AvagError`` or
    ``ValueError``, one line). A blank value (``onset_weights=``) is the empty string, as in
    the YAML: the shipped file. Shared with ``onset_tuning --grid``.
    """
    return from_dict(EventConfig, {k: "" if v is None else v for k, v in overrides.items()}).validate()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=Path("hearing_bench.json"))
    ap.add_argument("--detector", choices=("flux", "energy", "learned"), default=None,
                    help="events.detector (default: EventConfig's default)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="any other EventConfig field, e.g. --set on_db=8")
    ap.add_argument("--recordings", choices=tuple(SETS), default="bench",
                    help="bench: the README's benchmark; heldout: other packages' recordings that neither "
                    "the benchmark nor training plays (avag_core/benchmarks/hearing_sets.py)")
    ap.add_argument("--backgrounds", default=None,
                    help="comma-separated (default: every background of the set, then white and pink noise, "
                    "then 'gated': the actions with exact zeros between them, and 'paused': speech and music "
                    "that pause before each action)")
    ap.add_argument("--mix-play", choices=("excerpts", "continuous"), default="excerpts",
                    help="how a recorded background plays under the actions: 2-8 s excerpts, each joined to the "
                    "next by a 50 ms cross-fade (every run before 2026-12-05), or whole recordings one after "
                    "another, as a room plays them (other mixes: compare runs of one kind only)")
    ap.add_argument("--snrs", default=",".join(f"{s:g}" for s in SNRS))
    ap.add_argument("--alone-s", type=float, default=600.0, help="speech/music alone, seconds each")
    ap.add_argument("--repeats", type=int, default=1, help="passes over all actions per background and SNR")
    ap.add_argument("--quick", action="store_true", help="--alone-s 120, one pass")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heard", metavar="CHECKPOINT", default=None,
                    help="also run the action head beside CHECKPOINT on every event: recall and precision "
                    "of the events it accepts (what reaches the robot as masks), and the events of "
                    "speech/music alone it accepts")
    ap.add_argument("--explain", action="store_true",
                    help="learned detector: why each action was missed and what each false event looked like "
                    "to the model (one line per mix; every miss and false event in the JSON)")
    ap.add_argument("--background-part", choices=PARTS, default="whole",
                    help="play only the first or second half of each background recording (and of the "
                    "speech text): 'second' scores a detector adapted on the first (--write-backgrounds)")
    ap.add_argument("--write-backgrounds", type=Path, default=None, metavar="DIR",
                    help="write nothing else: the --background-part of each background as 16 kHz WAV "
                    "files in DIR (speech: 5 min; white and pink: 1 min), the room for train_onset --room")
    ap.add_argument("--room", type=room_arg, action="append", default=[], metavar="[NAME=]PATH[,...]",
                    help="your room's recordings (audio files or folders of them, no actions in them, e.g. from "
                    "`avag bag audio`): a background named NAME ('room' without one; give --room once per room), "
                    "each recording whole, in an order drawn from "
                    "--seed, over and over under the set's actions, and each once in name order alone (up to "
                    "--alone-s); the default --backgrounds becomes the rooms")
    ap.add_argument("--cache", type=Path, default=default_cache_dir() / "hearing_bench")
    args = ap.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.detector:
            overrides["detector"] = args.detector
        cfg = event_config(overrides)
    except (AvagError, ValueError) as e:  # one line, as every CLI here: a wrong name, value or range
        ap.error(f"--set: {e}")
    rset, rooms = SETS[args.recordings], {}
    if args.room:
        named = dict(args.room)
        if len(named) < len(args.room):
            ap.error("--room: each room needs its own NAME (NAME=PATH[,...])")
        try:
            rset, rooms = with_rooms(rset, named)
        except (AvagError, ValueError) as e:  # missing, empty, too short, or not audio
            print(f"hearing_bench: {e}", file=sys.stderr)
            return 2
    missing = rset.missing()
    if missing:
        print(f"hearing_bench: {len(missing)} recordings missing (first: {missing[0]}); "
              f"install them: apt-get install -y --no-install-recommends {rset.apt}", file=sys.stderr)
        return 2
    if args.quick:
        args.alone_s = 120.0
    if args.explain and cfg.detector != "learned":
        ap.error("--explain needs the learned detector (it reads the onset model's probabilities)")

    def detect(x: np.ndarray, onsets: list[float]) -> tuple[DetectorRun, dict[str, Any] | None]:
        return explained(x, onsets, cfg) if args.explain else (run_detector(x, cfg), None)

    rng = np.random.default_rng(args.seed)
    snrs = [float(s) for s in args.snrs.split(",")]
    names = (args.backgrounds.split(",") if args.backgrounds else list(rooms) if rooms
             else ["speech", *rset.backgrounds, "white", "pink", "gated", "paused"])
    unknown = [n for n in names if n not in ("speech", "white", "pink", "gated", "paused", *rset.backgrounds)]
    if unknown:
        ap.error(f"--backgrounds: {unknown[0]!r} is not a background of the {rset.name} set")
    mixed = [n for n in names if n not in ("gated", "paused")]  # inputs of their own, after the mixes
    if args.write_backgrounds is not None:
        return write_backgrounds(args.write_backgrounds, mixed, rset, args.background_part, args.cache, args.seed)
    actions = load_actions(rset)
    rows, cpu_total, audio_total, decided = [], 0.0, 0.0, []
    head = load_head(args.heard) if args.heard else None
    mix_s = 2.0 + 3.6 * len(actions) * args.repeats + 3.0
    for name in mixed:
        joins: list[float] = []  # where a recorded background's excerpts join (none in speech or noise)
        draw = rng
        if name in rooms:
            bg = room_track(rset, mix_s, args.background_part, joins, args.seed, name)
            # each room's actions drawn as in a run over that room alone: its figures do not
            # depend on which rooms came before it in the run
            draw = np.random.default_rng(args.seed)
        elif args.mix_play == "continuous" and name in rset.backgrounds:
            bg = played_as_in_a_room(name, mix_s, args.seed, rset, args.background_part, salt=(1,), joins=joins)
        else:
            bg = background(name, mix_s, rng, args.cache, rset, args.background_part, joins)
        for snr in snrs:
            acts, played = actions * args.repeats, []
            mix, onsets = build_mix(bg, acts, snr, draw, played)
            (events, cpu, after), why = detect(mix, onsets)
            cpu_total += cpu
            decided += after
            audio_total += mix.size / SR
            matched = match(events, onsets)
            s = score(events, onsets, matched)
            errs = s.pop("onset_errors_ms")
            hit = set(matched)
            falses = [e.onset_time for k, e in enumerate(events) if k not in hit]
            rows.append({"background": name, "snr_db": snr, **s,
                         "onset_p50_ms": float(np.percentile(errs, 50)) if errs else None,
                         "onset_p90_ms": float(np.percentile(errs, 90)) if errs else None,
                         "fa_per_min": s["false_alarms"] / (mix.size / SR / 60), **outcomes(events, onsets, matched),
                         "joins": len(joins), "false_at_joins": at_joins(falses, joins), "action_names": played})
            if why is not None:
                rows[-1]["explain"] = why
            if head is not None:  # what reaches the robot: the events the head accepts
                kept = [e for e, v in zip(events, head_verdicts(head, mix, events), strict=True) if v]
                h = score(kept, onsets)
                rows[-1]["heard"] = {k: h[k] for k in ("detections", "hits", "recall", "precision")}

    def play_alone(name: str, play: str, bg: np.ndarray, joins: list[float] | None,
                   pieces: list[Piece] | None = None) -> dict[str, Any]:
        nonlocal cpu_total, audio_total
        (events, cpu, _after), why = detect(bg, [])
        cpu_total += cpu
        audio_total += bg.size / SR
        row = {"background": name, "play": play, "seconds": bg.size / SR, "events": len(events),
               "fa_per_min": len(events) / (bg.size / SR / 60)}
        if joins is not None:  # a recorded background: how many of its false events began at a join
            row.update(joins=len(joins), at_joins=at_joins([e.onset_time for e in events], joins))
        if pieces is not None:  # whole recordings: where to hear each false event, and which recordings start most
            files = rset.backgrounds[name][1]
            row["where"] = [{**w, "rise_db": rise_db(bg, e.onset_time)} for w, e in zip(
                in_recordings(files, args.background_part, pieces, [e.onset_time for e in events]), events, strict=True)]
            row["by_file"] = by_file(files, pieces, bg.size / SR, [w["file"] for w in row["where"]])
        if why is not None:
            row["explain"] = why
        if head is not None:
            labels = accepted_by_head(head, bg, events)
            row.update(accepted=len(labels), accepted_labels=labels,
                       accepted_per_min=len(labels) / (bg.size / SR / 60))
        return row

    alone = []
    for name in ("speech", "music", "white", *rooms):
        if name not in names:
            continue
        if name in rooms:  # each of the room's recordings once, in name order, up to --alone-s in all
            whole: list[float] = []
            laid: list[Piece] = []
            track = room_track(rset, args.alone_s, args.background_part, whole, name=name, pieces=laid)
            alone.append(play_alone(name, "continuous", within_full_scale(track), whole, laid))
        elif name in rset.backgrounds:  # recorded: as a room plays it (the target's), then as excerpts
            whole, laid = [], []
            track = played_as_in_a_room(name, args.alone_s, args.seed, rset, args.background_part, joins=whole,
                                        pieces=laid)
            alone.append(play_alone(name, "continuous", within_full_scale(track), whole, laid))
            cut: list[float] = []
            track = background(name, args.alone_s, rng, args.cache, rset, args.background_part, cut)
            alone.append(play_alone(name, "excerpts", within_full_scale(track), cut))
        else:  # made as it plays (speech read on, noise)
            track = background(name, args.alone_s, rng, args.cache, rset, args.background_part)
            alone.append(play_alone(name, "continuous", within_full_scale(track), None))
    def own_input(mix: np.ndarray, onsets: list[float], acts: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
        """An input of its own (gated, paused): actions found and false events, slot by slot,
        and why with --explain; not in the runtime line."""
        run, why = detect(mix, onsets)
        matched = match(run.events, onsets)
        s = score(run.events, onsets, matched)
        s.pop("onset_errors_ms")
        out = {**s, **outcomes(run.events, onsets, matched), "action_names": [n for n, _ in acts][: len(onsets)]}
        if why is not None:
            out["explain"] = why
        return out

    acts = actions * args.repeats
    gated = None
    if "gated" in names:  # after every random draw: the other rows stay as they were
        gated = {"peak_dbfs": 20 * float(np.log10(GATED_PEAK)), **own_input(*gated_mix(acts), acts)}
    paused = []
    if "paused" in names:  # its own draw, after every other: the other rows stay as they were
        pause_rng = np.random.default_rng([args.seed, 2])
        for name in PAUSED_OVER:
            bg = background(name, 6.0 * len(acts) + 8.0, pause_rng, args.cache, rset, args.background_part)
            paused.append({"background": name, "pauses_s": list(PAUSES_S), "quiet_db": PAUSED_QUIET_DB,
                           "snr_db": PAUSED_SNR_DB, **own_input(*paused_mix(bg, acts), acts)})
    rtf = cpu_total / audio_total if audio_total else 0.0
    plays = [f"the set's recorded backgrounds under them played as {args.mix_play}"] if any(
        n in rset.backgrounds and n not in rooms for n in mixed) else []
    plays += [f"{n}: {len(r['files'])} file(s), each whole, in a drawn order" for n, r in rooms.items()]
    print(f"recordings={rset.name}  detector={cfg.detector}  chunks of {CHUNK} samples at {SR} Hz, {len(actions)} actions x "
          f"{args.repeats} per background and SNR" + "".join(f"; {t}" for t in plays))
    print(f"{'background':<10} {'SNR dB':>6} {'recall':>7} {'precision':>9} {'onset p50/p90 ms':>17} "
          f"{'FA/min':>7}" + (f" {'heard recall':>12} {'heard precision':>15}" if head else ""))
    for r in rows:
        p50 = "-" if r["onset_p50_ms"] is None else f"{r['onset_p50_ms']:.0f}"
        p90 = "-" if r["onset_p90_ms"] is None else f"{r['onset_p90_ms']:.0f}"
        print(f"{r['background']:<10} {r['snr_db']:>6g} {r['recall']:>7.2f} {r['precision']:>9.2f} "
              f"{p50 + '/' + p90:>17} {r['fa_per_min']:>7.2f}"
              + (f" {r['heard']['recall']:>12.2f} {r['heard']['precision']:>15.2f}" if "heard" in r else ""))
    summary = per_snr(rows)
    for p in summary:
        print(f"event F1 at {p['snr_db']:g} dB: {p['event_f1']:.3f} (backgrounds meeting recall and precision "
              f">= 0.9: {p['backgrounds_meeting_targets']}/{p['backgrounds']})")
    at5 = [r for r in rows if r["snr_db"] == 5.0]
    by_action = misses_by_action(rows)
    for snr, tally in by_action.items():
        worst = [f"{n} {m}/{k}" for n, (m, k) in tally.items() if m][:8]
        print(f"missed most at {snr} dB (times missed / played): {', '.join(worst) or 'none'}")
    if any(r["joins"] for r in rows):
        print(f"false events within {JOIN_NEAR_S:g} s of a join of two recordings or excerpts: "
              f"{sum(r['false_at_joins'] for r in rows)} of {sum(r['false_alarms'] for r in rows)} in the mixes"
              + (f" ({sum(r['false_at_joins'] for r in at5)} of {sum(r['false_alarms'] for r in at5)} at 5 dB)"
                 if at5 else ""))
    for a in alone:
        print(f"{alone_name(a)}: {a['events']} events in {a['seconds']:.0f} s = "
              f"{a['fa_per_min']:.2f} false alarms per minute"
              + (f", {a['at_joins']} of them within {JOIN_NEAR_S:g} s of one of its {a['joins']} joins"
                 if "at_joins" in a else "")
              + (f"; accepted as actions by the head: {a['accepted']} = {a['accepted_per_min']:.2f} per minute"
                 if "accepted" in a else ""))
        if a.get("where"):
            print("\n".join(where_lines(a)))
    if gated:
        print(f"gated microphone (exact zeros between sounds, each action peaking at {gated['peak_dbfs']:g} dBFS): "
              f"{gated['hits']} of {gated['actions']} actions found, {gated['false_alarms']} false events")
    for r in paused:
        print(f"{r['background']} pausing before each action ({', '.join(f'{g:g}' for g in r['pauses_s'])} s in turn, "
              f"exact zeros or {r['quiet_db']:g} dB quieter), the action at {r['snr_db']:g} dB as it comes back: "
              f"{r['hits']} of {r['actions']} actions found, {r['false_alarms']} false events")
    if args.explain:
        for r in rows:
            print(f"explain {r['background']} {r['snr_db']:g} dB: {r['explain']['line']}")
        for a in alone:
            print(f"explain {alone_name(a)}: {a['explain']['line']}")
        if gated:
            print(f"explain gated: {gated['explain']['line']}")
        for r in paused:
            print(f"explain {r['background']} pausing: {r['explain']['line']}")
    print(f"runtime: {rtf * 100:.2f} % of one core ({rtf * 3600:.1f} s per hour of audio)")
    delay = ({"p50": float(np.percentile(decided, 50)), "p90": float(np.percentile(decided, 90))}
             if decided else None)
    if delay:
        waits = f"release_s {cfg.release_s:g} s" + (
            f", the onset model's hindsight and learned_block_s {cfg.learned_block_s:g} s" if cfg.detector == "learned" else "")
        print(f"an event is known to be over {delay['p50']:.3f} s (p50), {delay['p90']:.3f} s (p90) after its end ({waits})")
    errs_all = [r["onset_p90_ms"] for r in at5 if r["onset_p90_ms"] is not None]
    verdict = {
        "recall_5db": min((r["recall"] for r in at5), default=None),
        "precision_5db": min((r["precision"] for r in at5), default=None),
        "onset_p90_ms": max(errs_all, default=None),
        "fa_per_min_alone": max((a["fa_per_min"] for a in alone
                                 if a["background"] != "white" and a["play"] == "continuous"), default=None),
        "rtf_percent": rtf * 100,
    }
    print("worst at 5 dB / alone:", ", ".join(f"{k}={v:.3g}" if v is not None else f"{k}=-"
                                              for k, v in verdict.items()))
    payload = {"recordings": rset.name, "background_part": args.background_part, "mix_play": args.mix_play,
               "rooms": rooms,
               "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
               "chunk": CHUNK,
               "rows": rows, "per_snr": summary, "misses_by_action": by_action, "alone": alone, "gated": gated,
               "paused": paused,
               "rtf": rtf, "decided_after_s": delay,
               "worst": verdict, "targets": TARGETS,
               "command": " ".join(["python -m avag_core.benchmarks.hearing_bench", *(argv or sys.argv[1:])])}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
