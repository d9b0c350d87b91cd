"""The robot's own data loop, end to end on a synthetic camera + microphone bag:
`avag bag extract` -> annotations corrected by a script (as a person would in LabelMe) ->
`avag data import` -> `avag data check` -> `avag train --init-from` -> `avag bag eval`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avag_core.data.labelme import mask_to_polygons, polygons_to_mask, read_annotation
from avag_core.errors import AvagError

from conftest import REPO_ROOT, SHIPPED_CHECKPOINT, needs_ros

pytestmark = needs_ros


def _avag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avag_core.cli.main", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=600)  # fmt: skip


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> tuple[Path, Path]:
    from avag_core.data.synth import generate
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    root = tmp_path_factory.mktemp("ownloop")
    data = generate(root / "synth", seed=3, size="tiny")
    cfg = SynthBagConfig(seed=3, scene_s=2.5, sound_at_s=0.8, max_sound_s=1.0)
    write_synth_bag(load_scenes(data, "val", limit=4), root / "robot_bag", cfg)
    write_synth_bag(load_scenes(data, "unseen", limit=2), root / "held_out", cfg)
    return root / "robot_bag", root / "held_out"


def _edit_like_an_annotator(project: Path, bag: Path) -> dict[str, np.ndarray]:
    """Correct every LabelMe file with the bag's ground truth: true polygons and category;
    a detection with no true event near its onset is deleted (its .json removed)."""
    from avag_ros.bag.evaluate import read_topics
    from avag_ros.conversions import image_to_numpy, stamp_to_ns

    truth = [m for _t, m in read_topics(bag, {"/avag/ground_truth"})["/avag/ground_truth"]]
    kept = {}
    for path in sorted(project.glob("*.json")):
        doc = json.loads(path.read_text())
        onset_ns = round(doc["avag"]["onset_s"] * 1e9)
        near = [t for t in truth if abs(stamp_to_ns(t.event_start) - onset_ns) < 0.3e9]
        if not near:
            path.unlink()
            continue
        t = near[0]
        func, dep = image_to_numpy(t.function_mask) > 0, image_to_numpy(t.dependency_mask) > 0
        doc["shapes"] = [{"label": label, "points": poly, "shape_type": "polygon", "group_id": None,
                          "flags": {}, "description": ""}
                         for label, mask in (("function", func), ("dependency", dep))
                         for poly in mask_to_polygons(mask)]  # fmt: skip
        doc["avag"]["category"] = t.action_label
        path.write_text(json.dumps(doc))
        kept[path.stem] = func
    return kept


@pytest.mark.slow
def test_bag_to_annotations_to_fine_tuned_model(bags, tmp_path):
    import soundfile as sf
    from PIL import Image

    from avag_core.predictor import Predictor

    bag, held_out = bags
    project = tmp_path / "project"
    res = _avag("bag", "extract", str(bag), "--out", str(project))
    assert res.returncode == 0, res.stdout + res.stderr
    docs = sorted(project.glob("*.json"))
    assert len(docs) >= 2, res.stdout  # (how many events the detector finds is its business)
    assert len((project / "events.csv").read_text().splitlines()) == len(docs) + 1
    # each sample: the onset frame, the clip the model heard, the model's masks as polygons
    predictor = Predictor.from_checkpoint(SHIPPED_CHECKPOINT)
    for path in docs:
        doc = json.loads(path.read_text())
        assert {s["label"] for s in doc["shapes"]} <= {"function", "dependency"}
        assert doc["shapes"] and all(s["shape_type"] == "polygon" for s in doc["shapes"])
        rgb = np.asarray(Image.open(project / doc["imagePath"]).convert("RGB"))
        assert rgb.shape == (doc["imageHeight"], doc["imageWidth"], 3)
        wave, rate = sf.read(project / doc["avag"]["audio"], dtype="float32")
        assert rate == 16000 and wave.ndim == 1 and wave.size > 0.3 * rate
        predictor.set_image(rgb)
        model_mask = predictor.predict(wave, rate).function_prob > 0.5
        drawn = read_annotation(path).masks["function"]
        assert _iou(drawn, model_mask) > 0.85, path.name

    truth = _edit_like_an_annotator(project, bag)
    n = len(truth)  # samples kept; false events were deleted by the "annotator"
    assert n >= 2
    data = tmp_path / "data"
    res = _avag("data", "import", str(project), "--out", str(data), "--val-every", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"imported {n} sample(s)" in res.stdout
    with (data / "train.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (data / "val.csv").open() as fh:
        rows_val = list(csv.DictReader(fh))
    assert (len(rows), len(rows_val)) == (n - n // 2, n // 2)
    rows += rows_val
    for row in rows:
        stem = Path(row["image"]).stem
        assert row["image"].count("/") == 2  # <object>/<affordance>/<file>
        got = np.asarray(Image.open(data / row["mask_func"])) > 127
        assert _iou(got, truth[stem]) > 0.95, stem
    res = _avag("data", "check", "--data", str(data), "--csv", "train.csv", "--csv", "val.csv")
    assert res.returncode == 0, res.stdout + res.stderr

    run = tmp_path / "run"
    res = _avag("train", "--config", "realtime", "--data", str(data), "--out", str(run),
                "--init-from", str(SHIPPED_CHECKPOINT), "--freeze", "backbone", "--no-progress",
                "--device", "cpu", "--set", "data.cache_dir=", "--set", "train.max_steps=3",
                "--set", "train.batch_size=2", "--set", "train.num_workers=0",
                "--set", "train.threads=1")  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    after = run / "last.safetensors"
    report = {}
    for name, ckpt in (("before", SHIPPED_CHECKPOINT), ("after", after)):
        res = _avag("bag", "eval", str(held_out), "--checkpoint", str(ckpt),
                    "--out", str(tmp_path / name))  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        report[name] = res.stdout
        assert "offline" in res.stdout and "mIoU_f" in res.stdout
    assert report["before"] != report["after"]  # the fine-tuned weights are what ran


def test_import_refuses_bad_annotations_without_writing(tmp_path):
    import soundfile as sf
    from PIL import Image

    from avag_core.data.labelme import import_project, labelme_document

    project = tmp_path / "p"
    project.mkdir()
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    for name in ("a", "b"):
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(project / f"{name}.png")
        sf.write(project / f"{name}.wav", np.zeros(8000, np.float32), 16000)
        doc = labelme_document(f"{name}.png", 40, 60, {"function": mask}, {"category": "cup/pour"})
        (project / f"{name}.json").write_text(json.dumps(doc))
    # rectangles are accepted too, and rasterise like LabelMe draws them
    doc = json.loads((project / "a.json").read_text())
    doc["shapes"] = [{"label": "function", "points": [[10, 5], [29, 19]], "shape_type": "rectangle"}]
    (project / "a.json").write_text(json.dumps(doc))
    assert np.array_equal(read_annotation(project / "a.json").masks["function"], mask)
    assert np.array_equal(polygons_to_mask(mask_to_polygons(mask), 40, 60), mask)
    bad = json.loads((project / "b.json").read_text())
    bad["shapes"][0]["label"] = "handle"
    (project / "b.json").write_text(json.dumps(bad))
    out = tmp_path / "out"
    with pytest.raises(AvagError, match=r"b\.json shape 0: label 'handle' is neither"):
        import_project(project, out)
    assert not out.exists()  # nothing half-written
    for edit, msg in [({"imagePath": "../../etc/x.png"}, "leaves the project folder"),
                      ({"avag": {"category": "../x"}}, "must look like object/affordance"),
                      ({"shapes": [{"label": "function", "points": [[1, 1], [2, 2]]}]},
                       "needs 3 or more")]:  # fmt: skip
        doc = json.loads((project / "a.json").read_text())
        doc.update(edit)
        (project / "c.json").write_text(json.dumps(doc))
        with pytest.raises(AvagError, match=msg):
            read_annotation(project / "c.json")
