"""Streaming sound-event detection: a learned onset model (the default), per-band flux over
each band's own background (``EventConfig.detector = "flux"``) or broadband energy over a
noise floor (``"energy"``).

Why per band (``detector="flux"``): speech, music, rain and machines fill some bands and
move all the time; one broadband floor is either below them (every syllable an "event",
or an event that never ends) or above the action. Each of ``bands`` log-spaced bands
above ``band_lo_hz`` (no DC, no rumble) is judged against its own recent background: its
``band_quantile`` level and spread (bands.py). A frame's score is the mean over bands of
how far each is above that level, in units of its spread; its lift is the power above
those levels relative to the background's power (a loud narrow-band sound lifts few bands:
its score is small, its lift is not). An event starts when the score reaches ``band_on``
or the lift ``lift_on_db`` (or more where the background itself often scores high: adaptive
thresholds from the background's own scores and lifts); its onset is back-tracked over the
frames just before that were already rising. It keeps going while the score (or one band
far above its background, a tone) holds, and ends ``release_s`` after that; an event that
rose ``fade_db`` above the background's loud moments ends once it is back down to them
(what still moves then is the background changing under it). Frames of an event stay out
of the background for ``adapt_after_s``, then enter it slowly (at once when the event has
faded); digital silence never enters it, and until the background is known every other
frame does. A much louder onset inside an event that so far stayed near the background (a
background sound or a quiet lead-in started it) becomes its onset. A sharp broadband rise
inside an event older than ``split_min_s`` starts a new event; a cut at ``max_event_s``
never blocks new onsets.

The energy detector (the first default) remains for quiet rooms and comparison.

``detector="learned"`` (the default: the best on real rooms; README, "Why learned is the
default now, and what it misses"): a small CNN (onset_model.py, trained on real recordings
by train_onset.py; the shipped file averages six of them) scores every frame,
``shape.lookahead`` frames late: "an action starts here" and "an action is sounding". An
event starts where the first reaches ``learned_on`` (at most one onset per
``learned_gap_s``: a stronger one sooner than that, after the first fell back under
``learned_on``, becomes the event's onset; a new onset after it ends the event in progress),
keeps going while the second holds ``learned_keep`` and ends ``release_s`` after that. An
onset the model does not hear go on (no later frame at ``learned_keep``) is shorter than
``min_event_s`` and is dropped: replayed on the hearing benchmark's mixes with one model,
keeping such onsets would raise the false alarms per minute on speech alone from 0.7 to 3.1
and on music alone from 8.9 to 13.0 for a few per cent of recall. A room that pops on its own
(a fire, a crackling record, a drum loop) asks more: once ``busy_short_events`` of its
events within ``busy_window_s`` were short sounds (under 0.1 s, kept or dropped), an event
must last ``busy_min_event_s`` (``room_pops``). Why: the model scores a fire's pops as high
as actions (median onset probability 0.98 over the hearing benchmark's fire at 5 dB), but
most events they start are short (19 of 29 there under 0.1 s, against 2 of the 27 actions
found); a quarter to two fifths of the actions over other backgrounds are as short, but they
come seconds apart and seldom fill the window (docs/hearing.md, "A room that pops").

The detector works chunk by chunk (a ROS callback hands it 512 samples at a time) and
gives identical results on a whole recording (``detect_events``). Frames are
``frame_samples`` long every ``hop_samples``; all frames of a chunk are analysed in one
vectorised FFT, so a 512-sample chunk costs well under a millisecond. Latency is bounded:
an onset is known one frame after it (the learned detector: its model's hindsight later,
128 ms for the shipped weights), an event ends ``release_s`` after its last sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avag_core.events.bands import BandBackground, BandLevels, excess, lift_db, rise_db
from avag_core.events.config import EventConfig
from avag_core.events.resample import StreamingResampler
from avag_core.events.timebase import to_mono_float32, to_seconds

_EPS_POWER = 1e-12  # -120 dBFS: digital silence
_SLOW_LEARN = 8  # one in this many frames of a sounding event (or standing out) enters the background
_LOUDER_MIN_S = 0.1  # a louder onset re-times only an event this old (strokes of one action build up)
SHORT_EVENT_S = 0.1  # an event shorter than this is a short sound (room_pops): a fire's pops are, most actions not
_MAX_START = 2.0  # the adaptive start threshold never exceeds this (scores top out at 3): never deaf


@dataclass(frozen=True)
class SoundEvent:
    """One detected action sound (or one analysis window in continuous mode).

    start_time/end_time include pre-roll/post-roll and bound the audio to analyse;
    onset_time is the detected onset; peak_score is the highest frame energy above the
    noise floor in dB (the background's 20 % quantile), at peak_time. truncated: cut at ``max_event_s`` (the sound went on).
    """

    start_time: float
    end_time: float
    peak_score: float
    onset_time: float
    peak_time: float
    truncated: bool = False

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    def shifted(self, dt: float) -> SoundEvent:
        """The same event ``dt`` seconds later."""
        return SoundEvent(self.start_time + dt, self.end_time + dt, self.peak_score, self.onset_time + dt,
                          self.peak_time + dt, self.truncated)


class SoundEventDetector:
    """Feed (samples, first-sample time) chunks of mono audio at ``config.sample_rate``.

    Inside, times count from the first stamp since the last reset (rounded to the
    microsecond), and events are stamped back on the input's clock on the way out: every
    comparison of two times then rounds the same way whether the clock started at 0 (a bag,
    a simulator) or at the wall clock's 1.7e9 s, so both hear the same events.
    """

    def __init__(self, config: EventConfig | None = None) -> None:
        self.config = (config or EventConfig()).validate()
        cfg = self.config
        self.sample_rate = int(cfg.sample_rate)
        self._frame = int(cfg.frame_samples)
        self._hop = int(cfg.hop_samples)
        self._window = np.hanning(self._frame).astype(np.float32)
        self._hist_len = max(8, round(cfg.noise_window_s * self.sample_rate / self._hop))
        self._warmup_frames = int(np.ceil(cfg.warmup_s * self.sample_rate / self._hop))
        # frames back to the event's peak a louder onset is compared with (>= the back-tracking)
        self._peak_lag = 1 + int(np.ceil(cfg.onset_backtrack_s * self.sample_rate / self._hop))
        self._flux = cfg.detector == "flux"
        self._learned = None
        if cfg.detector == "learned":  # torch only for this detector
            from avag_core.events.learned import LearnedOnsetScorer

            self._learned = LearnedOnsetScorer(self._frame, self._hop, self.sample_rate, cfg.onset_weights)
        # samples gathered before a chunk is analysed: the learned detector scores learned_block_s
        # in one pass (its cost is mostly numpy's per-call overhead, not arithmetic); the others
        # analyse each chunk as it comes (their floors and thresholds move once per chunk)
        block = max(1, round(cfg.learned_block_s * self.sample_rate / self._hop)) if self._learned is not None else 1
        self._least = self._frame + (block - 1) * self._hop
        self._levels = BandLevels(self._frame, self.sample_rate, cfg.bands, cfg.band_lo_hz,
                                  min(cfg.band_hi_hz, self.sample_rate / 2), cfg.silence_db)
        self._background = BandBackground(self._hist_len, self._levels.bands, cfg.band_quantile)
        # the background's own (score, lift) per frame: the adaptive thresholds come from it
        self._score_hist = np.zeros((max(16, round(cfg.score_window_s * self.sample_rate / self._hop)), 2))
        self._score_count = 0
        self.threshold = float(cfg.band_on)  # current start threshold of the flux detector
        self.keep_threshold = float(cfg.band_off)  # ... and the level that keeps an event going
        self.lift_threshold = float(cfg.lift_on_db)  # ... and the lift (dB) that starts one too
        self.dropped_short = 0  # events discarded by min_event_s
        self.dropped_busy = 0  # ... and by busy_min_event_s, in a room that pops
        self.discontinuities = 0  # gaps / time jumps seen in the input times
        self.started = 0  # events started (dropped ones included)
        # set to a list to record the learned detector's view of each frame it steps, one
        # [frames, 5] array per chunk: onset time (input clock), onset and sounding
        # probabilities, members at or above learned_on, 1 where an event started (why an
        # action was missed or a background sound started an event:
        # avag_core/benchmarks/hearing_explain.py)
        self.trace: list[np.ndarray] | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the noise floor, the framing and any event in progress."""
        self._e_hist = np.zeros(self._hist_len, dtype=np.float64)
        self._f_hist = np.zeros(self._hist_len, dtype=np.float64)
        self._hist_count = 0  # frames written to the history (write index = count % len)
        self._prev_logmag: np.ndarray | None = None
        self._prev_levels: np.ndarray | None = None
        self._background.reset()
        self._score_count = 0
        self._loud_frames = 0
        self._recent: tuple[float, ...] = (0.0, 0.0)  # last 2 scores (keep-going test)
        self.threshold = float(self.config.band_on)
        self.lift_threshold = float(self.config.lift_on_db)
        self._back_t = np.zeros(0)  # times and scores of the last frames (onset back-tracking)
        self._back_s = np.zeros(0)
        self._epoch: float | None = None  # input time of internal time 0
        self._soft_reset_framing(None)
        self._state = "idle"  # idle | active | hold (cut at max length, waiting for quiet)
        self._peak_over, self._faded = -np.inf, False  # event's peak over the background's loud moments
        # the event's highest (energy, score, lift, energy over the background's loud moments)
        # as of each of the last _peak_lag frames
        self._peaks: tuple[tuple[float, ...], ...] = ((-np.inf, 0.0, 0.0, -np.inf),) * self._peak_lag
        self._onset = self._first = 0.0
        self._last_active_end = 0.0
        self._peak = -np.inf
        self._peak_t = 0.0
        self._refractory_until = -np.inf
        self._next_window_t: float | None = None
        self._win_t = np.zeros(0)
        self._win_score = np.zeros(0)
        self._last_onset = -np.inf  # learned detector: onset of the last event started,
        self._onset_p = 0.0  # ... its onset probability
        self._onset_dipped = False  # ... and whether the probability has fallen under learned_on since
        self._lag_snr = np.zeros(0)  # ... and the energies of frames it has not scored yet
        self._shorts: list[float] = []  # ... and the onsets of its recent events under SHORT_EVENT_S (room_pops)
        if self._learned is not None:
            self._learned.reset()

    def _soft_reset_framing(self, t0: float | None) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._anchor_t = t0  # time of sample index 0 of the current contiguous segment
        self._consumed = 0  # samples of that segment already framed (pending starts here)
        self._seg_start = t0

    @property
    def active_onset(self) -> float | None:
        """Onset time of the event in progress (None when idle): lets a node grab a frame early."""
        return self._onset + self._epoch if self._state == "active" and self._epoch is not None else None

    @property
    def stream_time(self) -> float | None:
        """Time just after the last sample received."""
        rel = self._stream_rel()
        return None if rel is None or self._epoch is None else rel + self._epoch

    def _stream_rel(self) -> float | None:
        if self._anchor_t is None:
            return None
        return self._anchor_t + (self._consumed + self._pending.size) / self.sample_rate

    def _relative(self, t: float) -> float:
        """Input time -> internal time (microseconds: the rounding of a large clock value is gone)."""
        assert self._epoch is not None
        return round((t - self._epoch) * 1e6) / 1e6

    def _on_input_clock(self, events: list[SoundEvent]) -> list[SoundEvent]:
        """Internal times -> the input's clock."""
        epoch = self._epoch
        return events if epoch is None else [e.shifted(epoch) for e in events]

    # ------------------------------------------------------------------ input
    def process(self, samples: np.ndarray, t0: float | int) -> list[SoundEvent]:
        """Analyse one chunk; return the events that ended (or windows that closed) in it.

        Chunks must be in time order. A chunk that does not continue the previous one
        (gap or overlap beyond one hop) closes any event in progress and restarts framing;
        a jump backwards beyond ``backjump_reset_s`` resets the detector. Raw driver
        stamps jitter: feed them through AudioRingBuffer (or use AudioEventTracker),
        which hands out contiguous times.
        """
        x = to_mono_float32(samples)
        t_in = to_seconds(t0)
        if self._epoch is None:
            self._epoch = t_in
        t = self._relative(t_in)
        events: list[SoundEvent] = []
        expected = self._stream_rel()
        if expected is None:
            self._soft_reset_framing(t)
        elif abs(t - expected) > max(self._hop / self.sample_rate, self.config.stamp_tolerance_s):
            self.discontinuities += 1
            events.extend(self._on_input_clock(self._drain() + self._close(self._last_time())))
            if t < expected - self.config.backjump_reset_s:
                self.reset()
                self._epoch, t = t_in, 0.0
            self._soft_reset_framing(t)
        if x.size:
            if not np.isfinite(x).all():
                x = np.where(np.isfinite(x), x, np.float32(0.0))
            events.extend(self._on_input_clock(self._analyse(x)))
        return events

    def noise_floor_db(self) -> float:
        """Current noise-floor estimate (dBFS); ``min_floor_db`` before any audio."""
        return self._energy_floor() if self._hist_count else float(self.config.min_floor_db)

    def flush(self) -> list[SoundEvent]:
        """End of stream: close the event in progress (if long enough)."""
        return self._on_input_clock(self._drain() + self._close(self._last_time()))

    def _drain(self) -> list[SoundEvent]:
        """Analyse every whole frame still gathered (``learned_block_s``): before the stream
        ends or breaks, so a gathered block gives the events it would have given chunk by chunk."""
        return self._analyse(np.zeros(0, np.float32), least=self._frame) if self._pending.size >= self._frame else []

    def _last_time(self) -> float:
        st = self._stream_rel()
        return st if st is not None else 0.0

    # ------------------------------------------------------------------ analysis
    def _analyse(self, x: np.ndarray, least: int | None = None) -> list[SoundEvent]:
        """Frame and analyse the samples gathered so far once there are ``least`` of them
        (default: a block, ``learned_block_s``); the rest wait for the next chunk."""
        buf = np.concatenate([self._pending, x]) if self._pending.size else x
        if buf.size < (self._least if least is None else least):
            self._pending = buf
            return []
        n_frames = 1 + (buf.size - self._frame) // self._hop
        buf = np.ascontiguousarray(buf, dtype=np.float32)
        # overlapping frames as a strided view (no copy; cheaper than sliding_window_view)
        frames = np.ndarray((n_frames, self._frame), np.float32, buf, 0, (self._hop * 4, 4))
        # each frame's time from its sample index in the segment, not summed hop by hop: the
        # same frame gets the same time (to the last bit) whatever chunks the audio came in, so
        # a tie (quiet for exactly release_s) resolves the same way live, offline and in blocks
        times = self._anchor_t + (self._consumed + np.arange(n_frames) * self._hop) / self.sample_rate
        if self._flux:
            events = self._analyse_bands(frames, times)
        elif self._learned is not None:
            events = self._analyse_learned(frames, times)
        else:
            events = self._analyse_energy(frames, times)
        used = n_frames * self._hop
        self._consumed += used
        self._pending = buf[used:].copy()
        return events

    def _energy_db(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frames without their mean, energy of each in dB): a DC offset is no energy."""
        centred = frames - frames.mean(axis=1, keepdims=True)
        power = np.einsum("ij,ij->i", centred, centred, dtype=np.float64) / self._frame
        return centred, 10.0 * np.log10(power + _EPS_POWER)

    def _analyse_energy(self, frames: np.ndarray, times: np.ndarray) -> list[SoundEvent]:
        n_frames = frames.shape[0]
        centred, energy_db = self._energy_db(frames)
        spec = np.abs(np.fft.rfft(centred * self._window, axis=1))
        logmag = np.log(spec + 1e-6)
        prev = self._prev_logmag if self._prev_logmag is not None else logmag[:1]
        diffs = np.diff(np.concatenate([prev, logmag]), axis=0)
        flux = np.maximum(diffs, 0.0).mean(axis=1)
        self._prev_logmag = logmag[-1:]
        # one floor per chunk (history before it): the floor moves over seconds, not frames
        ready0 = self._hist_count
        if self._hist_count:
            floor, f_med, f_scale = self._floor()
            snr = energy_db - floor
            fz = (flux - f_med) / f_scale
        else:
            snr, fz = np.zeros(n_frames), np.zeros(n_frames)
        self._push_history(energy_db, flux)
        warm = max(self._warmup_frames, 2)
        events: list[SoundEvent] = []
        for k in range(n_frames):
            ready = ready0 + k >= warm
            events.extend(self._step(float(times[k]), float(snr[k]), float(fz[k]), ready))
        return events

    def _analyse_learned(self, frames: np.ndarray, times: np.ndarray) -> list[SoundEvent]:
        """Score the frames with the onset model; step the frames it has now scored."""
        _, energy_db = self._energy_db(frames)
        snr = energy_db - self._energy_floor() if self._hist_count else np.zeros(energy_db.size)
        first = self._hist_count - self._lag_snr.size  # stream index of the oldest frame not scored
        self._push_history(energy_db, np.zeros(energy_db.size))
        t, p_on, p_act = self._learned(frames, times)
        all_snr = np.concatenate([self._lag_snr, snr])
        self._lag_snr = all_snr[t.size:]
        events: list[SoundEvent] = []
        started = np.zeros(t.size) if self.trace is not None else None  # only while tracing
        for k in range(t.size):
            ready = first + k >= max(self._warmup_frames, 2)
            before = self.started
            events.extend(self._step_learned(float(t[k]), float(p_on[k]), float(p_act[k]), float(all_snr[k]),
                                             ready))
            if started is not None:
                started[k] = self.started - before
        if started is not None and t.size:
            voters = self._learned.members_at(self.config.learned_on)
            onset_t = t + (self._frame - self._hop) / self.sample_rate + (self._epoch or 0.0)
            self.trace.append(np.column_stack([onset_t, p_on, p_act, voters, started]))
        return events

    def _step_learned(self, tf: float, p_on: float, p_act: float, snr: float, ready: bool) -> list[SoundEvent]:
        """Learned state machine: an onset starts an event (ending the one in progress)."""
        cfg = self.config
        if cfg.mode == "continuous":
            return self._continuous(tf, snr, ready)
        out: list[SoundEvent] = []
        frame_end = tf + self._frame / self.sample_rate
        onset_t = tf + (self._frame - self._hop) / self.sample_rate  # the onset lies in the newest hop
        if p_on < cfg.learned_on:
            self._onset_dipped = True
        if ready and p_on >= cfg.learned_on and onset_t >= self._last_onset + cfg.learned_gap_s:
            if self._state == "active":
                out.extend(self._emit(min(self._last_active_end, onset_t), False))
            self._start(onset_t, frame_end, snr)
            self._last_onset, self._onset_p, self._onset_dipped = onset_t, p_on, False
        elif self._state == "idle":
            pass
        elif ready and self._onset_dipped and p_on > self._onset_p:
            # a stronger onset, apart from the event's own, sooner than learned_gap_s after it
            # becomes its onset: a background pop or a lead-in just before an action would
            # otherwise take the action's onset (and camera frame) and hide it
            self._onset = self._last_onset = onset_t
            self._onset_p, self._onset_dipped = p_on, False
            out.extend(self._keep_going(tf, frame_end, snr))
        elif p_act >= cfg.learned_keep:
            out.extend(self._keep_going(tf, frame_end, snr))
        elif frame_end - self._last_active_end >= cfg.release_s:
            out.extend(self._release())
        return out

    def _analyse_bands(self, frames: np.ndarray, times: np.ndarray) -> list[SoundEvent]:
        cfg = self.config
        n = frames.shape[0]
        levels, in_band = self._levels(frames)
        prev = self._prev_levels if self._prev_levels is not None else np.repeat(levels[:1], 2, axis=0)
        rise = rise_db(levels, prev)
        self._prev_levels = np.concatenate([prev, levels], axis=0)[-2:]
        live = in_band >= self._levels.silence_power  # digital silence is no background
        ready = self._background.count >= max(self._warmup_frames, 2)
        if self._background.count:
            high, spread = self._background.level()
            score = excess(levels, high, spread)
            lift = lift_db(levels, high)
            top = (levels - high).max(axis=1)  # the loudest band over its background (dB)
        else:
            score, lift, top = np.zeros(n), np.zeros(n), np.zeros(n)
        energy_db = 10.0 * np.log10(in_band + _EPS_POWER)
        # peak_score keeps the energy detector's meaning: dB above the background's floor
        snr = energy_db - self._energy_floor() if self._hist_count else np.zeros(n)
        # a sound far above even the loud moments of the background starts an event too
        # (quiet rooms: a slow, narrow-band start that few bands see)
        over_high = energy_db - self._energy_high() if self._hist_count else np.zeros(n)
        self.threshold, self.keep_threshold, self.lift_threshold = self._thresholds()
        onsets = self._onsets(times, score)
        events: list[SoundEvent] = []
        learn = np.zeros(n, bool)
        idle = np.zeros(n, bool)
        for k in range(n):
            loud = bool(score[k] >= self.threshold or lift[k] >= self.lift_threshold
                        or over_high[k] >= cfg.on_db)
            events.extend(self._step_bands(float(times[k]), float(onsets[k]), loud, float(score[k]),
                                           float(lift[k]), float(rise[k]), float(snr[k]), float(top[k]),
                                           float(over_high[k]), ready))
            # until the background is known every live frame is learned (a busy room must
            # not delay the first onset), and so is a frame of a faded event (back down to the
            # background's loud moments: the background changes under it); other frames of an
            # event stay out of it for adapt_after_s, after that one in 8 is learned: the
            # background follows a lasting change (a fan turning on) in a few seconds, but a
            # long sound that ends leaves no deaf period behind it
            active = self._state == "active"
            if not ready or (active and self._faded):
                learn[k] = live[k]
            elif active and times[k] - self._first < cfg.adapt_after_s:
                learn[k] = False
            elif active or score[k] >= self.threshold:
                self._loud_frames += 1
                learn[k] = live[k] and self._loud_frames % _SLOW_LEARN == 0
            else:
                learn[k] = live[k]
            idle[k] = self._state == "idle"
        if learn.any():
            self._background.push(levels[learn])
            self._push_history(energy_db[learn], np.zeros(int(learn.sum())))
        quiet = learn & idle & ready  # the background's own scores: no event, no warm-up frames
        if quiet.any():
            idx = (self._score_count + np.arange(int(quiet.sum()))) % self._score_hist.shape[0]
            self._score_hist[idx] = np.stack([score[quiet], lift[quiet]], axis=1)
            self._score_count += idx.size
        return events

    def _onsets(self, times: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Onset time of each frame if it starts an event: back-tracked over the frames just
        before it whose score was already rising above the keep threshold (at most
        ``onset_backtrack_s``), so a sound that builds up over a few frames is timed where
        it began, not where it crossed the start threshold."""
        lag = (self._frame - self._hop) / self.sample_rate  # the onset lies in a frame's newest hop
        all_t = np.concatenate([self._back_t, times])
        all_s = np.concatenate([self._back_s, score])
        m = self._back_t.size
        out = times + lag
        for k in range(times.size):
            j = m + k
            while (j > 0 and all_s[j - 1] >= self.keep_threshold and all_s[j - 1] < all_s[j]
                   and all_t[m + k] - all_t[j - 1] <= self.config.onset_backtrack_s + 1e-9):
                j -= 1
            out[k] = all_t[j] + lag
        keep = max(1, int(np.ceil(self.config.onset_backtrack_s * self.sample_rate / self._hop)))
        self._back_t, self._back_s = all_t[-keep:], all_s[-keep:]
        return out

    def _thresholds(self) -> tuple[float, float, float]:
        """(start, keep, lift) thresholds: band_on/band_off/lift_on_db, or higher where the
        background itself often scores high (music, crackle): score_factor x the
        score_quantile of its recent scores to start, that quantile itself to keep going
        (compared with the mean score of the last 2 frames, which a background rarely
        holds that high for long), and that quantile of its lifts + lift_margin_db."""
        cfg = self.config
        n = min(self._score_count, self._score_hist.shape[0])
        if n < 16:
            return float(cfg.band_on), float(cfg.band_off), float(cfg.lift_on_db)
        k = round(cfg.score_quantile * (n - 1))
        q, q_lift = np.partition(self._score_hist[:n], k, axis=0)[k]
        start = min(max(float(cfg.band_on), cfg.score_factor * float(q)), _MAX_START)
        lift = max(float(cfg.lift_on_db), float(q_lift) + cfg.lift_margin_db)
        return start, min(start, max(float(cfg.band_off), float(q))), lift

    def _energy_high(self) -> float:
        """90th percentile of the background's frame energies (dB)."""
        n = min(self._hist_count, self._hist_len)
        k = int(0.9 * (n - 1))
        return float(np.partition(self._e_hist[:n], k)[k])

    def _energy_floor(self) -> float:
        """Noise floor (dB): the noise_quantile of the history's frame energies."""
        n = min(self._hist_count, self._hist_len)
        q = int(self.config.noise_quantile * (n - 1))
        return max(float(np.partition(self._e_hist[:n], q)[q]), self.config.min_floor_db)

    def _floor(self) -> tuple[float, float, float]:
        """Noise floor (dB), flux median and flux scale from the history (before this frame)."""
        n = min(self._hist_count, self._hist_len)
        f = self._f_hist[:n]
        floor = self._energy_floor()
        m = (f.size - 1) // 2
        med = float(np.partition(f, m)[m])
        scale = 1.4826 * float(np.partition(np.abs(f - med), m)[m])
        return floor, med, max(scale, 1e-3 * max(med, 1e-3))

    def _push_history(self, energy_db: np.ndarray, flux: np.ndarray) -> None:
        n = energy_db.size
        idx = (self._hist_count + np.arange(n)) % self._hist_len
        self._e_hist[idx], self._f_hist[idx] = energy_db, flux
        self._hist_count += n

    def _step(self, tf: float, snr: float, fz: float, ready: bool) -> list[SoundEvent]:
        cfg = self.config
        frame_s = self._frame / self.sample_rate
        if cfg.mode == "continuous":
            return self._continuous(tf, snr, ready)

        out: list[SoundEvent] = []
        frame_end = tf + frame_s
        # the onset lies in the newest hop of the first frame loud enough to trigger
        onset_t = tf + (self._frame - self._hop) / self.sample_rate
        if self._state == "idle":
            trigger = snr >= cfg.on_db or (fz >= cfg.flux_on and snr >= cfg.flux_min_db)
            if ready and trigger and onset_t >= self._refractory_until:
                self._start(onset_t, frame_end, snr)
        elif snr >= cfg.off_db:
            out.extend(self._keep_going(tf, frame_end, snr))
        elif frame_end - self._last_active_end >= cfg.release_s:
            out.extend(self._release())
        return out

    def _keep_going(self, tf: float, frame_end: float, snr: float) -> list[SoundEvent]:
        """The sound goes on (both detectors): track its peak; cut it at max_event_s."""
        self._last_active_end = frame_end
        if self._state == "active" and snr > self._peak:
            self._peak, self._peak_t = snr, tf
        if self._state == "active" and frame_end - self._first >= self.config.max_event_s:
            self._state = "hold"
            return self._emit(self._first + self.config.max_event_s, truncated=True)
        return []

    def _release(self) -> list[SoundEvent]:
        """Quiet for release_s (both detectors): the event ends (a discarded glitch does
        not block the next event)."""
        emitted = self._emit(self._last_active_end, False) if self._state == "active" else []
        if emitted or self._state == "hold":
            self._refractory_until = self._last_active_end + self.config.refractory_s
        self._state = "idle"
        return emitted

    def _step_bands(self, tf: float, onset_t: float, loud: bool, score: float, lift: float, rise: float,
                    snr: float, top: float, over_high: float, ready: bool) -> list[SoundEvent]:
        """Flux state machine: idle -> active -> idle; a new onset splits or ends a long event."""
        cfg = self.config
        if cfg.mode == "continuous":
            return self._continuous(tf, snr, ready)
        out: list[SoundEvent] = []
        frame_end = tf + self._frame / self.sample_rate
        loud = ready and loud
        # a new sound inside a sounding one: most bands rise at once
        new_onset = loud and rise >= cfg.split_rise_db
        split_t = tf + (self._frame - self._hop) / self.sample_rate  # this frame's newest hop
        if self._state == "idle":
            if loud and split_t >= self._refractory_until:  # back-tracked, never into the refractory time
                self._start(max(onset_t, self._refractory_until), frame_end, snr)
            return out
        if self._louder_onset(onset_t, loud, score, lift, snr, over_high):
            self._onset = max(onset_t, self._onset + _LOUDER_MIN_S)
        elif self._state == "active" and new_onset and split_t - self._onset >= cfg.split_min_s:
            out.extend(self._emit(min(self._last_active_end, split_t), False))
            self._start(split_t, frame_end, snr)
            return out
        if self._state == "hold" and new_onset:
            self._start(split_t, frame_end, snr)
            return out
        self._recent = (*self._recent[1:], score)
        # keep going while the sound is broadband enough, or one band (a tone, a ringing tail)
        # stays far above its background; never once it has decayed tail_db below its peak,
        # nor (an event that rose fade_db above the background's loud moments) once it is back
        # down to them (+ keep_db): what still moves then is the background changing under it
        self._peak_over = max(self._peak_over, over_high)
        self._faded = self._peak_over >= cfg.fade_db and over_high < cfg.keep_db
        broad = sum(self._recent) / len(self._recent) >= self.keep_threshold
        decayed = self._state == "active" and snr < self._peak - cfg.tail_db
        if not self._faded and not decayed and (broad or top >= cfg.tone_keep_db):
            out.extend(self._keep_going(tf, frame_end, snr))
        elif frame_end - self._last_active_end >= cfg.release_s:
            out.extend(self._release())
        return out

    def _louder_onset(self, onset_t: float, loud: bool, score: float, lift: float, snr: float,
                      over_high: float) -> bool:
        """A much louder onset inside an event that so far stayed within fade_db of the
        background's loud moments and scored under 3 x the start threshold (a background
        sound or a quiet lead-in started it): it becomes the event's onset. Louder: the
        event's loudest frame so far, louder_onset_db over its peak energy before this rise
        began (a rise over several frames lifts the running peaks as it goes), with twice
        its highest score or (narrow band) a lift that starts events and grew as much."""
        cfg = self.config
        peak, peak_score, peak_lift, peak_over = self._peaks[0]
        newest = self._peaks[-1]
        self._peaks = (*self._peaks[1:], (max(newest[0], snr), max(newest[1], score), max(newest[2], lift),
                                          max(newest[3], over_high)))
        return (self._state == "active" and loud and onset_t - self._onset >= _LOUDER_MIN_S
                and peak_over < cfg.fade_db and peak_score < 3.0 * self.threshold
                and snr >= max(newest[0], peak + cfg.louder_onset_db)
                and (score >= 2.0 * peak_score or lift >= max(self.lift_threshold, peak_lift + cfg.louder_onset_db)))

    def _start(self, onset_t: float, frame_end: float, score: float) -> None:
        self.started += 1
        self._peak_over, self._faded = -np.inf, False
        self._peaks = ((score, 0.0, 0.0, -np.inf),) * self._peak_lag
        self._recent = (0.0, score)
        self._state = "active"
        self._onset = self._first = onset_t  # onset (may move to a louder one) and where the audio begins
        self._last_active_end = frame_end
        self._peak, self._peak_t = score, onset_t

    @property
    def room_pops(self) -> bool:
        """Whether the room made busy_short_events short sounds within the last busy_window_s
        (learned detector): its events must then last busy_min_event_s."""
        return self._pops_at(self._last_time())

    def _pops_at(self, t: float) -> bool:
        cfg = self.config
        recent = sum(t - cfg.busy_window_s <= s <= t for s in self._shorts)
        return self._learned is not None and 0 < cfg.busy_short_events <= recent

    def _emit(self, end: float, truncated: bool) -> list[SoundEvent]:
        cfg = self.config
        length = end - self._onset
        # the short sounds within the window (none from after this onset: the clock went back)
        self._shorts = [t for t in self._shorts if self._onset - cfg.busy_window_s <= t <= self._onset]
        busy = self._pops_at(self._onset)
        if length < SHORT_EVENT_S:
            self._shorts.append(self._onset)
        if length < cfg.min_event_s:
            self.dropped_short += 1
            return []
        if busy and length < cfg.busy_min_event_s:
            self.dropped_busy += 1
            return []
        start = self._first - cfg.pre_roll_s
        if self._seg_start is not None:
            start = max(start, self._seg_start)
        stop = end if truncated else end + cfg.post_roll_s
        return [SoundEvent(start, stop, float(self._peak), self._onset, self._peak_t, truncated)]

    def _close(self, t_end: float) -> list[SoundEvent]:
        out: list[SoundEvent] = []
        if self._state == "active" and self.config.mode == "onset":
            end = min(self._last_active_end, t_end)
            ev = self._emit(end, truncated=False)
            # the stream ended: no post-roll beyond the audio that exists
            out.extend(
                SoundEvent(e.start_time, min(e.end_time, t_end), e.peak_score, e.onset_time,
                           e.peak_time, e.truncated) for e in ev
            )
            self._refractory_until = end + self.config.refractory_s
        self._state = "idle"
        return out

    def _continuous(self, tf: float, snr: float, ready: bool) -> list[SoundEvent]:
        """Fixed-rate windows: [t - window, t] every continuous_hop_ms once a window is full."""
        cfg = self.config
        frame_end = tf + self._frame / self.sample_rate
        self._win_t = np.append(self._win_t, tf)
        self._win_score = np.append(self._win_score, snr if ready else -np.inf)
        keep = self._win_t >= frame_end - cfg.continuous_window_s - 1e-9
        self._win_t, self._win_score = self._win_t[keep], self._win_score[keep]
        seg_start = self._seg_start if self._seg_start is not None else tf
        if self._next_window_t is None or self._next_window_t < seg_start + cfg.continuous_window_s:
            self._next_window_t = seg_start + cfg.continuous_window_s
        out: list[SoundEvent] = []
        while frame_end >= self._next_window_t:
            end = self._next_window_t
            start = end - cfg.continuous_window_s
            j = int(np.argmax(self._win_score)) if self._win_score.size else 0
            peak = float(self._win_score[j]) if self._win_score.size else -np.inf
            peak_t = float(self._win_t[j]) if self._win_t.size else start
            out.append(SoundEvent(start, end, peak, start, peak_t, False))
            self._next_window_t += cfg.continuous_hop_ms / 1000.0
        return out


def detect_events(
    samples: np.ndarray,
    sample_rate: int,
    config: EventConfig | None = None,
    t0: float | int = 0.0,
) -> list[SoundEvent]:
    """Events in a whole recording ([n] or [channels, n]); same results as streaming it."""
    cfg = (config or EventConfig()).validate()
    x = to_mono_float32(samples)
    if int(sample_rate) != cfg.sample_rate:
        rs = StreamingResampler(int(sample_rate), cfg.sample_rate)
        step = 1 << 16  # bounded temporary memory for long recordings
        x = np.concatenate([*(rs.process(x[i:i + step]) for i in range(0, x.size, step)), rs.flush()])
    det = SoundEventDetector(cfg)
    start = to_seconds(t0)
    events: list[SoundEvent] = []
    n = cfg.chunk_samples
    for i in range(0, x.size, n):
        events.extend(det.process(x[i:i + n], start + i / cfg.sample_rate))
    events.extend(det.flush())
    return events
