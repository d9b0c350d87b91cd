"""The demo's bag: an action in every scene, then a sound that is not an action."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import needs_ros

pytestmark = needs_ros


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


def test_heard_bags_benchmark_counts_what_the_node_path_did(tmp_path):
    """The benchmark replays demo bags offline and its totals add up: every action either
    named or lost, every non-action rejected, not heard or given masks."""
    import json

    from avag_ros.benchmarks.heard_bags import main, parse_seeds

    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    out = tmp_path / "heard.json"
    assert main(["--seeds", "4", "--scenes", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    (row,) = r["rows"]
    assert row["seed"] == 4 and row["actions"] == row["others"] == 2
    assert row["detected"] + row["actions_rejected"] <= row["actions"]
    assert row["others_rejected"] + row["others_not_heard"] + row["others_given_masks"] == row["others"]
    assert r["actions_lost"] == 1 - row["detected"] / 2 and r["others_without_masks"] == 1 - row["others_given_masks"] / 2
