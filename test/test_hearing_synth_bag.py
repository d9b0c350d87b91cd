"""Synthetic bags can lay real speech and music under the actions (SynthBagConfig.backgrounds)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import needs_ros

pytestmark = needs_ros


def test_synth_bag_with_shipped_speech_and_music(tmp_path):
    from avag_core.data.synth import generate
    from avag_core.data.synth.backgrounds import active_power, background_power
    from avag_ros.bag.evaluate import read_topics
    from avag_ros.bag.synth_bag import BAG_START_NS, SynthBagConfig, load_scenes, write_synth_bag
    from avag_ros.conversions import audio_frame_to_numpy, stamp_to_ns

    scenes = load_scenes(generate(tmp_path / "data", seed=2, size="tiny"), "val", limit=2)
    cfg = SynthBagConfig(seed=2, scene_s=3.0, sound_at_s=1.0, max_sound_s=1.0, noise_dbfs=-90.0,
                         backgrounds=("speech", "music"), background_snr_db=20.0)
    info = write_synth_bag(scenes, tmp_path / "bag", cfg)
    assert info["backgrounds"] == ["speech_espeak.flac", "music_city_blues.flac"]
    frames = [m for _t, m in read_topics(tmp_path / "bag")["/audio/audio"]]
    audio = np.concatenate([audio_frame_to_numpy(f)[0][0] for f in frames])
    assert stamp_to_ns(frames[0].header.stamp) == BAG_START_NS
    sr = cfg.sample_rate
    # between the actions there is a real recording, not the -90 dBFS noise
    gap = audio[int(2.2 * sr):int(3.9 * sr)]
    assert 10 * np.log10(background_power(gap)) > -60.0
    # ... at the configured level under the actions
    (s0, e0), (s1, e1) = [((a - BAG_START_NS) * sr // 10**9, (b - BAG_START_NS) * sr // 10**9)
                          for a, b in info["events_ns"]]
    bg = np.concatenate([audio[: s0 - sr // 10], audio[e0 + sr // 10: s1 - sr // 10], audio[e1 + sr // 10:]])
    act = np.mean([active_power(audio[s:e], sr) for s, e in ((s0, e0), (s1, e1))])
    assert 10 * np.log10(act / background_power(bg)) == pytest.approx(20.0, abs=3.0)
    # without backgrounds (the default) the bag is the same noise-only bag as before
    plain = write_synth_bag(scenes, tmp_path / "plain", SynthBagConfig(seed=2))
    assert plain["backgrounds"] == []
