"""Recent camera frames keyed by header stamp, to pick the frame nearest a sound onset.

The sound event is known only after it ends, but the model must see the scene at the
onset; keeping the last second of frames (not a backlog to process) bridges that.
"""

from __future__ import annotations

import bisect
import numbers
from typing import Any

from avag_core.events.timebase import to_seconds

_NS = 1_000_000_000


def _to_ns(stamp: float | int) -> int:
    if isinstance(stamp, numbers.Integral) and not isinstance(stamp, bool):
        return int(stamp)
    return round(to_seconds(stamp) * _NS)


class FrameCache:
    """Bounded, stamp-sorted store of arbitrary frame objects (images, messages, tuples)."""

    def __init__(self, max_frames: int = 30, backjump_reset_s: float = 0.5) -> None:
        if max_frames < 1:
            raise ValueError(f"FrameCache max_frames must be >= 1, got {max_frames}")
        self.max_frames = int(max_frames)
        self.backjump_reset_ns = int(backjump_reset_s * _NS)
        self._stamps: list[int] = []
        self._frames: list[Any] = []
        self.duplicates = 0
        self.time_resets = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._stamps)

    def clear(self) -> None:
        self._stamps.clear()
        self._frames.clear()

    def add(self, stamp: float | int, frame: Any) -> bool:
        """Store ``frame``; False (and counted) when a frame with this stamp is already held.

        A stamp more than ``backjump_reset_s`` older than the newest one means time
        restarted (bag loop): the cache is cleared first. Stamps are float seconds or int ns.
        """
        ns = _to_ns(stamp)
        if self._stamps and ns < self._stamps[-1] - self.backjump_reset_ns:
            self.time_resets += 1
            self.clear()
        i = bisect.bisect_left(self._stamps, ns)
        if i < len(self._stamps) and self._stamps[i] == ns:
            self.duplicates += 1
            return False
        self._stamps.insert(i, ns)
        self._frames.insert(i, frame)
        while len(self._stamps) > self.max_frames:  # drop the oldest
            self._stamps.pop(0)
            self._frames.pop(0)
            self.evicted += 1
        return True

    def nearest(self, t: float | int, max_gap_s: float | None = None) -> tuple[int, Any] | None:
        """(stamp_ns, frame) closest to ``t``, or None if empty or further than ``max_gap_s``."""
        if not self._stamps:
            return None
        ns = _to_ns(t)
        i = bisect.bisect_left(self._stamps, ns)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self._stamps)]
        j = min(candidates, key=lambda k: abs(self._stamps[k] - ns))
        if max_gap_s is not None and abs(self._stamps[j] - ns) > max_gap_s * _NS:
            return None
        return self._stamps[j], self._frames[j]

    def latest(self) -> tuple[int, Any] | None:
        return (self._stamps[-1], self._frames[-1]) if self._stamps else None
