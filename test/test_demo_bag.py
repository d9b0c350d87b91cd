"""The demo's bag: an action in every scene, then a sound that is not an action."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ros_available

ok, why = ros_available()
pytestmark = pytest.mark.skipif(not ok, reason=why)


def test_distractors_sound_between_the_actions_with_their_own_ground_truth(tmp_path):
    from avag_core.data.synth import generate
    from avag_ros.bag.evaluate import read_topics
    from avag_ros.bag.report import truth_from_msgs
    from avag_ros.bag.synth_bag import BAG_START_NS, SynthBagConfig, load_scenes, write_synth_bag
    from avag_ros.conversions import audio_frame_to_numpy

    scenes = load_scenes(generate(tmp_path / "data", seed=4, size="tiny"), "val", limit=3)
    cfg = SynthBagConfig(seed=4, scene_s=5.0, noise_dbfs=-80.0, distractors=("speech", "cough"))
    info = write_synth_bag(scenes, tmp_path / "bag", cfg)
    assert info["distractor_kinds"] == ["speech", "cough", "speech"]
    topics = read_topics(tmp_path / "bag")
    truth = truth_from_msgs([m for _t, m in topics["/avag/ground_truth"]])
    actions = [t for t in truth if t.is_action]
    others = [t for t in truth if not t.is_action]
    assert [t.category for t in actions] == [s.category for s in scenes]
    assert [t.category for t in others] == ["none/speech", "none/cough", "none/speech"]
    assert all(not t.function_mask.any() and not t.dependency_mask.any() for t in others)
    sr = cfg.sample_rate
    audio = np.concatenate([audio_frame_to_numpy(m)[0][0] for _t, m in topics["/audio/audio"]])
    for (start, end), t in zip(info["distractors_ns"], others, strict=True):
        assert (t.start_ns, t.end_ns) == (start, end)
        # inside the scene after its action, and loud (the -80 dBFS floor elsewhere)
        s0, s1 = ((x - BAG_START_NS) * sr // 10**9 for x in (start, end))
        scene = (start - BAG_START_NS) / 1e9 // cfg.scene_s
        assert (start - BAG_START_NS) / 1e9 - scene * cfg.scene_s == pytest.approx(cfg.distractor_at_s, abs=1e-3)
        assert np.abs(audio[s0:s1]).max() > 0.3
    # the action track is the bag's without distractors: they have their own random stream
    plain = write_synth_bag(scenes, tmp_path / "plain", SynthBagConfig(seed=4, scene_s=5.0, noise_dbfs=-80.0))
    assert plain["events_ns"] == info["events_ns"] and plain["distractors_ns"] == []
