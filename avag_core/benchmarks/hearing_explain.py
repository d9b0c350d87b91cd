"""Why the learned detector missed an action or started a false event, from its own view of
the frames (``SoundEventDetector.trace``): ``hearing_bench --explain``.

Why: each question about what is left (was the action scored under ``learned_on``? was
another event still going on? did the model hear the action go on? do the members agree?)
was answered with a throwaway script, and a figure from a throwaway script cannot be
repeated. A miss gets the first reason that holds:

- ``matched elsewhere``: a detection lies in its match window but went to another action;
- ``inside an earlier event``: an event that started before the window was still sounding;
- ``onset under learned_on``: the model's onset probability stayed under ``learned_on`` in
  the window;
- ``taken by a later onset``: an event started in the window, and a stronger onset sooner than
  ``learned_gap_s`` after it became that event's onset, past the window;
- ``event too short``: an event started in the window and none was kept: the model did not
  hear the sound go on (its "sounding" output under ``learned_keep``), so the event was
  shorter than ``min_event_s`` (or, while the room popped on its own, ``busy_min_event_s``);
- ``onset heard, none started``: it reached ``learned_on`` but no event started in the
  window: the onset came within ``learned_gap_s`` of the last, or was no stronger than the
  onset of the event in progress.

A false event gets its onset probability, how many of the next ``SOUNDING_S`` of frames
the model heard sounding (at ``learned_keep``), how many members reached ``learned_on``, and
its length (onset to the last frame heard sounding). How many false events and how many
matched ones were shorter than ``SHORT_EVENT_S`` shows what the detector's ``room_pops``
rule can tell apart (run with ``--set busy_short_events=0`` to see the events it drops).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avag_core.events import EventConfig, SoundEvent
from avag_core.events.detector import SHORT_EVENT_S

MISS_REASONS = ("matched elsewhere", "inside an earlier event", "onset under learned_on", "taken by a later onset",
                "event too short", "onset heard, none started")
SOUNDING_S = 0.3  # a false event's "sounding frames" are counted over this much after its onset
_NEAR_S = 0.05  # a false event's own onset frame: the highest probability this close to its onset


@dataclass(frozen=True)
class Miss:
    """An action no detection was matched to, with the model's highest probabilities in its
    match window and the members at ``learned_on`` on that window's highest onset frame."""

    onset_s: float
    reason: str
    onset_p: float
    sounding_p: float
    members_on: int


@dataclass(frozen=True)
class FalseEvent:
    """A detection matched to no action."""

    onset_s: float
    onset_p: float
    sounding_frames: int
    members_on: int
    length_s: float


