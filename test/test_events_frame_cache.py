"""FrameCache: nearest frame by stamp, bounded size, duplicates, reordering, bag loops."""

import pytest

from avag_core.events import FrameCache

NS = 1_000_000_000
BASE = 1_700_000_000 * NS


def test_nearest_within_max_gap():
    cache = FrameCache(max_frames=10)
    for k in range(5):
        assert cache.add(BASE + k * NS // 30, f"frame{k}")
    stamp, frame = cache.nearest(BASE + 2 * NS // 30 + 3_000_000)
    assert (stamp, frame) == (BASE + 2 * NS // 30, "frame2")
    assert cache.nearest(BASE / NS + 0.07)[1] == "frame2"  # float seconds work too
    assert cache.nearest(BASE + 5 * NS, max_gap_s=0.2) is None
    assert cache.nearest(BASE - NS // 10, max_gap_s=0.2)[1] == "frame0"


def test_bounded_duplicates_and_out_of_order():
    cache = FrameCache(max_frames=3)
    dt = NS // 10
    assert cache.add(BASE + 2 * dt, "c")
    assert cache.add(BASE, "a")  # late arrival is inserted in order
    assert not cache.add(BASE, "again")
    assert cache.duplicates == 1
    cache.add(BASE + dt, "b")
    assert cache.nearest(BASE)[1] == "a"
    cache.add(BASE + 3 * dt, "d")
    assert len(cache) == 3 and cache.evicted == 1
    assert cache.nearest(BASE)[1] == "b"  # "a" (oldest) was evicted
    assert cache.latest() == (BASE + 3 * dt, "d")


def test_time_jump_backwards_clears():
    cache = FrameCache(max_frames=5, backjump_reset_s=0.5)
    cache.add(BASE + 10 * NS, "old")
    cache.add(BASE, "looped")
    assert cache.time_resets == 1 and len(cache) == 1
    assert cache.nearest(BASE + 10 * NS)[1] == "looped"


def test_empty_and_bad_size():
    assert FrameCache().nearest(0.0) is None
    with pytest.raises(ValueError):
        FrameCache(max_frames=0)
