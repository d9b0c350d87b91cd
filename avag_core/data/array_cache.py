"""One array per file, made once: recordings decoded and resampled, generated speech.

Why atomic: onset-model members are trained side by side (one process per seed) on one
cache folder, and a process that found a half-written ``.npy`` of another failed with
"No data left in file". The array is written to a temporary file in the same folder and
renamed over the target, so a reader finds the whole file or none.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cached_array(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``path`` loaded if it exists, else ``make()`` written there (atomically) and returned."""
    if path.is_file():
        return np.load(path)
    array = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return array
