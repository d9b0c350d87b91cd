"""Distractor sounds: loud events that are *not* an action on an object.

Why: an audio-visual segmenter paints a mask for any sound it is given (a cough, a
door slam next door, music). The action recogniser (``avag_core.hearing``) learns to
reject such events, so it needs a family of them that is as varied as the actions:

- generated (no files needed): clapping, footsteps, coughs, alarms/beeps, distant
  impacts (low-passed, reverberant thuds), a synth melody, stationary noise, silence;
- real speech from espeak-ng (Debian package ``espeak-ng``, GPL-3+; the words are read
  from ``/usr/share/common-licenses/GPL-3``);
- real recordings that Debian packages install: music (``openclonk-data``, CC-BY-3.0 /
  CC0; ``lincity-ng-data``, GPL-2+), alert sounds (``sound-theme-freedesktop``,
  CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2+) and rain, traffic, machines and fire
  (``lincity-ng-data``). They are read where the packages put them; no clip is committed.

Every clip gets the same random peak level and noise floor as the action sounds
(``synth_action_sound``), so loudness and background never tell the two apart.

Hook for the scene generator: ``synth_distractor_sound(kind, rng, sample_rate)`` returns
one float32 mono clip; ``available_kinds()`` lists the kinds this machine can make.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avag_core.errors import AvagError

from .sounds import _add, _bandpass, _brown, _decay, _noise

Rng = np.random.Generator


# --- generated families ------------------------------------------------------------------
def clapping(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Hand claps: short broadband bursts (1-3 kHz body) at a steady clapping rate, or
    applause (many overlapping claps)."""
    out = np.zeros(n)
    applause = rng.random() < 0.3
    rate = rng.uniform(25, 60) if applause else rng.uniform(1.8, 4.5)
    t = rng.uniform(0.0, 0.15)
    while t * sr < n:
        m = int(0.06 * sr)
        centre = rng.uniform(900, 2500)
        clap = _bandpass(_noise(rng, m), sr, centre * 0.5, centre * 2.2) * _decay(m, sr, 0.008)
        _add(out, rng.uniform(0.5, 1.0) * clap, int(t * sr))
        t += rng.exponential(1.0 / rate) if applause else (1.0 / rate) * rng.uniform(0.9, 1.1)
    return out


