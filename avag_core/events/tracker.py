"""Ring buffer + detector in one object: what a node's audio callback needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avag_core.events.config import EventConfig
from avag_core.events.detector import SoundEvent, SoundEventDetector
from avag_core.events.ring_buffer import AudioRingBuffer, PushResult


@dataclass
class EventAudio:
    """An event and its 16 kHz mono audio (zeros where the stream had a gap)."""

    event: SoundEvent
    samples: np.ndarray
    sample_rate: int


class AudioEventTracker:
    """Push raw chunks (any rate, any channel count, faulty stamps); get finished events.

    The buffer repairs the timeline (see ring_buffer), the detector sees only clean
    contiguous 16 kHz audio; a reset of the buffer (time jumped back) resets the detector.
    A stamp that would clear the history (or jump past all of it) first ends the event in
    progress, and that event's audio is kept, so ``audio_for`` still returns it.
    ``last_push.issues`` names every input problem of the last chunk (refused or repaired).
    """

    def __init__(self, config: EventConfig | None = None) -> None:
        self.config = (config or EventConfig()).validate()
        self.buffer = AudioRingBuffer(self.config)
        self.detector = SoundEventDetector(self.config)
        self.last_push: PushResult | None = None
        self._rng = np.random.default_rng(0)  # gap filler: deterministic replays
        self._kept: dict[SoundEvent, EventAudio] = {}  # audio of events ended by a timeline break

    def push(self, samples: np.ndarray, stamp: float | int, sample_rate: int | None = None) -> list[SoundEvent]:
        events: list[SoundEvent] = []
        if self.buffer.breaks_timeline(stamp):
            for ev in self.detector.flush():  # ends cleanly while its audio is still held
                self._keep(self.audio_for(ev))
                events.append(ev)
        res = self.buffer.push(samples, stamp, sample_rate)
        self.last_push = res
        if res.reset:
            events.extend(self.detector.flush())
            self.detector.reset()
        if res.samples.size:
            expected = self.detector.stream_time
            if res.gap and expected is not None:
                # A short dropout (lost packet, dropped NaN chunk) is silence inside the
                # sound, not its end: bridge it so one action stays one event.
                gap_s = res.t0 - expected
                if 0.0 < gap_s <= self.config.release_s:
                    # filled with noise at the floor: digital zeros would look like a
                    # spectral jump (a false onset) when the real audio resumes
                    level = 10.0 ** (self.detector.noise_floor_db() / 20.0)
                    n = round(gap_s * self.buffer.sample_rate)
                    filler = (self._rng.standard_normal(n) * level).astype(np.float32)
                    events.extend(self.detector.process(filler, expected))
            events.extend(self.detector.process(res.samples, res.t0))
        return events

    def flush(self) -> list[SoundEvent]:
        return self.detector.flush()

    def _keep(self, audio: EventAudio) -> None:
        self._kept[audio.event] = audio
        while len(self._kept) > 4:
            self._kept.pop(next(iter(self._kept)))

    def audio_for(self, event: SoundEvent) -> EventAudio:
        """The event's samples from the buffer, zero-padded to its exact length."""
        if event in self._kept:
            return self._kept[event]
        x, _ = self.buffer.extract(event.start_time, event.end_time, pad=True)
        return EventAudio(event, x, self.buffer.sample_rate)
