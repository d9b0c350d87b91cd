"""Settings for sound-event detection, audio input checks, buffering and frame caching.

Defaults suit the usual ROS microphone stream: 16 kHz mono in 512-sample (32 ms) chunks.
Every time is in seconds; every level in dB relative to digital full scale (dBFS). Each
field is a documented setting (avag_core/settings.py): the node's ``events.*`` ROS
parameters, their ranges and the YAML comments are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from avag_core import settings
from avag_core.events.onset_features import FRAME, HOP, SR
from avag_core.settings import setting

MODES = ("onset", "continuous")
DETECTORS = ("flux", "energy", "learned")
NONFINITE_POLICIES = ("zero", "drop")
RATE_POLICIES = ("resample", "drop")


@dataclass
class EventConfig:
    """Everything the audio ring buffer, event detector and frame cache read."""

    # --- detector choice ---
    detector: str = setting(
        "learned", "onset detector: 'learned' (a small CNN trained on real recordings scores each frame, see "
        "onset_weights; the best over speech, music, rain, machines and crackle), 'flux' (per-band level over "
        "each band's own background; merges close hits of one action, hears the shortest taps) or 'energy' "
        "(broadband energy over a noise floor; quiet rooms only)",
        choices=DETECTORS)
    onset_weights: str = setting(
        "", "learned detector: onset model file (safetensors); empty = the one shipped with avag "
        "(avag_core/checkpoints/onset.safetensors); a file adapted to the robot's room: train_onset --init --room")
    learned_on: float = setting(
        0.5, "learned detector: onset probability that starts an event (held-out training-style streams "
        "give a flat F1 from 0.4 to 0.6 for the shipped weights; lower finds more, higher starts fewer false events)",
        lo=0.01, hi=1.0, live=True)
    learned_keep: float = setting(
        0.5, "learned detector: 'action sounding' probability that keeps an event going", lo=0.0, hi=1.0,
        live=True)
    learned_gap_s: float = setting(
        0.25, "learned detector: least time between two onsets (a new onset ends the event in progress; "
        "a stronger one sooner, after the probability fell under learned_on, becomes the event's onset)",
        lo=0.0, hi=10.0)
    learned_block_s: float = setting(
        0.128, "learned detector: audio gathered before the onset model scores it, all its frames in one "
        "batched pass: the same events for less CPU (a 32 ms chunk at a time costs about twice as much), each "
        "decided up to this much later (their peak level over the floor may differ a little); 0 = each chunk "
        "as it comes", lo=0.0, hi=1.0)

    # --- stream / ring buffer ---
    sample_rate: int = setting(16000, "rate everything is converted to (the model's front end is 16 kHz)",
                               lo=8000, hi=48000)
    chunk_samples: int = setting(512, "chunk size used when a whole recording is processed in batch",
                                 lo=16, hi=65536)
    buffer_s: float = setting(30.0, "audio history kept for extraction (must hold max_event_s + pre-roll)",
                              lo=1.0, hi=600.0)
    stamp_tolerance_s: float = setting(0.02, "stamp jitter accepted as contiguous audio", lo=0.0, hi=1.0)
    backjump_reset_s: float = setting(
        0.5, "stamp this far before the previous one = time restarted (bag loop): the event in progress "
        "ends, history is cleared", lo=0.0, hi=3600.0)
    stamp_jump_s: float = setting(
        2.0, "stamp this far after where the audio should continue is reported as a stamp jump "
        "(shorter gaps are dropouts, bridged or zero-filled)", lo=0.0, hi=3600.0)
    nonfinite: str = setting(
        "zero", "NaN/Inf samples: 'zero' them (costs those samples only) or 'drop' the whole chunk",
        choices=NONFINITE_POLICIES)
    sample_rate_policy: str = setting(
        "resample", "chunk at another rate than sample_rate: 'resample' it, or 'drop' it",
        choices=RATE_POLICIES)
    reset_on_rate_change: bool = setting(False, "clear the history when the input rate changes mid-stream")

    # --- input bounds (anything outside is refused or repaired, with a named reason) ---
    min_input_rate: int = setting(8000, "lowest input sample rate accepted (Hz); lower is refused",
                                  lo=1000, hi=192000)
    max_input_rate: int = setting(192000, "highest input sample rate accepted (Hz); higher is refused",
                                  lo=8000, hi=384000)
    max_channels: int = setting(32, "chunks with more channels are refused (likely a [n, channels] mix-up)",
                                lo=1, hi=1024)
    max_chunk_s: float = setting(4.0, "chunks longer than this (at their own rate) are refused", lo=0.05, hi=60.0)
    full_scale: float = setting(1.0, "finite samples beyond +-this are clipped to it (and reported)",
                                lo=0.01, hi=1e6)
    muted_after_s: float = setting(
        10.0, "audio that has been digital silence this long (every sample under -100 dB of full_scale: a "
        "muted microphone, a closed noise gate) is reported once and in diagnostics (s)", lo=0.1, hi=3600.0)

    # --- analysis frames ---
    frame_samples: int = setting(512, "analysis window (32 ms at 16 kHz)", lo=64, hi=8192)
    hop_samples: int = setting(256, "frame step (16 ms at 16 kHz)", lo=16, hi=8192)

    # --- flux detector: per-band level against each band's own recent background ---
    bands: int = setting(24, "log-spaced analysis bands between band_lo_hz and band_hi_hz (fewer where a "
                         "band would be under 3 FFT bins wide)", lo=4, hi=64)
    band_lo_hz: float = setting(150.0, "lowest band edge: DC and rumble below it are ignored", lo=20.0, hi=2000.0)
    band_hi_hz: float = setting(7600.0, "highest band edge (kept below sample_rate / 2)", lo=1000.0, hi=24000.0)
    band_quantile: float = setting(
        0.9, "per band, the background level is this quantile of its recent levels (noise_window_s)",
        lo=0.5, hi=0.999)
    band_on: float = setting(
        0.35, "flux detector: mean over bands of (level - background high level) / background spread "
        "(each band capped at 3) that starts an event", lo=0.01, hi=3.0, live=True)
    band_off: float = setting(0.12, "flux detector: the same mean that keeps an event going", lo=0.0, hi=3.0,
                              live=True)
    lift_on_db: float = setting(
        10.0, "flux detector: power above the bands' background high levels, relative to the background's "
        "power (dB), that also starts an event (a loud narrow-band sound lifts few bands)", lo=0.5, hi=60.0,
        live=True)
    lift_margin_db: float = setting(
        6.0, "... or more: the score_quantile of the background's own lifts plus this", lo=0.0, hi=60.0)
    fade_db: float = setting(
        6.0, "flux detector: an event whose energy rose this far above the background's loud moments (90th "
        "percentile) ...", lo=0.0, hi=60.0)
    keep_db: float = setting(
        6.0, "... ends once it falls back below them + this (a changing background does not hold it)",
        lo=-60.0, hi=60.0)
    onset_backtrack_s: float = setting(
        0.05, "flux detector: the onset moves back over frames just before the trigger whose score was "
        "already rising above the keep level, by at most this", lo=0.0, hi=0.5)
    score_window_s: float = setting(20.0, "flux detector: history of the background's own scores", lo=1.0,
                                    hi=300.0)
    score_quantile: float = setting(0.99, "flux detector: quantile of those scores ...", lo=0.5, hi=1.0)
    score_factor: float = setting(
        1.5, "... times this is the start threshold when it exceeds band_on (busy backgrounds need "
        "more; 0 = always band_on)", lo=0.0, hi=20.0, live=True)
    tone_keep_db: float = setting(
        20.0, "flux detector: an event also keeps going while its loudest band is this far above "
        "that band's background (tones, ringing tails)", lo=0.0, hi=120.0)
    tail_db: float = setting(
        45.0, "flux detector: an event ends once its energy has decayed this far below its peak "
        "(whatever else sounds on)", lo=3.0, hi=120.0)
    split_rise_db: float = setting(
        10.0, "flux detector: mean rise of the bands (dB) over the previous two frames that marks a new "
        "onset inside a sounding event", lo=0.5, hi=30.0)
    split_min_s: float = setting(
        2.5, "a new onset inside an event at least this old starts a new event (sounds over a long "
        "sound get their own event)", lo=0.05, hi=60.0)
    louder_onset_db: float = setting(
        4.0, "flux detector: an onset this far above the peak energy of an event in progress that so far "
        "stayed near the background (a background sound or a quiet lead-in started it) becomes its onset",
        lo=0.0, hi=120.0)
    adapt_after_s: float = setting(
        2.0, "background statistics pause during an event, but only this long: a lasting change "
        "(a fan turning on) becomes background", lo=0.1, hi=60.0)
    silence_db: float = setting(
        -100.0, "frames quieter than this (digital silence, a muted mic) are not background", lo=-200.0, hi=-40.0)

    # --- adaptive noise floor (energy detector) ---
    noise_window_s: float = setting(5.0, "history the background is estimated over", lo=0.5, hi=120.0)
    noise_quantile: float = setting(0.2, "energy detector: floor = this quantile of frame energies",
                                    lo=0.0, hi=1.0)
    min_floor_db: float = setting(-90.0, "energy detector: floor never goes below this", lo=-200.0, hi=0.0)
    warmup_s: float = setting(0.5, "audio needed before the first event can start", lo=0.0, hi=60.0)

    # --- hysteresis (energy detector) ---
    on_db: float = setting(10.0, "energy detector: energy above the floor that starts an event",
                           lo=0.0, hi=100.0, live=True)
    off_db: float = setting(4.0, "energy detector: energy above the floor that keeps an event going",
                            lo=0.0, hi=100.0, live=True)
    flux_on: float = setting(8.0, "energy detector: spectral-flux robust z-score that also starts an event ...",
                             lo=0.0, hi=1e9)
    flux_min_db: float = setting(4.0, "... when the energy is at least this far above the floor", lo=0.0, hi=100.0)

    # --- event shaping ---
    release_s: float = setting(0.8, "quiet needed to end an event (merges strokes of one action: pauses "
                               "up to ~0.75 s)", lo=0.0, hi=10.0)
    pre_roll_s: float = setting(0.1, "audio kept before the detected onset", lo=0.0, hi=5.0)
    post_roll_s: float = setting(0.05, "audio kept after the last active frame", lo=0.0, hi=5.0)
    min_event_s: float = setting(0.03, "shorter events are discarded (a click spans >= 2 frames = 32 ms)",
                                 lo=0.0, hi=60.0)
    busy_short_events: int = setting(
        6, "learned detector: short sounds (under 0.1 s) within busy_window_s that mark a room which pops "
        "on its own (a fire, a crackling record, a drum loop); its events must then last busy_min_event_s "
        "(0 = off; while it holds, a rapid series of taps each shorter than busy_min_event_s is heard only in part)", lo=0, hi=10000)
    busy_window_s: float = setting(20.0, "learned detector: how far back short sounds are counted (busy_short_events)",
                                   lo=0.1, hi=3600.0)
    busy_min_event_s: float = setting(
        0.06, "learned detector: least event length in a room that pops (busy_short_events); min_event_s "
        "elsewhere", lo=0.0, hi=60.0)
    max_event_s: float = setting(10.0, "longer sounds are cut here (flux: new onsets still start events)",
                                 lo=0.1, hi=300.0)
    refractory_s: float = setting(0.5, "no new event starts this soon after the previous one ended",
                                  lo=0.0, hi=60.0)

    # --- continuous mode (windows at a fixed rate instead of onsets) ---
    mode: str = setting("onset", "'onset' (one event per sound) or 'continuous' (fixed-rate windows)",
                        choices=MODES)
    continuous_hop_ms: float = setting(500.0, "continuous mode: one window every this many milliseconds",
                                       lo=1.0, hi=60000.0)
    continuous_window_s: float = setting(2.0, "continuous mode: length of each window", lo=0.05, hi=60.0)

    # --- camera frame cache ---
    frame_cache_size: int = setting(60, "frames kept (2 s at 30 fps): covers audio arriving late", lo=1, hi=10000)
    frame_max_gap_s: float = setting(0.2, "nearest frame further than this from the onset is refused",
                                     lo=0.0, hi=10.0)

    def validate(self) -> EventConfig:
        """Raise ValueError naming the first bad setting; return self for chaining."""
        try:
            settings.check_all(self)
        except ValueError as exc:
            raise ValueError(f"event setting {exc}") from None
        checks = (
            (self.hop_samples <= self.frame_samples, "hop_samples must be <= frame_samples"),
            (self.off_db <= self.on_db, f"off_db ({self.off_db}) must be <= on_db ({self.on_db})"),
            (self.band_off <= self.band_on, f"band_off ({self.band_off}) must be <= band_on ({self.band_on})"),
            (self.min_event_s <= self.max_event_s, "min_event_s must be <= max_event_s"),
            (self.busy_min_event_s <= self.max_event_s, "busy_min_event_s must be <= max_event_s"),
            (self.buffer_s >= self.max_event_s + self.pre_roll_s + self.post_roll_s,
             "buffer_s must hold max_event_s plus pre/post roll"),
            (self.min_input_rate <= self.max_input_rate, "min_input_rate must be <= max_input_rate"),
            (self.detector != "learned" or (self.sample_rate, self.frame_samples, self.hop_samples) == (SR, FRAME, HOP),
             f"detector 'learned' needs sample_rate {SR}, frame_samples {FRAME}, hop_samples {HOP} (its model's frames)"),
            (self.band_lo_hz < self.band_hi_hz <= self.sample_rate / 2,
             f"band_lo_hz < band_hi_hz <= sample_rate / 2 must hold, got {self.band_lo_hz}, "
             f"{self.band_hi_hz}, {self.sample_rate / 2}"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"event setting {message}")
        return self