def footsteps(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Walking: a heel thud and a toe scuff per step at 1.4-2.4 steps per second."""
    out = np.zeros(n)
    rate = rng.uniform(1.4, 2.4)
    hard = rng.random() < 0.5  # hard floor: more click; carpet: mostly thud
    t = rng.uniform(0.0, 0.3)
    while t * sr < n:
        m = int(0.2 * sr)
        thud = _bandpass(_noise(rng, m), sr, 40, rng.uniform(250, 600)) * _decay(m, sr, 0.03)
        scuff = _bandpass(_noise(rng, m), sr, 1500, 6000) * _decay(m, sr, 0.012)
        step = thud + (0.5 if hard else 0.1) * scuff
        _add(out, rng.uniform(0.6, 1.0) * step, int(t * sr))
        t += (1.0 / rate) * rng.uniform(0.92, 1.08)
    return out


def coughs(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Coughs: 1-3 bursts of breathy noise shaped by two vocal-tract formants."""
    out = np.zeros(n)
    t = rng.uniform(0.05, 0.3)
    for _ in range(int(rng.integers(1, 4))):
        m = int(rng.uniform(0.18, 0.4) * sr)
        if t * sr >= n:
            break
        f1, f2 = rng.uniform(400, 800), rng.uniform(1200, 2600)
        base = _noise(rng, m)
        voiced = _bandpass(base, sr, f1 * 0.7, f1 * 1.4) + 0.7 * _bandpass(base, sr, f2 * 0.8, f2 * 1.25)
        attack = np.minimum(1.0, np.arange(m) / (0.01 * sr))
        env = attack * _decay(m, sr, rng.uniform(0.05, 0.12))
        _add(out, rng.uniform(0.6, 1.0) * (voiced + 0.3 * base) * env, int(t * sr))
        t += m / sr + rng.uniform(0.1, 0.4)
    return out


def alarm(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Alarms and beeps: on/off tone patterns (sine or square), one or two pitches."""
    t = np.arange(n) / sr
    f_a, f_b = rng.uniform(600, 3200), rng.uniform(600, 3200)
    period = rng.uniform(0.15, 0.8)
    duty = rng.uniform(0.3, 0.7)
    phase = np.mod(t / period, 1.0)
    freq = np.where(np.mod(np.floor(t / period), 2) == 0, f_a, f_b if rng.random() < 0.5 else f_a)
    tone = np.sin(2 * np.pi * np.cumsum(freq) / sr)
    if rng.random() < 0.4:
        tone = np.sign(tone) * 0.6
    gate = (phase < duty).astype(float)
    ramp = int(0.004 * sr)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")  # no clicks at the edges
    return tone * gate


def distant_impact(rng: Rng, sr: int, n: int) -> np.ndarray:
    """A door slam or a drop in another room: a low-passed thud with a long reverb tail."""
    out = np.zeros(n)
    t0 = rng.uniform(0.05, 0.4)
    m = int(0.3 * sr)
    thud = _bandpass(_noise(rng, m), sr, 30, rng.uniform(150, 400)) * _decay(m, sr, 0.04)
    rlen = int(rng.uniform(0.4, 1.0) * sr)
    tail = _bandpass(_noise(rng, rlen), sr, 40, 600) * _decay(rlen, sr, rng.uniform(0.12, 0.35))
    wet = np.convolve(thud, tail)[: m + rlen]
    wet = wet / (np.abs(wet).max() + 1e-9) * rng.uniform(0.3, 0.8)
    wet[:m] += thud / (np.abs(thud).max() + 1e-9)
    _add(out, wet, int(t0 * sr))
    return out


def melody(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Music-like: a random tune of harmonic notes over a soft chord (no files needed)."""
    out = np.zeros(n)
    base = rng.uniform(160, 440)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    note_s = rng.uniform(0.12, 0.45)
    t = 0.0
    while t * sr < n:
        f = base * 2 ** (scale[int(rng.integers(len(scale)))] / 12)
        m = int(note_s * sr)
        tt = np.arange(m) / sr
        note = sum(np.sin(2 * np.pi * f * k * tt) / k for k in (1, 2, 3))
        env = np.minimum(1.0, tt / 0.01) * _decay(m, sr, note_s * 0.6)
        _add(out, note * env, int(t * sr))
        t += note_s
    tt = np.arange(n) / sr
    chord = sum(np.sin(2 * np.pi * base * r * tt) for r in (0.5, 0.75, 1.0)) * 0.15
    return out + chord


def noise(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Stationary noise: white, pink-ish (brown + white) or a fan-like band."""
    kind = int(rng.integers(3))
    if kind == 0:
        return _noise(rng, n)
    if kind == 1:
        return _brown(rng, n) + 0.1 * _noise(rng, n)
    lo = rng.uniform(50, 400)
    return _bandpass(_noise(rng, n), sr, lo, lo * rng.uniform(2, 8))


def silence(rng: Rng, sr: int, n: int) -> np.ndarray:
    """Digital zero or a faint hiss; ``synth_distractor_sound`` keeps it quiet."""
    return np.zeros(n) if rng.random() < 0.5 else _noise(rng, n) * 1e-3


GENERATED: dict[str, Callable[[Rng, int, int], np.ndarray]] = {
    "clapping": clapping,
    "footsteps": footsteps,
    "cough": coughs,
    "alarm": alarm,
    "distant_impact": distant_impact,
    "melody": melody,
    "noise": noise,
    "silence": silence,
}

# --- real recordings from Debian packages ------------------------------------------------
_FD = "/usr/share/sounds/freedesktop/stereo/"
_OC = "/usr/share/games/openclonk/Music.ocg/"
_LM = "/usr/share/games/lincity-ng/music/default/"
_LC = "/usr/share/games/lincity-ng/sounds/"
# kind -> (Debian package(s), licence, files). Physical-action clips (shutter, trash) are
# deliberately absent: those are actions, not distractors.
RECORDINGS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "music": ("openclonk-data, lincity-ng-data", "CC-BY-3.0 or CC0 (openclonk), GPL-2+ (lincity-ng)", (
        _OC + "Cavern.ogg", _OC + "Motorway.ogg", _OC + "UrbanBolero.ogg", _OC + "IslandDreams.ogg",
        _OC + "Offshore.ogg", _LM + "01 - pronobozo - lincity.ogg",
        _LM + "03 - Robert van Herk - Architectural Contemplations.ogg")),
    "alert": ("sound-theme-freedesktop", "CC-BY-3.0, CC-BY-SA-3.0, GPL-2+ (per file)", tuple(
        _FD + f for f in ("alarm-clock-elapsed.oga", "bell.oga", "complete.oga", "dialog-error.oga",
                          "dialog-information.oga", "dialog-warning.oga", "message-new-instant.oga",
                          "message.oga", "phone-incoming-call.oga", "phone-outgoing-busy.oga",
                          "phone-outgoing-calling.oga", "service-login.oga", "service-logout.oga",
                          "suspend-error.oga", "window-attention.oga", "window-question.oga"))),
    "ambience": ("lincity-ng-data", "GPL-2+", tuple(_LC + f for f in (
        "Water1.wav", "Water2.wav", "TraficHigh1.wav", "TraficLow1.wav", "IndustryHigh1.wav",
        "Mill1.wav", "Fire1.wav", "Fire2.wav"))),
}
SPEECH_VOICES = ("en-us", "en+f3", "en-gb-scotland", "de", "fr+f2", "es+m3", "en+m7", "it")
_SPEECH_TEXT = Path("/usr/share/common-licenses/GPL-3")

DISTRACTOR_KINDS: tuple[str, ...] = (*GENERATED, "speech", *RECORDINGS)


def speech_available() -> str | None:
    """None when espeak-ng can speak here, else the one-line reason."""
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (apt-get install espeak-ng)"
    if not _SPEECH_TEXT.is_file():
        return f"{_SPEECH_TEXT} is missing (package base-files)"
    return None


def recording_files(kind: str) -> list[str]:
    """The files of a recording kind that this machine has."""
    return [p for p in RECORDINGS[kind][2] if Path(p).is_file()]


def available_kinds() -> tuple[str, ...]:
    """Kinds this machine can make: generated always, speech and recordings if installed."""
    kinds = list(GENERATED)
    if speech_available() is None:
        kinds.append("speech")
    kinds += [k for k in RECORDINGS if recording_files(k)]
    return tuple(kinds)


def _excerpt(path: str, rng: Rng, sr: int, n: int) -> np.ndarray:
    """A random ``n``-sample excerpt at ``sr`` read straight from the file: decoding and
    resampling a whole piece of music for a 2 s clip would take tens of seconds."""
    import soundfile as sf

    with sf.SoundFile(path) as fh:
        rate, total = fh.samplerate, fh.frames
        want = int(np.ceil(n * rate / sr)) + 64
        if total > want:
            fh.seek(int(rng.integers(0, total - want + 1)))
        data = fh.read(min(want, total), dtype="float32", always_2d=True).mean(axis=1)
    return _fit(_resample(data, rate, sr), rng, n)


def _speech(rng: Rng, sr: int, n: int) -> np.ndarray:
    reason = speech_available()
    if reason:
        raise AvagError(f"distractor 'speech' unavailable: {reason}")
    import soundfile as sf

    words = _speech_words()
    start = int(rng.integers(0, len(words) - 40))
    text = " ".join(words[start : start + int(rng.integers(6, 20))])
    cmd = ["espeak-ng", "--stdout", "-v", SPEECH_VOICES[int(rng.integers(len(SPEECH_VOICES)))],
           "-s", str(int(rng.integers(130, 200))), "-p", str(int(rng.integers(20, 80))), text]
    wav = subprocess.run(cmd, check=True, capture_output=True, timeout=30).stdout
    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return _fit(_resample(data, rate, sr), rng, n)


@functools.lru_cache(maxsize=1)
def _speech_words() -> list[str]:
    return _SPEECH_TEXT.read_text().split()


def _resample(x: np.ndarray, rate: int, sr: int) -> np.ndarray:
    if rate == sr:
        return x.astype(np.float32)
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(x.astype(np.float32)), rate, sr).numpy()


def _fit(x: np.ndarray, rng: Rng, n: int) -> np.ndarray:
    """A random ``n``-sample excerpt of ``x`` (zero-padded when shorter)."""
    if x.size >= n:
        start = int(rng.integers(0, x.size - n + 1))
        return x[start : start + n].astype(np.float64)
    out = np.zeros(n)
    out[: x.size] = x
    return out


def _real(kind: str, rng: Rng, sr: int, n: int) -> np.ndarray:
    files = recording_files(kind)
    if not files:
        pkg = RECORDINGS[kind][0]
        raise AvagError(f"distractor {kind!r} unavailable: install the Debian package(s) {pkg}")
    return _excerpt(files[int(rng.integers(len(files)))], rng, sr, n)


def synth_distractor_sound(
    kind: str, rng: Rng, sample_rate: int = 16000, duration: float | None = None
) -> np.ndarray:
    """One random distractor clip of ``kind`` as float32 mono in [-1, 1].

    Duration (default random 0.8-2.6 s), noise floor (SNR 12-35 dB) and peak gain
    (-18 to -3 dBFS; silence far below) follow ``synth_action_sound``.
    """
    if kind not in DISTRACTOR_KINDS:
        raise ValueError(f"unknown distractor {kind!r}; known: {', '.join(DISTRACTOR_KINDS)}")
    if duration is None:
        duration = float(rng.uniform(0.8, 2.6))
    n = max(int(duration * sample_rate), 16)
    if kind in GENERATED:
        sig = GENERATED[kind](rng, sample_rate, n)
    elif kind == "speech":
        sig = _speech(rng, sample_rate, n)
    else:
        sig = _real(kind, rng, sample_rate, n)
    if kind == "silence":
        return (sig * rng.uniform(0.0, 1.0)).astype(np.float32)
    sig = sig / (np.abs(sig).max() + 1e-9)
    floor = _bandpass(_noise(rng, n), sample_rate, 50, rng.uniform(3000, sample_rate / 2))
    floor /= np.sqrt(np.mean(floor**2)) + 1e-9
    sig_rms = np.sqrt(np.mean(sig**2)) + 1e-9
    sig = sig + floor * sig_rms * 10 ** (-rng.uniform(12, 35) / 20)
    peak = 10 ** (rng.uniform(-18, -3) / 20)
    return (sig / (np.abs(sig).max() + 1e-9) * peak).astype(np.float32)


def distractor_set(
    n_per_kind: int, seed: int, sample_rate: int = 16000, kinds: tuple[str, ...] | None = None
) -> list[tuple[str, np.ndarray]]:
    """``n_per_kind`` clips of every kind (default: all available), reproducible per seed."""
    kinds = available_kinds() if kinds is None else kinds
    out = []
    for k_id, kind in enumerate(DISTRACTOR_KINDS):
        if kind not in kinds:
            continue
        for i in range(n_per_kind):
            rng = np.random.default_rng([seed, k_id, i])
            out.append((kind, synth_distractor_sound(kind, rng, sample_rate)))
    return out
