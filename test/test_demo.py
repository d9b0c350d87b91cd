"""The README's main job: `avag demo` plays a synthetic scene bag into the real node over DDS
and writes overlays, point clouds and a report; live and offline replays agree."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, ros_available

ok, why = ros_available()


@pytest.mark.slow
@pytest.mark.skipif(not ok, reason=why)
def test_demo_live_matches_offline(ros_env, tmp_path, shipped_checkpoint):
    out = tmp_path / "demo"
    res = subprocess.run(
        [sys.executable, "-m", "avag_core.cli.main", "demo", "--out", str(out), "--scenes", "3",
         "--checkpoint", str(shipped_checkpoint)],
        env=ros_env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    summary = json.loads((out / "report" / "summary.json").read_text())
    cmp = summary["live_vs_offline"]
    assert cmp["same_events"] and cmp["live_events"] == 3
    assert cmp["mask_iou_min"] >= 0.99
    assert summary["live"]["events"]["recall"] == 1.0
    assert len(list((out / "report" / "overlays").glob("*.png"))) == 3
    assert (out / "report" / "index.html").exists()
    assert list((out / "report" / "live" / "node_outputs").glob("*.mcap"))
    for line in ("overlays:", "point clouds:", "report:"):
        assert line in res.stdout
