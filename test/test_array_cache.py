"""The array cache of the training recordings and the benchmark's speech: made once, and
never seen half-written by a second process (onset-model members train side by side on
one cache folder; one of them once failed reading another's half-written file)."""

import numpy as np
import pytest

from avag_core.data import array_cache
from avag_core.data.array_cache import cached_array


def test_an_array_is_made_once_then_loaded(tmp_path):
    calls = []

    def make():
        calls.append(1)
        return np.arange(5, dtype=np.float32)

    path = tmp_path / "sub" / "a.npy"
    first, again = cached_array(path, make), cached_array(path, make)
    assert len(calls) == 1 and np.array_equal(first, again) and again.dtype == np.float32
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.npy"]  # no temporary file left


def test_the_file_appears_only_when_it_is_whole(tmp_path, monkeypatch):
    """While the array is being written, the cache path does not exist yet: a second process
    sees no file (and makes its own) rather than a truncated one."""
    path = tmp_path / "a.npy"
    real_save = np.save
    seen = []

    def watching_save(file, arr, *args, **kwargs):
        seen.append(path.exists())
        real_save(file, arr, *args, **kwargs)
        seen.append(path.exists())

    monkeypatch.setattr(array_cache.np, "save", watching_save)
    cached_array(path, lambda: np.ones(1000))
    assert seen == [False, False] and np.array_equal(np.load(path), np.ones(1000))


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    """A write that fails half-way (a full disk) raises and leaves no file, whole or partial."""

    def full_disk(file, arr, *args, **kwargs):
        file.write(b"\x93NUMPY")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(array_cache.np, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        cached_array(tmp_path / "a.npy", lambda: np.ones(10))
    assert list(tmp_path.iterdir()) == []
