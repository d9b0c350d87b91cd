"""Real background recordings (speech, music, rain, machines) for synthetic streams.

Why: an event detector tuned on white noise fails in real rooms, where speech and music
keep the level moving all the time. Synthetic bags and benchmarks therefore lay actions
over real recordings: these helpers load any file libsndfile reads, build a background
track of any length from one or more recordings (random excerpts joined with short
cross-fades, so a 4 s loop does not repeat with an audible period) and scale an action
to a chosen signal-to-background ratio.

SNR convention (used by the benchmark and the demo bag alike): the action's power over
its active part (10 ms frames within ``ACTIVE_DB`` of its loudest frame) against the
background's mean power over the whole track, digital silence left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

from avag_core.data.audio_io import load_audio

RECORDINGS = Path(__file__).parent / "recordings"  # shipped backgrounds (see LICENSES.md there)
ACTIVE_DB = 20.0  # frames this far below the loudest 10 ms frame still count as the action
HEADROOM_PEAK = 10 ** (-1 / 20)  # -1 dBFS: the loudest sample of a mix after within_full_scale
SILENCE_POWER = 1e-10  # -100 dBFS: digital silence, left out of background power
_FADE_S = 0.05


def shipped_recordings() -> list[Path]:
    """The background recordings shipped with avag (speech, music): 10 s each, 16 kHz."""
    return sorted(RECORDINGS.glob("*.flac"))


def shipped_by_name() -> dict[str, Path]:
    """The shipped recordings by short name ("speech", "music")."""
    return {p.stem.split("_")[0]: p for p in shipped_recordings()}


def load_mono(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Any audio file as mono float32 at ``sample_rate`` (windowed-sinc resampling)."""
    from avag_core.events.resample import StreamingResampler

    wave, rate = load_audio(path)
    mono = wave.mean(axis=0).astype(np.float32)
    if rate == sample_rate:
        return mono
    rs = StreamingResampler(rate, sample_rate)
    return np.concatenate([rs.process(mono), rs.flush()])


