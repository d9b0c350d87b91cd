"""The README's main job, as a user runs it: `avag demo` must pass on its own judgement
(every scene's action detected and named live and offline, every sound that is not an
action without masks, live = offline, a grasp region for every event) and leave the
promised files behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, needs_ros

pytestmark = [needs_ros, pytest.mark.slow]


@pytest.mark.timeout(420)
def test_demo_passes_its_own_checks(tmp_path, ros_env):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "avag_core.cli.main", "demo", "--scenes", "4", "--out", str(out)],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=400, env=ros_env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "demo: ok" in res.stdout
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["failures"] == []
    for row in ("offline", "live"):
        ev = summary[row]["events"]
        assert ev["ground_truth"] == ev["detections"] == ev["matched"] == 4, (row, ev)
    assert summary["live_vs_offline"]["same_events"]
    for row in ("offline", "live"):
        heard = summary[row]["heard"]
        assert heard["distractors"] == 4 and heard["given_masks"] == 0 and heard["actions_rejected"] == 0, heard
        assert heard["rejected"] + heard["not_heard"] == 4
    assert summary["live_vs_offline"]["rejected_live"] == summary["live_vs_offline"]["rejected_offline"]
    assert len(list((out / "report" / "grasp_regions").glob("*.ply"))) == 4
    assert len(list((out / "report" / "overlays").glob("*.png"))) == 4
    assert (out / "report" / "index.html").is_file()


def test_a_playback_rate_out_of_range_is_refused_in_one_line(tmp_path, ros_env):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "avag_core.cli.main", "demo", "--rate", "0", "--out", str(out)],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=ros_env)
    assert res.returncode == 2
    assert res.stderr.strip() == "avag demo: error: --rate 0 is outside 0.1-10"
    assert not out.exists()
