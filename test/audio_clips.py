"""The committed recordings under test/data/audio (licences in LICENSES.md), fed to the
event tracker in 512-sample chunks with nanosecond stamps, as the node feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avag_core.benchmarks.hearing_sets import RecordingSet
from avag_core.data.synth.backgrounds import place, reference_onset
from avag_core.events import AudioEventTracker, EventConfig, SoundEvent

AUDIO = Path(__file__).parent / "data" / "audio"
SR = 16000
T0_NS = 1_700_000_000 * 10**9
ACTIONS = ("chink", "stamp", "raze", "coins")
# what every detector must do runs with the default (learned) and flux, with the bounds set for flux
DETECTORS = pytest.mark.parametrize("cfg", [EventConfig(detector="learned"), EventConfig(detector="flux")],
                                    ids=["learned", "flux"])


def load(name: str) -> np.ndarray:
    x, rate = sf.read(AUDIO / f"{name}.flac", dtype="float32")
    assert rate == SR
    return x


def tracked(x: np.ndarray, cfg: EventConfig | None = None,
            t0_ns: int = T0_NS) -> tuple[list[SoundEvent], AudioEventTracker]:
    """The events of ``x`` and the tracker that heard them (its detector's counters)."""
    tracker = AudioEventTracker(cfg)
    events = []
    for i in range(0, x.size, 512):
        events += tracker.push(x[i:i + 512], t0_ns + i * 10**9 // SR, SR)
    return events + tracker.flush(), tracker


def events_of(x: np.ndarray, cfg: EventConfig | None = None, t0_ns: int = T0_NS) -> list[SoundEvent]:
    return tracked(x, cfg, t0_ns)[0]


def onsets_of(x: np.ndarray, cfg: EventConfig | None = None) -> list[float]:
    """Event onsets in seconds from the start of ``x``."""
    return [e.onset_time - T0_NS / 1e9 for e in events_of(x, cfg)]


def small_set(actions: tuple[str, ...] = ("chink", "coins", "raze", "stamp"),
              backgrounds: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> RecordingSet:
    """A hearing-benchmark recording set of committed clips, to stand in for ``heldout`` (a
    ``--recordings`` choice): its speech is espeak-ng's Danish voice reading the GPL-2."""
    return RecordingSet(name="heldout", actions=tuple(("test data", str(AUDIO / f"action_{n}.flac")) for n in actions),
                        backgrounds=backgrounds or {}, voices=("da",), text="/usr/share/common-licenses/GPL-2")


def hiss(seconds: float, seed: int | np.random.Generator) -> np.ndarray:
    """A quiet microphone's hiss at -60 dBFS (a Generator given as ``seed`` is drawn from)."""
    return (10 ** (-60 / 20) * np.random.default_rng(seed).standard_normal(round(seconds * SR))).astype(np.float32)


def popping_room(seed: int) -> tuple[np.ndarray, list[float]]:
    """30 s of a room that pops on its own: the chink's first 20 ms at random levels every
    0.3-1 s over a quiet hiss (a fire's pops are as short), and the coins twice (at 12 and
    22 s, 10 dB over the loudest pop). Returns the audio and the coins' onsets."""
    rng = np.random.default_rng(seed)
    x = hiss(30.0, rng)  # rng draws the pops next
    chink, coins = load("action_chink"), load("action_coins")
    pop = 0.3 * chink[: SR // 50] / np.abs(chink).max()
    for t in np.cumsum(rng.uniform(0.3, 1.0, 90)) + 1.0:
        if t < 28.0 and not any(-0.2 < t - c < 1.5 for c in (12.0, 22.0)):
            place(x, pop, int(t * SR), rng.uniform(0.3, 1.0))
    coins = 0.3 * 10 ** (10 / 20) * coins / np.abs(coins).max()
    for c in (12.0, 22.0):
        place(x, coins, int(c * SR), 1.0)
    return x, [c + reference_onset(coins, SR) for c in (12.0, 22.0)]
