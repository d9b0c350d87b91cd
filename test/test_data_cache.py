"""Feature cache: the second epoch (even in a new process or dataset) decodes no audio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import avag_core.data.cache as cache_mod
from avag_core.data import AVAGDDataset, DataConfig

ROOT = Path(__file__).resolve().parent / "data" / "avagd"


def test_second_epoch_reads_cache_not_mp3(tmp_path, monkeypatch):
    cfg = DataConfig(cache_dir=str(tmp_path / "cache"))
    ds = AVAGDDataset(ROOT, ROOT / "examples.csv", 32, train=True, cfg=cfg)
    first = [ds.audio_patches(i) for i in range(len(ds))]
    assert ds.cache.decodes == len(ds)
    files = list((tmp_path / "cache").rglob("*.pt"))
    assert len(files) == len(ds)

    for i in range(len(ds)):  # same dataset, second epoch: memory hits
        ds.audio_patches(i)
    assert ds.cache.decodes == len(ds)

    def no_decode(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(cache_mod, "load_audio", no_decode)
    fresh = AVAGDDataset(ROOT, ROOT / "examples.csv", 32, train=True, cfg=cfg)
    again = [fresh[i]["audio"] for i in range(len(fresh))]
    assert fresh.cache.decodes == 0 and fresh.cache.disk_hits == len(fresh)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)


def test_changed_file_is_recomputed(tmp_path):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(str(wav), np.zeros(20000), 16000)
    cache = cache_mod.FeatureCache(tmp_path / "c")
    silent = cache.patches(wav)
    sf.write(str(wav), np.random.default_rng(0).standard_normal(20000) * 0.3, 16000)
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    loud = cache_mod.FeatureCache(tmp_path / "c").patches(wav)
    assert loud.mean() > silent.mean() + 1.0


@pytest.mark.parametrize("setting", ["", "none"])
def test_memory_only_cache_writes_nothing(tmp_path, setting, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    ds = AVAGDDataset(
        ROOT, ROOT / "examples.csv", 32, train=False, cfg=DataConfig(cache_dir=setting)
    )
    ds.audio_patches(0)
    ds.audio_patches(0)
    assert ds.cache.decodes == 1
    assert not (tmp_path / "xdg").exists()


def test_worker_processes_fill_the_shared_cache(tmp_path, monkeypatch):
    """DataLoader workers write the disk cache; a later reader decodes nothing."""
    from avag_core.data import build_loader

    cfg = DataConfig(cache_dir=str(tmp_path / "cache"), num_workers=2)
    ds = AVAGDDataset(ROOT, ROOT / "examples.csv", 32, train=True, cfg=cfg)
    seen = sum(len(b["category"]) for b in build_loader(ds, 4, shuffle=True, seed=0))
    assert seen == len(ds)
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == len(ds)

    def no_decode(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(cache_mod, "load_audio", no_decode)
    fresh = AVAGDDataset(ROOT, ROOT / "examples.csv", 32, train=False, cfg=cfg)
    assert all(fresh[i]["audio"].shape[1:] == (96, 64) for i in range(len(fresh)))
    assert fresh.cache.decodes == 0


def test_the_auto_cache_lives_where_every_other_avag_cache_does(tmp_path, monkeypatch):
    """``cache_dir: auto`` follows ``AVAG_CACHE_DIR`` like the graph, engine and compiled
    caches, so one variable moves them all (a robot's persistent volume, a fresh-machine run's
    empty folder); without it, ``$XDG_CACHE_HOME/avag``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path / "avag"))
    ds = AVAGDDataset(ROOT, ROOT / "examples.csv", 32, train=False, cfg=DataConfig(cache_dir="auto"))
    ds.audio_patches(0)
    assert len(list((tmp_path / "avag" / "features").rglob("*.pt"))) == 1
    assert not (tmp_path / "xdg").exists()
    monkeypatch.delenv("AVAG_CACHE_DIR")
    assert cache_mod.resolve_cache_dir("auto") == tmp_path / "xdg" / "avag" / "features"
