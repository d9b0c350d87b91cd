"""`avag bag extract`: a recorded camera + microphone bag -> an annotation project.

The bag is replayed offline through the node's own pipeline (``replay_offline``: the same
event detector, onset-frame matching and model as on the robot). For each detected sound
event it writes the onset frame (lossless PNG), the audio clip the model heard (16 kHz
WAV) and a LabelMe file with the model's function / dependency masks as polygons, ready
to be corrected in LabelMe and turned into training data with ``avag data import``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from avag_core.data.labelme import DEFAULT_CATEGORY, labelme_document
from avag_core.errors import AvagError


class _ClipRecorder:
    """Wraps the predictor to keep the exact waveform of every prediction it makes."""

    def __init__(self, predictor: Any) -> None:
        self._inner = predictor
        self.clips: dict[int, tuple[Any, np.ndarray, int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def predict(self, waveform: np.ndarray, sample_rate: int) -> Any:
        pred = self._inner.predict(waveform, sample_rate)
        # keyed by the output array, which the pipeline hands on to its Detection
        self.clips[id(pred.function_prob)] = (pred, np.array(waveform, dtype=np.float32), int(sample_rate))
        return pred


def extract_bag(
    bag: Path, out: Path, checkpoint: Path | None = None, category: str = DEFAULT_CATEGORY,
    params_file: Path | None = None, overrides: list[str] | None = None, device: str | None = None,
) -> dict[str, Any]:
    """Write one sample per detected event of ``bag`` into ``out``; returns a summary."""
    import soundfile as sf
    from PIL import Image

    from avag_ros.adapter import load_predictor
    from avag_ros.bag.replay import replay_offline
    from avag_ros.param_files import node_config

    overrides = list(overrides or [])
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise AvagError(f"checkpoint {checkpoint} does not exist")
        overrides.append(f"checkpoint={checkpoint}")
    if device is not None:
        overrides.append(f"device={device}")
    if len(category.strip("/").split("/")) != 2:
        raise AvagError(f"--category {category!r} must look like object/affordance")
    cfg = node_config(params_file, overrides)
    recorder = _ClipRecorder(load_predictor(cfg))
    result = replay_offline(Path(bag), recorder, cfg)
    out.mkdir(parents=True, exist_ok=True)
    index_rows = []
    for i, det in enumerate(result.detections):
        _pred, wave, rate = recorder.clips[id(det.function_prob)]
        stem = f"{Path(bag).name}_{i:04d}"
        h, w = det.rgb.shape[:2]
        Image.fromarray(det.rgb).save(out / f"{stem}.png")
        sf.write(out / f"{stem}.wav", wave.reshape(-1), rate, subtype="PCM_16")
        meta = {"category": category.strip("/"), "audio": f"{stem}.wav", "bag": str(bag),
                "onset_s": det.event.onset_time, "start_s": det.event.start_time,
                "end_s": det.event.end_time, "frame_stamp_ns": det.frame_stamp_ns,
                "function_score": det.function_score, "dependency_score": det.dependency_score,
                "checkpoint": cfg.checkpoint or "shipped"}  # fmt: skip
        doc = labelme_document(f"{stem}.png", h, w, {"function": det.function_mask,
                                                     "dependency": det.dependency_mask}, meta)  # fmt: skip
        (out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
        index_rows.append([stem, f"{det.event.onset_time:.3f}", f"{det.function_score:.3f}",
                           f"{det.dependency_score:.3f}", len(doc["shapes"])])  # fmt: skip
    with (out / "events.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "onset_s", "function_score", "dependency_score", "polygons"])
        writer.writerows(index_rows)
    return {"bag": str(bag), "out": str(out), "samples": len(index_rows),
            "bad_messages": result.bad_messages}  # fmt: skip


def add_parser(bag_sub: Any) -> None:
    """Registers ``avag bag extract`` under ``avag bag``."""
    x = bag_sub.add_parser("extract", help="cut a camera+mic bag into samples + a LabelMe project",
                           description=__doc__)
    x.add_argument("bag", type=Path)
    x.add_argument("--out", type=Path, required=True, help="project folder (images, clips, .json)")
    x.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    x.add_argument("--category", default=DEFAULT_CATEGORY,
                   help="object/affordance folder the samples go to on import (editable per file)")
    x.add_argument("--params-file", type=Path, default=None, help="the node's ROS 2 parameters file")
    x.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override one node parameter (event detection, thresholds)")
    x.add_argument("--device", default=None, help="cpu, cuda, cuda:N")
    x.set_defaults(func=_run)


def _run(args: Any) -> int:
    info = extract_bag(args.bag, args.out, args.checkpoint, args.category, args.params_file,
                       args.overrides, args.device)
    print(f"wrote {info['samples']} sample(s) to {info['out']}: correct them with "
          f"`labelme {info['out']}`, then `avag data import {info['out']} --out DATA`")
    return 0
