"""Reading audio files of any format, rate and channel count through libsndfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avag_core.errors import AvagError


def _check_nonempty(path: str | Path) -> None:
    """libsndfile calls a 0-byte file "possibly a pipe?": say what it is instead."""
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise AvagError(f"audio file {path} does not exist") from None
    except OSError as exc:
        raise AvagError(f"cannot read audio file {path}: {exc.strerror}") from None
    if size == 0:
        raise AvagError(f"audio file {path} is empty (0 bytes)")


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` (WAV, FLAC, OGG, MP3...) to float32 ``[channels, samples]``.

    soundfile is used for every format (its bundled libsndfile decodes MP3), so there is
    one code path and no ffmpeg dependency.
    """
    import soundfile as sf

    _check_nonempty(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AvagError(f"audio file {path} does not exist") from None
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvagError(f"cannot decode audio file {path}: {reason}") from None
    if data.shape[0] == 0:
        raise AvagError(f"audio file {path} contains no samples")
    if not np.isfinite(data).all():
        raise AvagError(f"audio file {path} contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), int(rate)


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` from the header only: a cheap validity check."""
    import soundfile as sf

    _check_nonempty(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvagError(f"cannot read audio file {path}: {reason}") from None
    return int(info.samplerate), int(info.channels), int(info.frames)
