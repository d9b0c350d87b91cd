"""Audio feature cache: decode and compute log-mel patches once, reuse every epoch.

MP3 decoding and resampling dominate data loading time on a CPU. Patches are kept in
memory and, when a cache folder is set, on disk too, so DataLoader worker processes
(which do not share memory between epochs) and later runs skip the decode as well.
Entries are keyed by the file's absolute path, size and modification time plus the
front-end version, so an edited file or a changed front end is never served stale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from avag_core.errors import AvagError
from avag_core.user_cache import default_cache_dir

from .audio_io import load_audio

FRONTEND_VERSION = "vggish-logmel-16k-v2"  # v2: short clips padded with silence


def resolve_cache_dir(setting: str) -> Path | None:
    """``"auto"`` -> ``features`` in avag's cache folder (``avag_core.user_cache``); ``""``/``"none"`` -> memory only."""
    if setting in ("", "none", "None"):
        return None
    if setting == "auto":
        return default_cache_dir() / "features"
    return Path(setting).expanduser()


class FeatureCache:
    """Maps an audio file to its ``[T,96,64]`` log-mel patches, computing each only once."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.memory: dict[str, torch.Tensor] = {}
        self.decodes = 0  # how many files this process actually decoded
        self.disk_hits = 0

    def key(self, path: Path) -> str:
        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{FRONTEND_VERSION}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def patches(self, path: str | Path) -> torch.Tensor:
        from avag_core.modeling.audio_frontend import waveform_to_patches

        path = Path(path)
        try:
            key = self.key(path)
        except OSError:
            raise AvagError(f"audio file {path} does not exist") from None
        hit = self.memory.get(key)
        if hit is not None:
            return hit
        disk = self._disk_path(key)
        if disk is not None and disk.is_file():
            try:
                hit = torch.load(disk, map_location="cpu", weights_only=True)
            except Exception:  # a torn or foreign file: recompute and overwrite it
                hit = None
            if isinstance(hit, torch.Tensor) and hit.dim() == 3:
                self.disk_hits += 1
                self.memory[key] = hit
                return hit
        wave, rate = load_audio(path)
        self.decodes += 1
        patches = waveform_to_patches(wave, rate).to(torch.float32).contiguous()
        self.memory[key] = patches
        if disk is not None:
            self._write(disk, patches)
        return patches

    def _disk_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.pt"

    def _write(self, disk: Path, patches: torch.Tensor) -> None:
        """Atomic write (temp file + rename): parallel workers never see half a file."""
        try:
            disk.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=disk.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                torch.save(patches, fh)
            os.replace(tmp, disk)
        except OSError:
            pass  # an unwritable cache only costs speed, never correctness
