"""Per-frame input of the learned onset model: log-mel levels against a running background.

Why relative levels: the model must work at any microphone gain and over any background,
so each frame is described by how far each mel band is above its own slowly tracked
background (``z``) and how far it rose since the previous frame (``r``), both in units
of 10 dB and clipped (at +-``CLIP_DB``, or what the model's shape says). The background
follows a fall at once-ish (``_TAU_DOWN_S``) and a rise slowly (``_TAU_UP_S``): it stays
near the quiet moments, so an action stands out for its whole first second. The broadband
level is tracked the same way, and the level of each quarter of the frame against it
(``q``) times a click far more finely than a 32 ms frame does. The state is a few vectors,
so streaming chunk by chunk and one pass over a whole recording give the same numbers
(training uses the latter).

With ``peaks`` (a model's shape says so), each band's level is also given against its
recent *peaks* (``p``): an envelope that jumps to every new high and falls back over about
a second (``_TAU_PEAK_S``). Why: over rain, crackle, engines or a drum track the quiet
background sits far below the texture's own drops and hits, so ``z`` is high all the
time; an action is what rises above what the background itself has just reached, and a
max over the last second is hard to build out of the model's ReLU convolutions. Through
digital silence (a muted microphone, a noise gate, a dropout) the envelope keeps falling,
but no lower than the room's background before the silence, the lowest background of the
last ``_ROOM_S`` of sound: room noise that comes back after a mute is no rise above it
(falling freely to the silence, it would look like a new sound), and a sound out of a gate's
zeros is heard as one (held at the last sound's peak, as the envelope once was, every sound
at that level was heard as the same sound coming back: the shipped model found 7 of the
hearing benchmark's 40 actions on a gated input, 37 with this envelope, 40 with the fill
below; docs/hearing.md "Digital silence"). Why the lowest of the last seconds and not the background
of the last frame: a long loud sound cut into zeros (a gate closing on a gong) has raised the
running background by the time it is cut, and held there that floor made the next sound out
of the zeros a small rise (a guitar strum after a gong: onset probability 0.76 with the
members shipped before 2026-12-05, 0.42 with those shipped since; 1.00 and 0.91 with the
room's floor; checkpoints/onset.md). One exception: room noise that stepped up shortly
before the silence (a fan turned on, then a mute) comes back at its new level, and with the
lowest background as the floor its return was heard as a new sound (an event for each of 4
noise draws; docs/hearing.md, "Room noise that stepped up before a mute"). So a level that held
steady through the last ``_STEADY_S`` of sound and stands no more than ``_STEP_DB`` over
that lowest background is taken as the room's own, and its low levels (10 %) are the floor:
a loud sound cut into zeros stands further over the room (the gong above: 50 dB), and a
sound a gate closes on has faded rather than held.

With ``percussive`` (a window in samples; a model's shape says so, the shipped weights' is 0)
the input also holds a finer spectrum's broadband part (``BroadbandPart``): tried for the
voices and music the mel bands cannot tell from a clink, and not in the shipped weights
(checkpoints/onset.md).

Samples within -90 dBFS of zero (the exact zeros of a gate, a mute or a dropout, a decoder's
fading tail) are heard as a fixed -90 dBFS white noise, the hiss of a quiet microphone.
Why: left as they are, every band sits at the -100 dB floor, a level no recording the model
learned from reaches, and the first sound out of them was heard badly (the shipped model
missed a finger snap after a balloon scratch and a guitar strum after a gong: 5 of the
held-out set's 38 gated actions and 3 of the benchmark's 40; 1 and 0 with the fill). The
noise is a fixed table indexed by the frame's place in the stream, so a stream fed chunk by
chunk and one pass over a whole recording still give the same numbers. Louder samples are
untouched, so a band-limited recording's empty bands stay empty (white noise at -90 dBFS
added under the whole input found the gated sounds too, but also filled those bands, and it
cost the benchmark's rain and crackle rows; docs/hearing.md "Near-silent samples").
"""

from __future__ import annotations

import numpy as np

