"""Band levels of analysis frames and each band's recent background level.

Why per band: speech, music and rain fill some bands and move all the time, so one
broadband floor is either below them (every syllable is an "event") or above the action
(the action is missed). Judged band by band against that band's own recent high level
(a quantile of its history), an action is loud where the background is not: a hammer
hit over speech stands out in the bands above the voice. Bands start above
``band_lo_hz``, so DC offsets and rumble never count, and each frame's mean is removed
before the window so a DC offset does not leak into the lowest bands either.
"""

from __future__ import annotations

import numpy as np

_CAP_DB = 30.0  # one band's rise counts at most this much
_CAP_Z = 3.0  # one band's excess counts at most this much (a single tone cannot carry an event)
_MIN_SPREAD_DB = 1.0  # a band steadier than this (white noise, hum) is judged as if it moved this much


def band_edges(n_fft: int, sample_rate: int, bands: int, lo_hz: float, hi_hz: float,
               min_bins: int = 3) -> np.ndarray:
    """rfft bin edges of up to ``bands`` log-spaced bands, each at least ``min_bins`` wide.

    Why a minimum width: a one-bin band swings by +-10 dB on steady noise, and bands that
    share a bin swing together, which would look like a broadband onset.
    """
    bin_hz = sample_rate / n_fft
    wanted = np.round(np.geomspace(lo_hz, hi_hz, bands + 1) / bin_hz).astype(int)
    top = min(int(hi_hz / bin_hz), n_fft // 2)
    edges = [max(1, int(wanted[0]))]
    for e in wanted[1:]:
        nxt = max(int(e), edges[-1] + min_bins)
        if nxt > top:
            break
        edges.append(nxt)
    if len(edges) < 2:
        raise ValueError(f"no analysis band fits between {lo_hz} and {hi_hz} Hz")
    return np.array(edges)


class BandLevels:
    """dB level per band of each frame, with a floor at ``silence_db`` (no -inf, no log noise)."""

    def __init__(self, frame: int, sample_rate: int, bands: int, lo_hz: float, hi_hz: float,
                 silence_db: float) -> None:
        self.edges = band_edges(frame, sample_rate, bands, lo_hz, hi_hz)
        self.bands = self.edges.size - 1
        self.window = np.hanning(frame).astype(np.float32)
        # |X|^2 * scale summed over all bins is the frame's mean-square power (Parseval)
        self._scale = 2.0 / (frame * float(np.sum(self.window.astype(np.float64) ** 2)))
        share = np.diff(self.edges) / (frame // 2 + 1)
        self._floor = (10.0 ** (silence_db / 10.0)) * share  # white noise at silence_db, per band
        self.silence_power = 10.0 ** (silence_db / 10.0)

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(levels [n, bands] dB, in-band power [n]) of frames [n, frame]."""
        centred = frames - frames.mean(axis=1, keepdims=True)
        spec = np.fft.rfft(centred * self.window, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2)[:, self.edges[0]:self.edges[-1]] * self._scale
        band_power = np.add.reduceat(power, self.edges[:-1] - self.edges[0], axis=1)
        levels = 10.0 * np.log10(band_power + self._floor)
        return levels.astype(np.float32), band_power.sum(axis=1)


class BandBackground:
    """Recent band levels (silent frames never enter) and their per-band quantile."""

    def __init__(self, frames: int, bands: int, quantile: float) -> None:
        self._hist = np.zeros((frames, bands), np.float32)
        self._quantile = quantile
        self.count = 0  # rows written (write index = count % len)

    def reset(self) -> None:
        self.count = 0

    def level(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-band background: (high level = the quantile, spread = high - median) in dB.

        Call only when ``count`` > 0. The spread scales the excess, so a band that swings
        by 20 dB under speech needs a bigger jump than a band under steady noise.
        """
        n = min(self.count, self._hist.shape[0])
        k, m = round(self._quantile * (n - 1)), (n - 1) // 2
        part = np.partition(self._hist[:n], (m, k), axis=0)
        return part[k], np.maximum(part[k] - part[m], _MIN_SPREAD_DB)

    def push(self, levels: np.ndarray) -> None:
        n = levels.shape[0]
        if n == 0:
            return
        idx = (self.count + np.arange(n)) % self._hist.shape[0]
        self._hist[idx] = levels
        self.count += n


def excess(levels: np.ndarray, high: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Mean over bands of how far each band is above its background's high level, in
    units of that band's spread (>= 0, each band capped at 3)."""
    return np.clip((levels - high) / spread, 0.0, _CAP_Z).mean(axis=-1)


def lift_db(levels: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Power above each band's background high level, summed over bands, relative to the
    background's total power (dB of 1 + that ratio, >= 0).

    Why beside the mean z-score: a loud but narrow-band sound (a clink over speech) lifts
    few bands, so its mean z-score is small; its power over the background is not.
    """
    high_power = 10.0 ** (high.astype(np.float64) / 10.0)
    over = np.clip(10.0 ** (levels.astype(np.float64) / 10.0) - high_power, 0.0, None).sum(axis=-1)
    return 10.0 * np.log10(1.0 + over / high_power.sum())


def rise_db(levels: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Spectral flux in dB: mean positive change of each band over the louder of the two
    frames before it ([n + 2, bands] of history + levels -> [n]); a new hit over a
    decaying one rises in most bands at once, a fluctuating sound in few."""
    both = np.concatenate([previous, levels], axis=0)
    ref = np.maximum(both[1:-1], both[:-2])
    return np.clip(both[2:] - ref, 0.0, _CAP_DB).mean(axis=1)