def _window(times: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.flatnonzero((times >= lo) & (times <= hi))


def _top(trace: np.ndarray, frames: np.ndarray) -> tuple[float, int]:
    """(onset probability, members at learned_on) of the frame with the highest onset
    probability among ``frames`` ((0, 0) for none)."""
    if not frames.size:
        return 0.0, 0
    k = int(frames[np.argmax(trace[frames, 1])])
    return round(float(trace[k, 1]), 3), int(trace[k, 3])


def length_s(event: SoundEvent, cfg: EventConfig) -> float:
    """An event's length as the detector judged it: onset to its last frame heard sounding."""
    return event.end_time - (0.0 if event.truncated else cfg.post_roll_s) - event.onset_time


def explain(events: list[SoundEvent], onsets: list[float], matched: list[int | None], trace: np.ndarray,
            cfg: EventConfig, window: tuple[float, float]) -> tuple[list[Miss], list[FalseEvent]]:
    """Each miss and each false event of one mix. ``matched``: per onset, the index of its
    detection in ``events`` (``hearing_bench.match``); ``trace`` [frames, 5]: the detector's
    trace joined (onset time, onset p, sounding p, members at ``learned_on``, 1 where an
    event started), on the events' clock; ``window``: the match window (s before, s after an onset)."""
    before, after = window
    t = trace[:, 0]
    hit = {j for j in matched if j is not None}
    misses = []
    for ref, j in zip(onsets, matched, strict=True):
        if j is not None:
            continue
        w = _window(t, ref - before, ref + after)
        onset_p, members_on = _top(trace, w)
        if any(ref - before <= e.onset_time <= ref + after for e in events):
            reason = MISS_REASONS[0]
        elif any(e.onset_time < ref - before and ref <= e.end_time - (0.0 if e.truncated else cfg.post_roll_s)
                 for e in events):
            reason = MISS_REASONS[1]
        elif onset_p < cfg.learned_on:
            reason = MISS_REASONS[2]
        else:
            starts = t[w[trace[w, 4] > 0]]
            if not starts.size:
                reason = MISS_REASONS[5]
            # the event kept from the last start (its audio begins pre_roll_s before it) has its onset later
            elif any(e.start_time <= starts.max() - cfg.pre_roll_s + 1e-6 and e.onset_time > ref + after
                     for e in events):
                reason = MISS_REASONS[3]
            else:
                reason = MISS_REASONS[4]
        misses.append(Miss(round(ref, 3), reason, onset_p, round(float(trace[w, 2].max()), 3) if w.size else 0.0,
                           members_on))
    falses = []
    for j, e in enumerate(events):
        if j in hit:
            continue
        onset_p, members_on = _top(trace, _window(t, e.onset_time - _NEAR_S, e.onset_time + _NEAR_S))
        span = _window(t, e.onset_time, e.onset_time + SOUNDING_S)
        falses.append(FalseEvent(round(e.onset_time, 3), onset_p, int((trace[span, 2] >= cfg.learned_keep).sum()),
                                 members_on, round(length_s(e, cfg), 3)))
    return misses, falses


def summary(misses: list[Miss], falses: list[FalseEvent], members: int, hit_lengths: list[float]) -> dict[str, Any]:
    """Counts of misses per reason; false events' median onset probability and sounding
    frames, and how many had every member at ``learned_on``; how many false events and
    matched events (``hit_lengths``) were shorter than ``SHORT_EVENT_S``."""
    return {
        "misses": {r: sum(m.reason == r for m in misses) for r in MISS_REASONS},
        "false_events": len(falses),
        "false_onset_p_median": float(np.median([f.onset_p for f in falses])) if falses else None,
        "false_sounding_frames_median": float(np.median([f.sounding_frames for f in falses])) if falses else None,
        "false_all_members_on": sum(f.members_on == members for f in falses),
        "false_short": sum(f.length_s < SHORT_EVENT_S for f in falses),
        "hits": len(hit_lengths),
        "hits_short": sum(n < SHORT_EVENT_S for n in hit_lengths),
    }


def line(s: dict[str, Any], members: int) -> str:
    """One printed line of a ``summary``: misses per reason, then what the false events
    looked like."""
    out = "misses: " + (", ".join(f"{n} {r}" for r, n in s["misses"].items() if n) or "none")
    if s["false_events"]:
        out += (f"; {s['false_events']} false: onset p {s['false_onset_p_median']:.2f}, sounding "
                f"{s['false_sounding_frames_median']:.0f} frames (medians), all {members} members on: "
                f"{s['false_all_members_on']}")
    if s["false_events"] or s["hits"]:
        out += (f"; under {SHORT_EVENT_S:g} s: {s['false_short']} of {s['false_events']} false, "
                f"{s['hits_short']} of {s['hits']} matched")
    return out


def as_json(misses: list[Miss], falses: list[FalseEvent], members: int, hit_lengths: list[float]) -> dict[str, Any]:
    """``summary``, its ``line`` and every miss and false event."""
    s = summary(misses, falses, members, hit_lengths)
    return {**s, "line": line(s, members), "miss_list": [asdict(m) for m in misses],
            "false_list": [asdict(f) for f in falses]}
