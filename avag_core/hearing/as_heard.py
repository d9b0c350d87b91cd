"""A clip as the node hears it: cut out of a live stream, not handed over clean.

Why: the node's event audio starts ``pre_roll_s`` before the detected onset, ends after
``release_s`` of background, sits on the room's noise floor, often over speech or music,
and at whatever level the microphone gives. A head trained on clean, tightly framed clips
learns the framing (its band statistics see the silence fraction) and rejects real
actions cut from a stream. Training on both views, with the same random framing for
action and distractor clips, leaves the sound itself as the only thing that tells them
apart.
"""

from __future__ import annotations

import numpy as np

from avag_core.data.synth.backgrounds import background_power, gain_for_snr

Rng = np.random.Generator

PRE_S = (0.0, 0.3)  # background before the sound (detector pre-roll + onset jitter)
TAIL_S = (0.05, 1.2)  # background after it (release time + post-roll)
PEAK_DB = (-30.0, -1.0)  # the sound's peak level (microphone gain, distance)
FLOOR_DB = (25.0, 65.0)  # noise floor this far below the sound's RMS
BACKGROUND_SNR_DB = (10.0, 35.0)  # speech / music / ambience under the sound
BACKGROUND_P = 0.75  # share of views that get a background recording
CUT_P = 0.3  # share of views cut short (the node's max_event_s, a truncated event)
BACKGROUND_KINDS = ("speech", "music", "ambience", "noise")
# everything above: embeddings cached by ``avag heard train`` are keyed by it
RECIPE = (PRE_S, TAIL_S, PEAK_DB, FLOOR_DB, BACKGROUND_SNR_DB, BACKGROUND_P, CUT_P, BACKGROUND_KINDS)


def background_kinds() -> tuple[str, ...]:
    """The background kinds this machine can make (distractor generators)."""
    from avag_core.data.synth.distractors import available_kinds

    have = set(available_kinds())
    return tuple(k for k in BACKGROUND_KINDS if k in have)


def as_heard(clip: np.ndarray, rng: Rng, sample_rate: int = 16000,
             kinds: tuple[str, ...] | None = None) -> np.ndarray:
    """``clip`` (float mono) re-framed, re-levelled and mixed as a stream event would be."""
    from avag_core.data.synth.distractors import synth_distractor_sound
    from avag_core.data.synth.sounds import _noise

    x = np.asarray(clip, np.float64)
    if rng.random() < CUT_P and x.size > sample_rate // 2:
        x = x[: int(x.size * rng.uniform(0.5, 1.0))]
    x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(*PEAK_DB) / 20)
    pre = int(rng.uniform(*PRE_S) * sample_rate)
    tail = int(rng.uniform(*TAIL_S) * sample_rate)
    out = np.zeros(pre + x.size + tail)
    out[pre : pre + x.size] = x
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    floor = _noise(rng, out.size)
    floor /= np.sqrt(np.mean(floor**2)) + 1e-12
    out += floor * rms * 10 ** (-rng.uniform(*FLOOR_DB) / 20)
    kinds = background_kinds() if kinds is None else kinds
    if kinds and rng.random() < BACKGROUND_P:
        kind = kinds[int(rng.integers(len(kinds)))]
        bg = synth_distractor_sound(kind, rng, sample_rate, duration=out.size / sample_rate)[: out.size]
        power = background_power(bg)
        if power > 0.0:
            gain = gain_for_snr(x.astype(np.float32), power, rng.uniform(*BACKGROUND_SNR_DB), sample_rate)
            out[: bg.size] += bg / gain
    return np.clip(out, -1.0, 1.0).astype(np.float32)
