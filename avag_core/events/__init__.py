"""Sound-event detection for the perception node (numpy; torch only to load the learned
detector's weights; no ROS).

AudioRingBuffer keeps a repaired 16 kHz timeline of the microphone, SoundEventDetector
finds action sounds in it (or emits fixed-rate windows), AudioEventTracker combines both,
FrameCache keeps recent camera frames so the one nearest an onset can be analysed.
"""

from avag_core.events.config import EventConfig
from avag_core.events.detector import SoundEvent, SoundEventDetector, detect_events
from avag_core.events.frame_cache import FrameCache
from avag_core.events.resample import StreamingResampler
from avag_core.events.ring_buffer import AudioRingBuffer, BufferStats, PushResult
from avag_core.events.timebase import to_mono_float32, to_seconds
from avag_core.events.tracker import AudioEventTracker, EventAudio

__all__ = [
    "AudioEventTracker",
    "AudioRingBuffer",
    "BufferStats",
    "EventAudio",
    "EventConfig",
    "FrameCache",
    "PushResult",
    "SoundEvent",
    "SoundEventDetector",
    "StreamingResampler",
    "detect_events",
    "to_mono_float32",
    "to_seconds",
]
