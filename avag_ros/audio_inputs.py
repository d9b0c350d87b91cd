"""Audio message types the perception node accepts, each turned into float [channels, n].

- ``avag``: avag/msg/AudioFrame (ours; stamped at the first sample).
- ``audio_common``: ros-drivers audio_common_msgs/AudioDataStamped (raw bytes) with the
  format taken from the latched audio_common_msgs/AudioInfo topic.
- ``audio_common_stamped``: mgonzs13 audio_common_msgs/AudioStamped (typed arrays + info).
The two audio_common packages share a name but not their definitions; only the one
installed can be used, and the node says so at configure time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avag_ros.conversions import audio_frame_to_numpy

# ros-drivers AudioInfo.sample_format strings -> (dtype, full scale)
_RAW_FORMATS = {
    "S16LE": ("<i2", 32767.0),
    "S32LE": ("<i4", 2147483647.0),
    "F32LE": ("<f4", 1.0),
    "U8": ("u1", None),
    "S8": ("i1", 127.0),
}
# mgonzs13 AudioInfo.format uses PortAudio sample-format constants
_PA_FIELDS = {1: ("float32_data", 1.0), 2: ("int32_data", 2147483647.0), 8: ("int16_data", 32767.0),
              16: ("int8_data", 127.0), 32: ("uint8_data", None)}


@dataclass
class RawAudioInfo:
    sample_rate: int
    channels: int
    sample_format: str


def message_class(audio_type: str) -> type:
    """The subscription type for ``audio_type`` (ImportError naming the missing package)."""
    if audio_type == "avag":
        from avag.msg import AudioFrame

        return AudioFrame
    try:
        if audio_type == "audio_common":
            from audio_common_msgs.msg import AudioDataStamped

            return AudioDataStamped
        from audio_common_msgs.msg import AudioStamped

        return AudioStamped
    except ImportError as exc:
        raise ImportError(
            f"audio_type={audio_type} needs the audio_common_msgs package providing "
            f"{'AudioDataStamped' if audio_type == 'audio_common' else 'AudioStamped'} ({exc})"
        ) from None


def _scale(raw: np.ndarray, full_scale: float | None) -> np.ndarray:
    if full_scale is None:  # unsigned 8-bit
        return (raw.astype(np.float32) - 128.0) / 128.0
    return (raw.astype(np.float64) / full_scale).astype(np.float32)


def to_numpy(msg: Any, audio_type: str, info: RawAudioInfo | None = None) -> tuple[np.ndarray, int]:
    """(float32 [channels, n], sample_rate); ValueError for anything malformed."""
    if audio_type == "avag":
        return audio_frame_to_numpy(msg)
    if audio_type == "audio_common":
        if info is None:
            raise ValueError("no AudioInfo received yet: cannot interpret raw audio bytes")
        if info.sample_format not in _RAW_FORMATS:
            raise ValueError(f"unsupported AudioInfo.sample_format {info.sample_format!r}")
        dtype, full = _RAW_FORMATS[info.sample_format]
        data = bytes(msg.audio.data)
        step = np.dtype(dtype).itemsize * info.channels
        if info.channels < 1 or len(data) % step:
            raise ValueError(f"{len(data)} audio bytes is not a whole number of {info.channels}-channel frames")
        raw = np.frombuffer(data, dtype)
        return np.ascontiguousarray(_scale(raw, full).reshape(-1, info.channels).T), int(info.sample_rate)
    # audio_common_stamped
    a = msg.audio
    fmt = int(a.info.format)
    if fmt not in _PA_FIELDS:
        raise ValueError(f"unsupported AudioInfo.format {fmt}")
    field, full = _PA_FIELDS[fmt]
    raw = np.asarray(getattr(a.audio_data, field))
    channels = int(a.info.channels)
    if channels < 1 or raw.size % channels:
        raise ValueError(f"{raw.size} samples is not a whole number of {channels}-channel frames")
    return np.ascontiguousarray(_scale(raw, full).reshape(-1, channels).T), int(a.info.rate)
