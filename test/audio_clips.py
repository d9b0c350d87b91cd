"""The committed recordings under test/data/audio (licences in LICENSES.md), fed to the
event tracker in 512-sample chunks with nanosecond stamps, as the node feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avag_core.benchmarks.hearing_sets import RecordingSet
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


def events_of(x: np.ndarray, cfg: EventConfig | None = None, t0_ns: int = T0_NS) -> list[SoundEvent]:
    tracker = AudioEventTracker(cfg)
    events = []
    for i in range(0, x.size, 512):
        events += tracker.push(x[i:i + 512], t0_ns + i * 10**9 // SR, SR)
    return events + tracker.flush()


def onsets_of(x: np.ndarray, cfg: EventConfig | None = None) -> list[float]:
    """Event onsets in seconds from the start of ``x``."""
    return [e.onset_time - T0_NS / 1e9 for e in events_of(x, cfg)]


def small_set(actions: tuple[str, ...] = ("chink", "coins", "raze", "stamp"),
              backgrounds: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> RecordingSet:
    """A hearing-benchmark recording set of committed clips, to stand in for ``heldout`` (a
    ``--recordings`` choice): its speech is espeak-ng's Danish voice reading the GPL-2."""
    return RecordingSet(name="heldout", actions=tuple(("test data", str(AUDIO / f"action_{n}.flac")) for n in actions),
                        backgrounds=backgrounds or {}, voices=("da",), text="/usr/share/common-licenses/GPL-2")
