"""Timestamped mono audio history with a linear timeline, robust to real stream faults.

Microphone drivers and bags deliver chunks with gaps (dropped packets), duplicated or
reordered stamps (multiple publishers, network reordering), stamps that jump backwards
(a bag restarting its loop), NaN/Inf samples (broken drivers) and rates other than 16 kHz.
The buffer converts everything to one linear 16 kHz mono timeline so that "the samples
between t0 and t1" has one answer, and counts every fault so a node can report it.

Timeline rules (times in float seconds; integer stamps are nanoseconds):
- a chunk whose stamp is within ``stamp_tolerance_s`` of where the previous chunk ended
  is contiguous (stamp jitter is ignored; sample counts define time);
- a later stamp is a gap: the gap is filled with zeros (bounded by the buffer size);
- a stamp inside the previous chunk drops the overlapping leading samples;
- the same stamp as the previous chunk is a duplicate: dropped;
- an earlier stamp is out of order (dropped) unless it is more than
  ``backjump_reset_s`` earlier, which means time restarted: the buffer is cleared.

Input bounds (each refused or repaired chunk names its reason in ``PushResult.issues``,
so a node can log it once per kind and count it; nothing is dropped silently and no
input can make the buffer allocate more than one chunk):
- sample rates outside [min_input_rate, max_input_rate]: refused (``rate_out_of_range``);
- more than ``max_channels`` channels: refused (``too_many_channels``);
- chunks longer than ``max_chunk_s``: refused (``chunk_too_long``);
- NaN/Inf samples: zeroed, only those samples (``nonfinite_samples``), or the chunk dropped;
- finite samples beyond +-``full_scale``: clipped (``clipped_samples``);
- stamps that jump forward by ``stamp_jump_s`` or more or back by ``backjump_reset_s``
  or more (``stamp_jump``), duplicates, out-of-order and overlapping stamps.

Digital silence is no fault, but it deafens: a muted microphone or a closed noise gate
sends samples under -100 dB of full scale. A stretch of it that reaches ``muted_after_s``
is reported once (``digital_silence``) and counted (``silent_periods``), and
``silent_for_s`` says how long the input has been silent up to now, so a node can show a
muted microphone instead of a quiet room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avag_core.events.config import EventConfig
from avag_core.events.resample import StreamingResampler
from avag_core.events.timebase import to_mono_float32, to_seconds

_DUPLICATE_EPS_S = 1e-6
DIGITAL_SILENCE = 1e-5  # |sample| / full_scale below this (-100 dB) is digital silence


@dataclass
class BufferStats:
    """Fault counters; they only grow (reset() of the buffer keeps them)."""

    chunks: int = 0  # chunks offered
    accepted: int = 0  # chunks (partly) written
    duplicates: int = 0
    out_of_order: int = 0
    overlaps: int = 0  # chunks whose start overlapped the previous one (trimmed)
    gaps: int = 0
    gap_seconds: float = 0.0
    time_resets: int = 0  # stamp jumped backwards -> history cleared
    stamp_jumps: int = 0  # forward jumps >= stamp_jump_s and backward jumps that cleared the history
    refused: int = 0  # chunks refused by the input bounds (rate, channels, length, shape, stamp)
    clipped_samples: int = 0
    nonfinite_chunks: int = 0
    nonfinite_samples: int = 0
    rate_changes: int = 0
    rate_rejected: int = 0  # chunks dropped by sample_rate_policy="drop"
    resampled_chunks: int = 0
    silent_periods: int = 0  # stretches of digital silence that reached muted_after_s

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class PushResult:
    """What one push did: the 16 kHz samples written (without gap zeros) and their start time."""

    status: str  # ok | duplicate | out_of_order | overlap_dropped | nonfinite_dropped | rate_dropped | empty
    #              | refused (see issues)
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    t0: float = 0.0  # time of samples[0] on the buffer timeline
    gap: bool = False  # zeros were inserted before these samples
    reset: bool = False  # the history was cleared before these samples
    issues: list[tuple[str, str]] = field(default_factory=list)  # (kind, one-line reason) refused or repaired


def check_chunk(
    samples: np.ndarray, stamp: float | int, sample_rate: float | None, cfg: EventConfig
) -> tuple[tuple[str, str], tuple[np.ndarray, int, float] | None]:
    """(("", ""), (float32 array, rate, t0)) within bounds, else ((kind, reason), None). The
    node's bounds on one chunk (rate, shape, channels, length), shared with ``avag bag audio``
    so a room file never holds a chunk the node would refuse."""
    try:
        t0 = to_seconds(stamp)
    except (TypeError, ValueError) as exc:
        return ("bad_stamp", f"chunk refused: {exc}"), None
    try:
        rate_f = float(cfg.sample_rate if sample_rate is None else sample_rate)
    except (TypeError, ValueError):
        return ("rate_out_of_range", f"chunk refused: sample rate {sample_rate!r} is not a number"), None
    if not cfg.min_input_rate <= rate_f <= cfg.max_input_rate:  # NaN fails too
        return ("rate_out_of_range", f"chunk refused: sample rate {sample_rate!r} Hz is outside "
                                     f"{cfg.min_input_rate}-{cfg.max_input_rate} Hz"), None
    rate = round(rate_f)
    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.dtype.kind not in "fiu":
        return ("bad_shape", f"chunk refused: audio must be numeric [n] or [channels, n], got "
                             f"shape {arr.shape} {arr.dtype}"), None
    if arr.ndim == 2 and arr.shape[0] > cfg.max_channels:
        return ("too_many_channels", f"chunk refused: {arr.shape[0]} channels > max_channels "
                                     f"{cfg.max_channels} (is it [n, channels]?)"), None
    if arr.shape[-1] > cfg.max_chunk_s * rate:
        return ("chunk_too_long", f"chunk refused: {arr.shape[-1]} samples at {rate} Hz = "
                                  f"{arr.shape[-1] / rate:.1f} s > max_chunk_s {cfg.max_chunk_s:g} s"), None
    return ("", ""), (arr.astype(np.float32, copy=False), rate, t0)


class AudioRingBuffer:
    """Fixed-size circular float32 history at ``config.sample_rate`` with a time axis."""

    def __init__(self, config: EventConfig | None = None) -> None:
        self.config = (config or EventConfig()).validate()
        self.sample_rate = int(self.config.sample_rate)
        self.capacity = round(self.config.buffer_s * self.sample_rate)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.stats = BufferStats()
        self._silent_run = 0  # samples of digital silence at the end of the input (kept by reset())
        self._resampler: StreamingResampler | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear the audio (counters are kept)."""
        self._total = 0  # absolute index of the next sample written
        self._anchor_t = 0.0  # time of absolute index _anchor_i
        self._anchor_i = 0
        self._started = False
        self._last_stamp = 0.0  # stamp of the last accepted chunk
        self._seg_t0 = 0.0  # input segment: stamp of its first chunk ...
        self._seg_in = 0  # ... and input samples accepted since (at _seg_rate)
        self._seg_rate = 0
        if self._resampler is not None:
            self._resampler.reset()

    @property
    def start_time(self) -> float:
        """Time of the oldest sample still held."""
        first = max(0, self._total - self.capacity)
        return self._time_of(first)

    @property
    def end_time(self) -> float:
        """Time just after the newest sample written."""
        return self._time_of(self._total)

    @property
    def silent_for_s(self) -> float:
        """How long the input has been digital silence up to its newest sample (0 if it is not)."""
        return self._silent_run / self.sample_rate

    def __len__(self) -> int:
        return min(self._total, self.capacity)

    def _time_of(self, index: int) -> float:
        return self._anchor_t + (index - self._anchor_i) / self.sample_rate

    def _index_of(self, t: float) -> int:
        return self._anchor_i + int(np.floor((t - self._anchor_t) * self.sample_rate + 0.5))

    # ------------------------------------------------------------------ writing
    def push(self, samples: np.ndarray, stamp: float | int, sample_rate: int | None = None) -> PushResult:
        """Append one chunk ([n] or [channels, n]) whose first sample was taken at ``stamp``."""
        cfg = self.config
        self.stats.chunks += 1
        issues: list[tuple[str, str]] = []
        refusal, checked = check_chunk(samples, stamp, sample_rate, cfg)
        if checked is None:
            self.stats.refused += 1
            return PushResult("refused", issues=[refusal])
        arr, rate, t0 = checked
        if arr.shape[-1] == 0:
            return PushResult("empty")
        if rate != self.sample_rate and cfg.sample_rate_policy == "drop":
            self.stats.rate_rejected += 1
            return PushResult("rate_dropped", issues=[(
                "rate_dropped", f"chunk at {rate} Hz dropped (sample_rate_policy=drop, expected {self.sample_rate} Hz)")])
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(arr.size - np.count_nonzero(finite))
            self.stats.nonfinite_chunks += 1
            self.stats.nonfinite_samples += bad
            if cfg.nonfinite == "drop":
                return PushResult("nonfinite_dropped", issues=[(
                    "nonfinite_chunk", f"chunk with {bad} NaN/Inf samples dropped (nonfinite=drop)")])
            arr = np.where(finite, arr, np.float32(0.0))
            issues.append(("nonfinite_samples", f"{bad} NaN/Inf samples set to 0"))
        x = to_mono_float32(arr)
        over = np.abs(x) > cfg.full_scale
        if over.any():
            n_over = int(np.count_nonzero(over))
            self.stats.clipped_samples += n_over
            issues.append(("clipped_samples", f"{n_over} samples beyond +-{cfg.full_scale:g} clipped "
                                              f"(peak {float(np.max(np.abs(x))):.3g})"))
            x = np.clip(x, -cfg.full_scale, cfg.full_scale)
        res = self._place(x, t0, rate, stamp, issues)
        if res.samples.size:
            issues.extend(self._track_silence(res.samples))
        res.issues = issues + [i for i in res.issues if i not in issues]
        return res

    def _track_silence(self, x: np.ndarray) -> list[tuple[str, str]]:
        """Follow the stretch of digital silence at the end of the input through ``x`` (16 kHz,
        as written; gap zeros are not input); name each stretch that reaches muted_after_s."""
        cfg = self.config
        loud = np.flatnonzero(np.abs(x) >= DIGITAL_SILENCE * cfg.full_scale)
        carried = self._silent_run
        # the silent runs of x, between loud samples; the first continues the carried run
        runs = np.diff(np.concatenate(([-1 - carried], loud, [x.size]))) - 1
        limit = cfg.muted_after_s * self.sample_rate
        reached = runs >= limit
        reached[0] &= carried < limit  # already reported
        self._silent_run = int(runs[-1])
        n = int(np.count_nonzero(reached))
        self.stats.silent_periods += n
        return [("digital_silence", f"the audio has been digital silence for {cfg.muted_after_s:g} s "
                                    "(muted microphone or closed noise gate?): nothing is heard until "
                                    "sound comes back")] if n else []

    def breaks_timeline(self, stamp: float | int) -> bool:
        """Would a chunk at ``stamp`` clear the history or jump past all of it? A tracker
        asks first, so the event in progress ends while its audio is still here."""
        if not self._started:
            return False
        try:
            t0 = to_seconds(stamp)
        except (TypeError, ValueError):
            return False
        expected = self._seg_t0 + self._seg_in / self._seg_rate
        back = t0 < self._last_stamp - self.config.backjump_reset_s
        return back or t0 - expected >= self.capacity / self.sample_rate

    def _place(self, x: np.ndarray, t0: float, rate: int, stamp: float | int,
               issues: list[tuple[str, str]]) -> PushResult:
        """Put checked mono samples on the timeline (gaps, overlaps, resets, resampling)."""
        cfg = self.config
        reset = False
        if self._started:
            dt = t0 - self._last_stamp
            if abs(dt) <= _DUPLICATE_EPS_S:
                self.stats.duplicates += 1
                return PushResult("duplicate", issues=[("duplicate_stamp", "chunk with the previous stamp dropped")])
            if dt < 0:
                if -dt <= cfg.backjump_reset_s:
                    self.stats.out_of_order += 1
                    return PushResult("out_of_order", issues=[(
                        "out_of_order_stamp", f"chunk stamped {-dt * 1000:.0f} ms before the previous one dropped")])
                self.stats.time_resets += 1
                self.stats.stamp_jumps += 1
                issues.append(("stamp_jump", f"stamp went back {-dt:.3f} s: time restarted, audio history cleared"))
                self.reset()
                reset = True
        tail = np.zeros(0, np.float32)  # held-back samples of the old rate, handed out too
        t_tail = 0.0
        if self._started and rate != self._seg_rate:
            self.stats.rate_changes += 1
            if cfg.reset_on_rate_change:
                self.reset()
                reset = True
            else:
                t_tail = self.end_time
                tail = self._flush_resampler()
                # the new segment continues the timeline where the old one ended
                self._seg_t0 = self._seg_t0 + self._seg_in / self._seg_rate
                self._seg_in = 0
                self._seg_rate = rate
                self._set_resampler(rate)

        gap = False
        if not self._started:
            self._start(t0, rate)
        else:
            expected = self._seg_t0 + self._seg_in / self._seg_rate
            diff = t0 - expected
            if diff > cfg.stamp_tolerance_s:
                gap = True
                if diff >= cfg.stamp_jump_s:
                    self.stats.stamp_jumps += 1
                    issues.append(("stamp_jump", f"stamp jumped {diff:.3f} s ahead of the audio: "
                                                 "the event in progress ended, the gap is silence"))
                self._flush_resampler()
                self._fill_gap(t0)
                self._seg_t0, self._seg_in = t0, 0
            elif diff < -cfg.stamp_tolerance_s:
                skip = round(-diff * rate)
                self.stats.overlaps += 1
                if skip >= x.size:
                    return PushResult("overlap_dropped", issues=[(
                        "overlapping_stamp", "chunk lies entirely inside audio already received: dropped")])
                x = x[skip:]
                t0 = expected
                issues.append(("overlapping_stamp", f"{skip} samples overlapping earlier audio dropped"))
        self._last_stamp = to_seconds(stamp)
        self._seg_in += x.size
        self.stats.accepted += 1
        t_first = self._time_of(self._total)
        if self._resampler is not None:
            self.stats.resampled_chunks += 1
            # the resampler holds back a few samples; what comes out continues the timeline
            x = self._resampler.process(x)
        self._write(x)
        if tail.size and not gap:
            x, t_first = np.concatenate([tail, x]), t_tail
        return PushResult("ok", x, t_first, gap=gap, reset=reset)

    def _start(self, t0: float, rate: int) -> None:
        self._started = True
        self._anchor_t, self._anchor_i = t0, self._total
        self._seg_t0, self._seg_in, self._seg_rate = t0, 0, rate
        self._set_resampler(rate)

    def _set_resampler(self, rate: int) -> None:
        if rate == self.sample_rate:
            self._resampler = None
        elif self._resampler is None or self._resampler.in_rate != rate:
            self._resampler = StreamingResampler(rate, self.sample_rate)
        else:
            self._resampler.reset()

    def _flush_resampler(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        tail = self._resampler.flush()
        self._write(tail)
        return tail

    def _fill_gap(self, t0: float) -> None:
        n = self._index_of(t0) - self._total
        self.stats.gaps += 1
        self.stats.gap_seconds += max(0.0, t0 - self.end_time)
        if n >= self.capacity:
            self._total += n  # nothing old survives: just move on
        elif n > 0:
            self._write(np.zeros(n, dtype=np.float32))
        self._anchor_t, self._anchor_i = t0, self._total  # re-anchor on the stamp

    def _write(self, x: np.ndarray) -> None:
        n = x.size
        if n == 0:
            return
        if n >= self.capacity:
            x = x[-self.capacity:]
            self._total += n - self.capacity
            n = self.capacity
        start = self._total % self.capacity
        first = min(n, self.capacity - start)
        self._data[start:start + first] = x[:first]
        if first < n:
            self._data[: n - first] = x[first:]
        self._total += n

    # ------------------------------------------------------------------ reading
    def extract(self, t_start: float | int, t_end: float | int, pad: bool = False) -> tuple[np.ndarray, float]:
        """Samples in [t_start, t_end) and the time of the first one returned.

        Without ``pad`` the range is clipped to what the buffer holds (possibly empty);
        with ``pad`` the result always has round((t_end - t_start) * rate) samples,
        zeros where the buffer has nothing.
        """
        t0, t1 = to_seconds(t_start), to_seconds(t_end)
        if t1 < t0:
            raise ValueError(f"extract: t_end ({t1}) is before t_start ({t0})")
        i0, i1 = self._index_of(t0), self._index_of(t1)
        lo, hi = max(0, self._total - self.capacity), self._total
        c0, c1 = max(i0, lo), min(i1, hi)
        held = self._read(c0, c1) if c1 > c0 else np.zeros(0, np.float32)
        if not pad:
            return held, self._time_of(c0) if c1 > c0 else t0
        out = np.zeros(max(0, i1 - i0), dtype=np.float32)
        if c1 > c0:
            out[c0 - i0:c1 - i0] = held
        return out, self._time_of(i0)

    def latest(self, seconds: float) -> tuple[np.ndarray, float]:
        """The newest ``seconds`` of audio (fewer if the buffer holds less)."""
        return self.extract(self.end_time - seconds, self.end_time)

    def _read(self, i0: int, i1: int) -> np.ndarray:
        idx0, n = i0 % self.capacity, i1 - i0
        first = min(n, self.capacity - idx0)
        if first == n:
            return self._data[idx0:idx0 + n].copy()
        return np.concatenate([self._data[idx0:], self._data[: n - first]])
