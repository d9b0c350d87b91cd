"""Procedural action sounds: one family per affordance.

Each family has a recognisable time-frequency signature (impacts, scraping, ratchet
clicks, button clicks, rolling rumble, creaks, bubbles, zips) while pitch, rhythm,
duration, noise floor and gain are random, so a model must learn the family and not
memorise a clip.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Rng = np.random.Generator


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Brick-wall FFT band-pass: cheap and dependency-free; fine for noise shaping."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.shape[-1], 1.0 / sr)
    spec[(freqs < lo) | (freqs > min(hi, sr / 2))] = 0
    return np.fft.irfft(spec, n=x.shape[-1])


def _noise(rng: Rng, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _brown(rng: Rng, n: int) -> np.ndarray:
    x = np.cumsum(rng.standard_normal(n))
    x -= np.linspace(x[0], x[-1], n)
    return x / (np.abs(x).max() + 1e-9)


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau * sr))


def _add(out: np.ndarray, sig: np.ndarray, start: int) -> None:
    if start >= out.shape[0]:
        return
    end = min(out.shape[0], start + sig.shape[0])
    out[start:end] += sig[: end - start]


def _click(rng: Rng, sr: int, freq: float, tau: float) -> np.ndarray:
    """A short transient: decaying noise plus a decaying resonance."""
    n = max(8, int(6 * tau * sr))
    t = np.arange(n) / sr
    env = _decay(n, sr, tau)
    tone = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return env * (0.6 * _noise(rng, n) + tone)


def impacts(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Hitting: a few heavy thumps with a low body resonance and a metallic ring."""
    out = np.zeros(n)
    f0 = rng.uniform(70, 260)
    ring = rng.uniform(900, 3000)
    t0 = rng.uniform(0.02, 0.2)
    gap = rng.uniform(0.25, 0.6)
    while t0 * sr < n - 0.05 * sr:
        m = int(0.45 * sr)
        t = np.arange(m) / sr
        body = np.sin(2 * np.pi * f0 * t * (1 + 0.3 * np.exp(-t / 0.02))) * _decay(m, sr, 0.09)
        hit = _bandpass(_noise(rng, m), sr, 60, 2500) * _decay(m, sr, 0.015)
        metal = np.sin(2 * np.pi * ring * t) * _decay(m, sr, 0.05) * rng.uniform(0.1, 0.5)
        _add(out, rng.uniform(0.6, 1.0) * (body + 1.5 * hit + metal), int(t0 * sr))
        t0 += gap * rng.uniform(0.8, 1.25)
    return out