def _frame_power(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = max(1, sample_rate // 100)
    m = x.size // n
    if m == 0:
        return np.array([float(np.mean(x.astype(np.float64) ** 2))])
    return np.mean(x[: m * n].astype(np.float64).reshape(m, n) ** 2, axis=1)


def active_power(action: np.ndarray, sample_rate: int = 16000) -> float:
    """Mean power of the action's active part (see the module docstring)."""
    p = _frame_power(action, sample_rate)
    active = p[p >= p.max() * 10 ** (-ACTIVE_DB / 10)]
    return float(active.mean()) if active.size else 0.0


def background_power(track: np.ndarray) -> float:
    """Mean power of a background track, digital silence left out."""
    x = track.astype(np.float64)
    sq = x * x
    # 10 ms blocks at any rate that are (near) digital zero do not count
    n = 160
    m = sq.size // n
    if m == 0:
        return float(sq.mean()) if sq.size else 0.0
    blocks = sq[: m * n].reshape(m, n).mean(axis=1)
    live = blocks[blocks > SILENCE_POWER]
    return float(live.mean()) if live.size else 0.0


def gain_for_snr(action: np.ndarray, bg_power: float, snr_db: float, sample_rate: int = 16000) -> float:
    """Factor that puts ``action`` ``snr_db`` above a background of power ``bg_power``."""
    p = active_power(action, sample_rate)
    if p <= 0.0 or bg_power <= 0.0:
        return 1.0
    return float(np.sqrt(bg_power * 10 ** (snr_db / 10) / p))


def background_track(
    recordings: Sequence[np.ndarray],
    seconds: float,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    excerpt_s: tuple[float, float] = (2.0, 8.0),
    fade_in: bool = False,
    joins: list[float] | None = None,
) -> np.ndarray:
    """A ``seconds`` long track of random excerpts of ``recordings``, cross-faded.

    Recordings shorter than an excerpt are used whole. Each join is a 50 ms linear
    cross-fade, so joins add no clicks (which a detector would rightly call onsets);
    ``fade_in`` fades the track's start in the same way (a training stream that starts
    mid-sound would teach an onset at 0). ``joins`` (a list) receives each join's time in
    seconds (where the next excerpt starts to fade in).
    """
    usable = [r.astype(np.float32) for r in recordings if r.size > 0]
    if not usable:
        raise ValueError("background_track needs at least one non-empty recording")
    total, out, ramp = _empty_track(seconds, sample_rate)
    fade = ramp.size
    pos = 0
    while pos < total:
        rec = usable[int(rng.integers(len(usable)))]
        want = round(rng.uniform(*excerpt_s) * sample_rate)
        n = min(want, rec.size)
        if n <= 2 * fade:
            continue
        start = int(rng.integers(0, rec.size - n + 1))
        if pos > 0 and joins is not None:
            joins.append(pos / sample_rate)
        pos = _lay(out, rec[start:start + n].copy(), pos, ramp, pos > 0 or fade_in)
    return out[:total]


def _empty_track(seconds: float, sample_rate: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(samples wanted, a zero track one cross-fade longer, the cross-fade's rising ramp)."""
    total = round(seconds * sample_rate)
    fade = round(_FADE_S * sample_rate)
    return total, np.zeros(total + fade, np.float32), np.linspace(0.0, 1.0, fade, dtype=np.float32)


@dataclass(frozen=True)
class Piece:
    """One pass of a recording laid into a track (``playlist``, ``in_turn``): where the track
    begins to play it, which recording (its index in the list given) and from how far into it.
    Why: a sound heard in the track can then be found, and listened to, in its recording."""

    at_s: float
    index: int
    from_s: float


def _lay(out: np.ndarray, piece: np.ndarray, pos: int, ramp: np.ndarray, fade_in: bool) -> int:
    """Add ``piece`` (faded in when ``fade_in``, always faded out) into ``out`` at ``pos``;
    where the next piece goes: one cross-fade before this one's end."""
    fade = ramp.size
    if fade_in:
        piece[:fade] *= ramp
    piece[-fade:] *= ramp[::-1]
    end = min(pos + piece.size, out.size)
    out[pos:end] += piece[: end - pos]
    return pos + piece.size - fade


def playlist(recordings: Sequence[np.ndarray], seconds: float, rng: np.random.Generator,
             sample_rate: int = 16000, *, loop_s: float = 30.0, joins: list[float] | None = None,
             pieces: list[Piece] | None = None) -> np.ndarray:
    """A ``seconds`` long track of whole recordings, as a room plays them: the first from a
    random point, then each in turn from its start, in a random order drawn again each round
    (never one twice in a row), cross-faded (50 ms) only where one ends. A recording shorter
    than ``loop_s`` plays that many times over (from its start; the first pass of the first
    one from its random point), as a loop does: a 4 s rain loop is one rain, not a new sound
    every 4 s. ``joins`` (a list) receives the time of each cross-fade, a loop into itself
    included; ``pieces`` (a list) each pass laid (``Piece``).

    Why not ``background_track``: its 2-8 s excerpts jump from one piece to the middle of
    another every few seconds, a change no room makes and one a detector rightly hears as a
    new sound (the hearing benchmark plays music alone both ways, README).
    """
    total, out, ramp = _empty_track(seconds, sample_rate)
    fade = ramp.size
    usable = [(k, r.astype(np.float32)) for k, r in enumerate(recordings) if r.size > 2 * fade]
    if not usable:
        raise ValueError("playlist needs at least one recording longer than two cross-fades")
    pos, last = 0, -1
    while pos < total:
        order = rng.permutation(len(usable))
        if order[0] == last and order.size > 1:  # never one piece twice in a row
            order = np.roll(order, -1)
        for i in order:
            (k, rec), last = usable[i], int(i)
            start = int(rng.integers(0, rec.size - 2 * fade)) if pos == 0 else 0
            for _ in range(max(1, ceil(loop_s * sample_rate / (rec.size - fade)))):
                if pos >= total:
                    break
                if pos > 0 and joins is not None:
                    joins.append(pos / sample_rate)
                if pieces is not None:
                    pieces.append(Piece(pos / sample_rate, k, start / sample_rate))
                pos = _lay(out, rec[start:].copy(), pos, ramp, pos > 0)
                start = 0
    return out[:total]


def in_turn(recordings: Sequence[np.ndarray], sample_rate: int = 16000, *,
            joins: list[float] | None = None, pieces: list[Piece] | None = None) -> np.ndarray:
    """Each recording once, whole, in the given order, cross-faded (50 ms) where one ends.
    Why: a room's own recordings, scored alone for the false events a robot would act on
    (``hearing_bench --room``), are heard as they were made, each once; ``playlist`` starts
    at a random point and loops a short one, so some would be heard twice and others never.
    ``joins`` (a list) receives the time of each cross-fade, ``pieces`` (a list) each recording laid."""
    fade = round(_FADE_S * sample_rate)
    usable = [(k, r.astype(np.float32)) for k, r in enumerate(recordings) if r.size > 2 * fade]
    if not usable:
        raise ValueError("in_turn needs at least one recording longer than two cross-fades")
    total, out, ramp = _empty_track((sum(r.size for _, r in usable) - fade * (len(usable) - 1)) / sample_rate,
                                    sample_rate)
    pos = 0
    for k, rec in usable:
        if pos > 0 and joins is not None:
            joins.append(pos / sample_rate)
        if pieces is not None:
            pieces.append(Piece(pos / sample_rate, k, 0.0))
        pos = _lay(out, rec.copy(), pos, ramp, pos > 0)
    return out[:total]


def reference_onset(x: np.ndarray, sample_rate: int = 16000) -> float:
    """Where a clean action clip starts, in seconds: its first 10 ms block within
    ``ACTIVE_DB`` of its loudest 10 ms (the ground truth the hearing benchmark, the onset
    model's training labels and the detector tests share)."""
    n = sample_rate // 100
    m = x.size // n
    p = np.mean(x[: m * n].astype(np.float64).reshape(m, n) ** 2, axis=1)
    return float(np.flatnonzero(p >= p.max() * 10 ** (-ACTIVE_DB / 10))[0] * n / sample_rate)


def within_full_scale(track: np.ndarray, peak: float = HEADROOM_PEAK) -> np.ndarray:
    """``track`` scaled down as a whole, where needed, so that its loudest sample is ``peak``:
    a microphone whose gain is set for the loudest sound in the room. Every ratio inside the
    track (the SNRs) stays. Why: actions 20 dB over a -20 dBFS background peak far beyond
    full scale, and the detector's input checks clip them (``events.full_scale``), so a
    benchmark without this step would measure clipping, not hearing."""
    top = float(np.abs(track).max()) if track.size else 0.0
    return track * np.float32(peak / top) if top > peak else track


def place(track: np.ndarray, sound: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Add ``gain * sound`` into ``track`` at sample ``start`` (cut at the end)."""
    end = min(track.size, start + sound.size)
    if end > start:
        track[start:end] += gain * sound[: end - start]
