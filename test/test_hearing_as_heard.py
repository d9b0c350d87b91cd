"""``as_heard``: a clip re-framed as the node's event audio (background before and after)."""

from __future__ import annotations

import numpy as np

from avag_core.hearing.as_heard import PEAK_DB, PRE_S, TAIL_S, as_heard

SR = 16000


def _clip() -> np.ndarray:
    t = np.arange(int(0.6 * SR)) / SR
    return (np.sin(2 * np.pi * 900 * t) * np.exp(-t * 4)).astype(np.float32)


def test_views_hold_the_clip_after_a_pre_roll_on_a_noise_floor():
    clip = _clip()
    for seed in range(12):
        out = as_heard(clip, np.random.default_rng(seed), SR, kinds=())
        assert out.dtype == np.float32 and np.isfinite(out).all() and np.abs(out).max() <= 1.0
        # the clip (whole, or cut to at least half) plus pre-roll and tail
        assert clip.size // 2 + (PRE_S[0] + TAIL_S[0]) * SR - 2 <= out.size
        assert out.size <= clip.size + (PRE_S[1] + TAIL_S[1]) * SR + 2
        # where the clip sits: the cross-correlation peak, inside the pre-roll range
        corr = np.correlate(out, clip[: SR // 10], mode="valid")
        lag = int(np.argmax(np.abs(corr)))
        assert PRE_S[0] * SR - 2 <= lag <= PRE_S[1] * SR + 2
        peak_db = 20 * np.log10(np.abs(out).max())
        assert PEAK_DB[0] - 1 <= peak_db <= PEAK_DB[1] + 1
        # never digital silence: the room's floor is under everything, before and after the clip
        assert np.count_nonzero(out) == out.size


def test_views_are_reproducible_and_differ_between_seeds():
    clip = _clip()
    a = as_heard(clip, np.random.default_rng(3), SR, kinds=("noise",))
    b = as_heard(clip, np.random.default_rng(3), SR, kinds=("noise",))
    c = as_heard(clip, np.random.default_rng(4), SR, kinds=("noise",))
    np.testing.assert_array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)