SR, FRAME, HOP = 16000, 512, 256  # the frames every onset model reads (training, the live scorer, EventConfig)
MELS = 48
QUARTERS = 4
FEATURES = 2 * (MELS + 1) + QUARTERS  # without peaks
_LO_HZ, _HI_HZ = 100.0, 7600.0
_FLOOR_DB = -100.0  # digital silence
_TAU_UP_S, _TAU_DOWN_S = 2.0, 0.3
_TAU_PEAK_S = 1.0
_ROOM_S = 4.0  # the floor of the peak envelope through digital silence: the lowest background of this much sound before it
_STEADY_S = 1.0  # ... unless the level of this much sound before the silence held steady:
_STEADY_DB = 6.0  # its broadband level's 10-90 % spread within this
_STEP_DB = 30.0  # and no more than this over that lowest background: then the room's own noise
CLIP_DB = 40.0  # features clipped at +-this (the shipped weights'; a model's shape may say another)
_FILL_DBFS = -90.0  # samples within this of zero are heard as noise at this level
_FILL_ROWS = 997  # frames of fill noise before it repeats (a prime: no beat with any hop)


def mel_matrix(frame: int, sample_rate: int, mels: int = MELS) -> np.ndarray:
    """[bins, mels] triangular filters, equally spaced on the mel scale (HTK formula)."""
    def to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    hi = min(_HI_HZ, sample_rate / 2)
    edges = 700.0 * (10 ** (np.linspace(to_mel(_LO_HZ), to_mel(hi), mels + 2) / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    w = np.zeros((freqs.size, mels), np.float32)
    for m in range(mels):
        lo, mid, top = edges[m:m + 3]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (top - freqs) / max(top - mid, 1e-9)
        w[:, m] = np.clip(np.minimum(up, down), 0.0, None)
    w /= np.maximum(w.sum(axis=0, keepdims=True), 1e-9)
    return w


def mel_power(power: np.ndarray, mel: np.ndarray) -> np.ndarray:
    """Power spectra [n, bins] through mel filters [bins, mels]: the same numbers for a frame
    whatever ``n`` is. Why not ``power @ mel``: a BLAS product may sum in another order for
    another number of rows (OpenBLAS on AMD EPYC: 1 ulp for 5 % of the features), and then a
    stream fed in chunks no longer gives the numbers one pass over it gives (training)."""
    return np.einsum("nk,km->nm", power, mel)


def feature_count(peaks: bool, percussive: int = 0) -> int:
    """Features per frame: ``FEATURES``, plus ``MELS + 1`` levels against the peaks, plus
    ``3 * MELS`` of the broadband part of a ``percussive``-sample window (BroadbandPart)."""
    return FEATURES + (MELS + 1 if peaks else 0) + (3 * MELS if percussive else 0)


def band_starts(peaks: bool) -> list[int]:
    """Where each per-band input (level against the background, rise since the last frame
    and, with peaks, level against the peaks; ``MELS`` values each) starts in a frame's
    features: the inputs a band mask or a convolution along the bands reads."""
    return [0, MELS + 1] + ([2 * (MELS + 1) + QUARTERS] if peaks else [])


def broadband_power(power: np.ndarray, width: int) -> np.ndarray:
    """Each bin's power replaced by the geometric mean of the ``width`` bins around it
    ([n, bins]): near the valleys between harmonics, near the power itself under noise
    (2.5 dB under it: the log-mean of an exponential variable)."""
    half = width // 2
    logp = np.log(np.pad(power, ((0, 0), (half, half)), mode="edge") + 1e-20)
    c = np.concatenate([np.zeros((logp.shape[0], 1)), np.cumsum(logp, axis=1)], axis=1)
    return np.exp((c[:, width:] - c[:, :-width]) / width)


class BroadbandPart:
    """Mel levels of a long window's broadband part, and how much of each band it holds.

    Why: a voice or an instrument puts its power into harmonics with quiet bins between
    them, so the geometric mean across neighbouring bins of a fine spectrum stays near
    those valleys; a hit, a clink or a door slam fills every bin and the mean follows it. A
    32 ms frame's 31 Hz bins do not resolve a voice's harmonics, so this part reads a
    window of ``window`` samples ending where each frame ends (the stream before it is
    kept, so chunked and whole agree) and the geometric mean of ``window // 128 + 1`` bins
    (133 Hz at 2048 samples). On the committed clips' louder frames it holds 3.6 dB less
    than the whole spectrum for a voice, 9.5 dB less for music, 1.0-2.3 dB less for four
    action sounds.
    """

    def __init__(self, window: int, frame: int, hop: int, sample_rate: int) -> None:
        if window < frame or window % hop:
            raise ValueError(f"the broadband part's window ({window}) must be at least the frame ({frame}) "
                             f"and a whole number of hops ({hop})")
        self.window, self._frame, self._hop = window, frame, hop
        self._hann = np.hanning(window).astype(np.float32)
        self._mel = mel_matrix(window, sample_rate)
        self._width = window // 128 + 1
        self._tail: np.ndarray | None = None  # the last window - hop samples of the stream

    def reset(self) -> None:
        self._tail = None

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(broadband part's mel levels, their difference to the whole window's) in dB, [n, MELS] each."""
        new = frames[:, -self._hop:].reshape(-1)
        if self._tail is None:
            lead = np.zeros(self.window - self._frame, np.float32)
            seq = np.concatenate([lead, frames[0, :-self._hop], new])
        else:
            seq = np.concatenate([self._tail, new])
        self._tail = seq[seq.size - (self.window - self._hop):].copy()
        wins = np.lib.stride_tricks.sliding_window_view(seq, self.window)[::self._hop]
        power = np.abs(np.fft.rfft(wins * self._hann, axis=1)) ** 2
        floor = 10 ** (_FLOOR_DB / 10)
        part = 10.0 * np.log10(mel_power(broadband_power(power, self._width), self._mel) + floor)
        whole = 10.0 * np.log10(mel_power(power, self._mel) + floor)
        return part.astype(np.float32), (part - whole).astype(np.float32)


class OnsetFeatures:
    """Frames ([n, frame_samples] float32) in, features ([n, feature_count(peaks, percussive)] float32) out."""

    def __init__(self, frame: int, hop: int, sample_rate: int, *, peaks: bool = False,
                 percussive: int = 0, clip_db: float = CLIP_DB) -> None:
        self._window = np.hanning(frame).astype(np.float32)
        self._fill = (np.random.default_rng(0).standard_normal((_FILL_ROWS, frame))
                      * 10 ** (_FILL_DBFS / 20)).astype(np.float32)
        self._mel = mel_matrix(frame, sample_rate)
        self._up = 1.0 - np.exp(-hop / (_TAU_UP_S * sample_rate))
        self._down = 1.0 - np.exp(-hop / (_TAU_DOWN_S * sample_rate))
        self._fall = 1.0 - np.exp(-hop / (_TAU_PEAK_S * sample_rate))
        self._room_frames = max(1, round(_ROOM_S * sample_rate / hop))
        self._steady_frames = max(1, round(_STEADY_S * sample_rate / hop))
        self.peaks = peaks
        self.percussive = percussive
        self._part = BroadbandPart(percussive, frame, hop, sample_rate) if percussive else None
        self._clip = clip_db / 10.0
        self.reset()

    def reset(self) -> None:
        self._bg: np.ndarray | None = None
        self._peak: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._floor: np.ndarray | None = None  # the floor through digital silence (_peaks_before)
        self._room: np.ndarray | None = None  # [_room_frames, MELS + 1]: backgrounds of the last frames of sound
        self._sounds = 0  # frames of sound seen: where the next one goes in _room and _last
        self._last: np.ndarray | None = None  # [_steady_frames, MELS + 1]: levels of the last frames of sound
        self._was_silent = True  # the last frame seen was digitally silent
        self._frames = 0  # frames seen: the row of the fill noise the next frame takes
        self._pbg: np.ndarray | None = None  # percussive: running background of the broadband part's levels
        self._pprev: np.ndarray | None = None  # ... and its levels in the last frame
        if self._part is not None:
            self._part.reset()

    def levels(self, centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-mel levels + broadband level ([n, MELS + 1]) and the levels of the frame's
        quarters ([n, QUARTERS]) of DC-free frames, in dB."""
        floor = 10 ** (_FLOOR_DB / 10)
        power = np.abs(np.fft.rfft(centred * self._window, axis=1)) ** 2
        q = centred.shape[1] // QUARTERS
        sq = centred[:, : q * QUARTERS] ** 2
        quarters = sq.reshape(sq.shape[0], QUARTERS, q).mean(axis=2)
        lv = np.concatenate([mel_power(power, self._mel), sq.mean(axis=1, keepdims=True)], axis=1)
        return (10.0 * np.log10(lv + floor)).astype(np.float32), (10.0 * np.log10(quarters + floor)).astype(np.float32)

    def filled(self, centred: np.ndarray) -> np.ndarray:
        """DC-free frames with every sample within _FILL_DBFS of zero replaced by the fill
        noise (the row of each frame's place in the stream)."""
        rows = self._fill[(self._frames + np.arange(centred.shape[0])) % _FILL_ROWS]
        self._frames += centred.shape[0]
        return np.where(np.abs(centred) < 10 ** (_FILL_DBFS / 20), rows, centred)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        n = frames.shape[0]
        if n == 0:
            return np.zeros((0, feature_count(self.peaks, self.percussive)), np.float32)
        centred = frames - frames.mean(axis=1, keepdims=True)
        silent = (centred ** 2).mean(axis=1) <= 10 ** ((_FLOOR_DB + 1.0) / 10)  # digital silence, DC or not
        filled = self.filled(centred)
        lv, quarters = self.levels(filled)
        if self._bg is None:
            self._bg, self._peak, self._prev, self._floor = (lv[0].copy() for _ in range(4))
            self._room = np.repeat(lv[:1], self._room_frames, axis=0)
            self._last = np.repeat(lv[:1], self._steady_frames, axis=0)
        bg, self._bg = self._background(lv, self._bg)
        prev = np.concatenate([self._prev[None], lv[:-1]], axis=0)
        self._prev = lv[-1].copy()
        parts = [lv - bg, lv - prev, quarters - bg[:, -1:]]
        if self.peaks:
            parts.append(lv - self._peaks_before(lv, bg, silent))
        if self._part is not None:
            parts.extend(self._percussive(*self._part(filled)))
        return np.clip(np.concatenate(parts, axis=1) / 10.0, -self._clip, self._clip).astype(np.float32)

    def _background(self, lv: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The running background before each frame (it follows a fall within _TAU_DOWN_S and
        a rise within _TAU_UP_S) and after the last, from ``b`` before the first."""
        bg = np.empty_like(lv)
        for k in range(lv.shape[0]):
            bg[k] = b
            d = lv[k] - b
            b = b + np.where(d > 0, self._up, self._down) * d
        return bg, b

    def _percussive(self, perc: np.ndarray, share: np.ndarray) -> list[np.ndarray]:
        """The broadband part's levels against their own running background and the
        previous frame (as ``z`` and ``r`` for the whole spectrum), and its share of each band."""
        if self._pbg is None:
            self._pbg, self._pprev = perc[0].copy(), perc[0].copy()
        bg, self._pbg = self._background(perc, self._pbg)
        prev = np.concatenate([self._pprev[None], perc[:-1]], axis=0)
        self._pprev = perc[-1].copy()
        return [perc - bg, perc - prev, share]

    def _peaks_before(self, lv: np.ndarray, bg: np.ndarray, silent: np.ndarray) -> np.ndarray:
        """The peak envelope before each frame: jumps to a new high, falls back with
        _TAU_PEAK_S, never below the running background; while the input is digitally
        silent, never below the room's floor before it (_room_floor)."""
        pk = np.empty_like(lv)
        p, floor, was_silent = self._peak, self._floor, self._was_silent
        for k in range(lv.shape[0]):
            pk[k] = p
            if not silent[k]:
                floor = bg[k]
                self._room[self._sounds % self._room_frames] = bg[k]
                self._last[self._sounds % self._steady_frames] = lv[k]
                self._sounds += 1
            elif not was_silent:  # the silence begins: the room's floor before it
                floor = self._room_floor()
            was_silent = bool(silent[k])
            p = np.maximum(np.maximum(lv[k], p + self._fall * (lv[k] - p)), floor)
        self._peak, self._floor, self._was_silent = p, floor, was_silent
        return pk

    def _room_floor(self) -> np.ndarray:
        """The level room noise will come back at after digital silence. Usually the lowest
        background of the last _ROOM_S of sound: a loud sound cut into zeros is not the room.
        But a level that held steady for the last _STEADY_S and stands at most _STEP_DB over
        that is the room's own noise that stepped up (a fan turned on, then a mute): its
        low levels (10 %) are the floor, or its return would be heard as a new sound."""
        low = self._room.min(axis=0)
        broad = self._last[:, MELS]
        q10, q50, q90 = np.percentile(broad, (10, 50, 90))
        if q90 - q10 <= _STEADY_DB and q50 - low[MELS] <= _STEP_DB:
            return np.maximum(low, np.percentile(self._last, 10, axis=0)).astype(np.float32)
        return low


def frames_of(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """All full frames of a whole recording, as the detector frames a contiguous stream."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size < frame:
        return np.zeros((0, frame), np.float32)
    n = 1 + (x.size - frame) // hop
    return np.lib.stride_tricks.as_strided(x, (n, frame), (hop * 4, 4)).copy()
