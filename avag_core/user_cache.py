"""Where avag keeps what it makes once and reuses (exported graphs, TensorRT engines,
compiled packages, audio features, unpacked recordings).

One root for all of them, so ``AVAG_CACHE_DIR`` moves every cache at once: a robot points it
at persistent storage, a test or a fresh-machine run at an empty folder."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$AVAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/avag`` (``~/.cache/avag``)."""
    if os.environ.get("AVAG_CACHE_DIR"):
        return Path(os.environ["AVAG_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avag"