def scraping(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Cutting: strokes of band-limited noise whose centre frequency sweeps."""
    out = np.zeros(n)
    t0 = rng.uniform(0.0, 0.15)
    while t0 * sr < n - 0.1 * sr:
        m = int(rng.uniform(0.15, 0.45) * sr)
        centre = rng.uniform(1500, 4500)
        sweep = np.linspace(centre, centre * rng.uniform(0.5, 1.6), m)
        base = _noise(rng, m)
        lo = _bandpass(base, sr, centre * 0.6, centre * 1.5)
        # Amplitude grain makes it sound like a blade dragging, not hiss.
        grain = 1 + 0.6 * np.sin(2 * np.pi * np.cumsum(sweep / 40) / sr)
        env = np.sin(np.linspace(0, np.pi, m)) ** 0.7
        _add(out, lo * grain * env, int(t0 * sr))
        t0 += m / sr + rng.uniform(0.05, 0.3)
    return out


def ratcheting(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Twisting: bursts of evenly spaced sharp clicks (a ratchet or a threaded cap)."""
    out = np.zeros(n)
    rate = rng.uniform(14, 35)
    freq = rng.uniform(2000, 5000)
    t0 = rng.uniform(0.0, 0.15)
    while t0 * sr < n - 0.1 * sr:
        burst = rng.uniform(0.3, 0.8)
        t = t0
        while t < t0 + burst and t * sr < n:
            _add(out, _click(rng, sr, freq * rng.uniform(0.9, 1.1), 0.003), int(t * sr))
            t += 1.0 / (rate * rng.uniform(0.9, 1.1))
        t0 += burst + rng.uniform(0.1, 0.35)
    return out


def clicking(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Pressing: isolated press/release click pairs, sometimes with an electronic beep."""
    out = np.zeros(n)
    freq = rng.uniform(900, 2800)
    beep = rng.random() < 0.4
    beep_f = rng.uniform(700, 2200)
    t0 = rng.uniform(0.05, 0.2)
    while t0 * sr < n - 0.15 * sr:
        down = _click(rng, sr, freq, 0.006) * 1.2
        up = _click(rng, sr, freq * 1.3, 0.004) * 0.7
        _add(out, down, int(t0 * sr))
        release = t0 + rng.uniform(0.06, 0.16)
        _add(out, up, int(release * sr))
        if beep:
            m = int(0.12 * sr)
            t = np.arange(m) / sr
            _add(out, 0.3 * np.sin(2 * np.pi * beep_f * t) * np.hanning(m), int(release * sr))
        t0 = release + rng.uniform(0.25, 0.6)
    return out


def rolling(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Rolling: continuous low rumble modulated by wheel rotation, with seam bumps."""
    rot = rng.uniform(2, 7)
    t = np.arange(n) / sr
    rumble = _bandpass(_brown(rng, n) + 0.05 * _noise(rng, n), sr, 40, rng.uniform(300, 700))
    rumble /= np.abs(rumble).max() + 1e-9
    out = rumble * (1 + 0.5 * np.sin(2 * np.pi * rot * t))
    bump_f = rng.uniform(150, 400)
    k = rng.uniform(0, 1.0 / rot)
    while k * sr < n:
        _add(out, 0.5 * _click(rng, sr, bump_f, 0.01), int(k * sr))
        k += 1.0 / rot
    ramp = min(n // 4, int(0.15 * sr))
    out[:ramp] *= np.linspace(0, 1, ramp)
    out[n - ramp :] *= np.linspace(1, 0, ramp)
    return out


def creaking(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Opening a lid or hinge: stick-slip creak with gliding pitch, then a pop."""
    out = np.zeros(n)
    t0 = rng.uniform(0.0, 0.2)
    while t0 * sr < n - 0.3 * sr:
        m = int(rng.uniform(0.3, 0.8) * sr)
        f_start, f_end = rng.uniform(150, 600), rng.uniform(150, 700)
        f = np.linspace(f_start, f_end, m) * (1 + 0.08 * _bandpass(_noise(rng, m), sr, 0, 30))
        phase = np.cumsum(f) / sr
        pulses = (np.mod(phase, 1.0) < 0.12).astype(float)  # harmonic-rich pulse train
        env = np.sin(np.linspace(0, np.pi, m)) * (0.7 + 0.3 * rng.random(m))
        creak = _bandpass(pulses - pulses.mean(), sr, 150, 5000) * env
        _add(out, creak, int(t0 * sr))
        pop_n = int(0.08 * sr)
        pop = _bandpass(_noise(rng, pop_n), sr, 100, 1500) * _decay(pop_n, sr, 0.012)
        _add(out, 2.0 * pop, int(t0 * sr) + m)
        t0 += m / sr + rng.uniform(0.2, 0.5)
    return out


def pouring(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Pouring liquid: a splashy noise bed with many rising-pitch bubbles."""
    out = 0.15 * _bandpass(_noise(rng, n), sr, 400, rng.uniform(2500, 4500))
    rate = rng.uniform(25, 70)
    lo_f, hi_f = rng.uniform(300, 700), rng.uniform(1200, 3000)
    count = rng.poisson(rate * n / sr)
    for start in rng.integers(0, n, size=count):
        m = int(rng.uniform(0.01, 0.035) * sr)
        t = np.arange(m) / sr
        f0 = rng.uniform(lo_f, hi_f)
        f = f0 * (1 + 3.0 * t / t[-1] * rng.uniform(0.1, 0.4))
        bubble = np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(m, sr, m / sr / 3)
        _add(out, rng.uniform(0.3, 1.0) * bubble, int(start))
    ramp = min(n // 4, int(0.1 * sr))
    out[:ramp] *= np.linspace(0, 1, ramp)
    out[n - ramp :] *= np.linspace(1, 0, ramp)
    return out


def zipping(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Zipping: fast strokes of dense tooth clicks, high-band, with a sweeping rate."""
    out = np.zeros(n)
    t0 = rng.uniform(0.0, 0.15)
    while t0 * sr < n - 0.2 * sr:
        m = rng.uniform(0.3, 0.8)
        r0, r1 = rng.uniform(60, 140), rng.uniform(140, 260)
        if rng.random() < 0.5:
            r0, r1 = r1, r0
        t = t0
        while t < t0 + m and t * sr < n:
            frac = (t - t0) / m
            tooth = _bandpass(_noise(rng, 64), sr, 2500, 7500) * _decay(64, sr, 0.0015)
            _add(out, tooth * (0.5 + np.sin(np.pi * frac)), int(t * sr))
            t += 1.0 / (r0 + (r1 - r0) * frac)
        t0 += m + rng.uniform(0.15, 0.4)
    return out


SOUND_FAMILIES: dict[str, Callable[[Rng, int, int], np.ndarray]] = {
    "hit": impacts,
    "cut": scraping,
    "twist": ratcheting,
    "press": clicking,
    "roll": rolling,
    "open": creaking,
    "pour": pouring,
    "zip": zipping,
}


def synth_action_sound(
    affordance: str,
    rng: Rng,
    sample_rate: int = 16000,
    duration: float | None = None,
) -> np.ndarray:
    """One random action sound of ``affordance`` as float32 mono in [-1, 1].

    Duration (default random 1.0-2.2 s), noise floor (SNR 12-35 dB) and peak gain
    (-18 to -3 dBFS) are random so loudness and background never give the class away.
    """
    try:
        family = SOUND_FAMILIES[affordance]
    except KeyError:
        raise ValueError(
            f"unknown affordance {affordance!r}; known: {', '.join(SOUND_FAMILIES)}"
        ) from None
    if duration is None:
        duration = float(rng.uniform(1.0, 2.2))
    n = max(int(duration * sample_rate), 16)
    sig = family(rng, sample_rate, n)
    sig = sig / (np.abs(sig).max() + 1e-9)
    floor = _bandpass(_noise(rng, n), sample_rate, 50, rng.uniform(3000, sample_rate / 2))
    floor /= np.sqrt(np.mean(floor**2)) + 1e-9
    snr_db = rng.uniform(12, 35)
    sig_rms = np.sqrt(np.mean(sig**2)) + 1e-9
    sig = sig + floor * sig_rms * 10 ** (-snr_db / 20)
    peak = 10 ** (rng.uniform(-18, -3) / 20)
    sig = sig / (np.abs(sig).max() + 1e-9) * peak
    return sig.astype(np.float32)
