"""Settings for sound-event detection, audio buffering and frame caching.

Defaults suit the usual ROS microphone stream: 16 kHz mono in 512-sample (32 ms) chunks.
Every time is in seconds; every level in dB relative to digital full scale (dBFS).
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("onset", "continuous")
NONFINITE_POLICIES = ("drop", "zero")
RATE_POLICIES = ("resample", "drop")


@dataclass
class EventConfig:
    """Everything the audio ring buffer, event detector and frame cache read."""

    # --- stream / ring buffer ---
    sample_rate: int = 16000  # rate everything is converted to (the model's front end is 16 kHz)
    chunk_samples: int = 512  # chunk size used when a whole recording is processed in batch
    buffer_s: float = 30.0  # audio history kept for extraction (must hold max_event_s + pre-roll)
    stamp_tolerance_s: float = 0.02  # stamp jitter accepted as contiguous audio
    backjump_reset_s: float = 0.5  # stamp this far before the previous one = time restarted (bag loop)
    nonfinite: str = "drop"  # chunk containing NaN/Inf: "drop" it, or "zero" the bad samples
    sample_rate_policy: str = "resample"  # chunk at another rate: "resample" it, or "drop" it
    reset_on_rate_change: bool = False  # clear the history when the input rate changes mid-stream

    # --- analysis frames ---
    frame_samples: int = 512  # analysis window (32 ms at 16 kHz)
    hop_samples: int = 256  # frame step (16 ms at 16 kHz)

    # --- adaptive noise floor ---
    noise_window_s: float = 5.0  # history the floor is estimated over
    noise_quantile: float = 0.2  # floor = this quantile of frame energies in that history
    min_floor_db: float = -90.0  # floor never goes below this (digital silence)
    warmup_s: float = 0.5  # audio needed before the first event can start

    # --- hysteresis ---
    on_db: float = 10.0  # energy above the floor that starts an event
    off_db: float = 4.0  # energy above the floor that keeps an event going
    flux_on: float = 8.0  # spectral-flux robust z-score that also starts an event ...
    flux_min_db: float = 4.0  # ... when the energy is at least this far above the floor

    # --- event shaping ---
    release_s: float = 0.8  # quiet needed to end an event (merges strokes of one action: pauses up to ~0.75 s)
    pre_roll_s: float = 0.1  # audio kept before the detected onset
    post_roll_s: float = 0.05  # audio kept after the last active frame
    min_event_s: float = 0.03  # shorter events are discarded (a click spans >= 2 frames = 32 ms)
    max_event_s: float = 10.0  # longer sounds are cut here; no new event until they stop
    refractory_s: float = 0.5  # no new event starts this soon after the previous one ended

    # --- continuous mode (windows at a fixed rate instead of onsets) ---
    mode: str = "onset"  # "onset" or "continuous"
    continuous_hop_ms: float = 500.0  # emit one window every this many milliseconds
    continuous_window_s: float = 2.0  # length of each emitted window

    # --- camera frame cache ---
    frame_cache_size: int = 60  # frames kept (2 s at 30 fps): covers audio arriving late
    frame_max_gap_s: float = 0.2  # nearest frame further than this from the onset is refused

    def validate(self) -> EventConfig:
        """Raise ValueError naming the first bad setting; return self for chaining."""
        positive = (
            "sample_rate", "chunk_samples", "buffer_s", "frame_samples", "hop_samples",
            "noise_window_s", "max_event_s", "continuous_hop_ms", "continuous_window_s",
            "frame_cache_size",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"event setting {name} must be > 0, got {getattr(self, name)!r}")
        non_negative = (
            "stamp_tolerance_s", "backjump_reset_s", "warmup_s", "release_s", "pre_roll_s",
            "post_roll_s", "min_event_s", "refractory_s", "frame_max_gap_s", "flux_min_db",
        )
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"event setting {name} must be >= 0, got {getattr(self, name)!r}")
        if self.hop_samples > self.frame_samples:
            raise ValueError("event setting hop_samples must be <= frame_samples")
        if not 0.0 <= self.noise_quantile <= 1.0:
            raise ValueError(f"event setting noise_quantile must be in [0, 1], got {self.noise_quantile!r}")
        if self.off_db > self.on_db:
            raise ValueError(f"event setting off_db ({self.off_db}) must be <= on_db ({self.on_db})")
        if self.min_event_s > self.max_event_s:
            raise ValueError("event setting min_event_s must be <= max_event_s")
        if self.buffer_s < self.max_event_s + self.pre_roll_s + self.post_roll_s:
            raise ValueError("event setting buffer_s must hold max_event_s plus pre/post roll")
        for name, allowed in (
            ("mode", MODES),
            ("nonfinite", NONFINITE_POLICIES),
            ("sample_rate_policy", RATE_POLICIES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"event setting {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        return self
