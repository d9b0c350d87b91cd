"""Stamps arrive as float seconds or integer nanoseconds; everything here uses float seconds."""

from __future__ import annotations

import numbers

import numpy as np


def to_seconds(stamp: float | int) -> float:
    """Float seconds from float seconds or integer nanoseconds (ints are always nanoseconds)."""
    if isinstance(stamp, (bool, np.bool_)):
        raise TypeError("a time stamp cannot be a bool")
    if isinstance(stamp, numbers.Integral):
        sec, nsec = divmod(int(stamp), 1_000_000_000)
        return float(sec) + nsec * 1e-9
    value = float(stamp)
    if not np.isfinite(value):
        raise ValueError(f"time stamp must be finite, got {stamp!r}")
    return value


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """Mono float32 from [n] or [channels, n] audio (channels averaged)."""
    arr = np.asarray(samples)
    if arr.ndim == 2:
        arr = arr[0] if arr.shape[0] == 1 else arr.mean(axis=0, dtype=np.float32)
    elif arr.ndim != 1:
        raise ValueError(f"audio must be [n] or [channels, n], got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)
