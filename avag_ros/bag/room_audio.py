"""`avag bag audio`: a bag's microphone track as WAV files, the room recordings that
``train_onset --room`` adapts the learned onset detector with.

Why from a bag: on a robot the room is heard through the node's own microphone topic, so a
few minutes of ``ros2 bag record /audio/audio`` in the room (with no actions, or with the
robot idle) are exactly what the detector will hear there. Each stretch of contiguous audio
becomes one file: where the stamps jump (a dropped stretch, a restart) or the format
changes, a new file starts, so no splice adds a click that the model would learn as
background.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avag_core.errors import AvagError


def export_room_audio(bag: Path, out: Path, params_file: Path | None = None, overrides: list[str] | None = None,
                      max_gap_s: float = 0.02, min_stretch_s: float | None = None) -> dict[str, Any]:
    """Write the audio topic of ``bag`` (the node's ``audio_topic`` / ``audio_type``) into
    ``out`` as mono float WAV files, one per contiguous stretch; returns a summary. A chunk
    whose stamp is more than ``max_gap_s`` away from where the previous one ended (stamp
    jitter is less, a lost chunk more), one at another rate, or one after a chunk the node
    would refuse (counted, skipped) starts a new file; stretches shorter than
    ``min_stretch_s`` (default: the shortest room recording train_onset --room takes) are
    left out (counted)."""
    import soundfile as sf
    from rclpy.serialization import deserialize_message

    from avag_core.events.onset_data import ROOM_MIN_S
    from avag_core.events.ring_buffer import check_chunk
    from avag_core.events.timebase import to_mono_float32
    from avag_ros import audio_inputs
    from avag_ros.bag.player import checked_messages, open_bag
    from avag_ros.conversions import stamp_to_ns
    from avag_ros.msg_types import get_message_class
    from avag_ros.param_files import node_config

    min_stretch_s = ROOM_MIN_S if min_stretch_s is None else min_stretch_s
    cfg = node_config(params_file, overrides)
    reader = open_bag(Path(bag))
    try:
        conns = [c for c in reader.connections if c.topic in (cfg.audio_topic, cfg.audio_info_topic)]
        if not any(c.topic == cfg.audio_topic for c in conns):
            present = ", ".join(sorted(c.topic for c in reader.connections))
            raise AvagError(f"bag {bag} has no {cfg.audio_topic} topic (topics: {present})")
        classes = {c.topic: get_message_class(c.msgtype) for c in conns}
        stretches: list[tuple[int, list[np.ndarray]]] = []
        info, end_ns, rate, refused = None, None, None, 0
        for conn, _t, raw in checked_messages(reader.messages(connections=conns), Path(bag)):
            msg = deserialize_message(bytes(raw), classes[conn.topic])
            if conn.topic == cfg.audio_info_topic:
                info = audio_inputs.RawAudioInfo(int(msg.sample_rate), int(msg.channels), str(msg.sample_format))
                continue
            start = stamp_to_ns(msg.header.stamp)
            try:
                samples, r = audio_inputs.to_numpy(msg, cfg.audio_type, info)
            except ValueError:
                samples = None
            checked = None if samples is None else check_chunk(samples, start, r, cfg.events)[1]
            if checked is None:  # the node would refuse it (format, rate, channels, length)
                refused += 1
                end_ns = None  # a hole: the next chunk starts a new file
                continue
            # as the node hears it: NaN/Inf samples 0, the mono mix within full scale
            x = to_mono_float32(np.where(np.isfinite(checked[0]), checked[0], np.float32(0.0)))
            mono = np.clip(x, -cfg.events.full_scale, cfg.events.full_scale)
            if r != rate or end_ns is None or abs(start - end_ns) > max_gap_s * 1e9:
                stretches.append((r, []))
            stretches[-1][1].append(mono)
            rate, end_ns = r, start + round(mono.size * 1e9 / r)
    finally:
        reader.close()
    tracks = [(r, np.concatenate(parts)) for r, parts in stretches]
    kept = [(r, t) for r, t in tracks if t.size >= min_stretch_s * r]
    if not kept:
        raise AvagError(f"bag {bag}: no stretch of {min_stretch_s:g} s of readable audio on {cfg.audio_topic} "
                        f"({refused} message(s) refused)")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for k, (r, track) in enumerate(kept):
        files.append(str(out / f"{Path(bag).name}_{k:03d}.wav"))
        sf.write(files[-1], track, r, subtype="FLOAT")
    return {"bag": str(bag), "files": files, "seconds": sum(t.size / r for r, t in kept), "refused": refused,
            "short": len(tracks) - len(kept)}


def add_parser(bag_sub: Any) -> None:
    a = bag_sub.add_parser("audio", help="a bag's microphone track -> WAV files (room recordings for "
                           "train_onset --room)")
    a.add_argument("bag", type=Path)
    a.add_argument("--out", type=Path, required=True, help="folder for the WAV files (one per contiguous stretch)")
    a.add_argument("--params-file", type=Path, default=None, help="the node's ROS 2 parameters file "
                   "(audio_topic, audio_type, audio_info_topic)")
    a.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="a node parameter, e.g. --set audio_topic=/mic/audio")
    a.set_defaults(func=_run)


def _run(args: Any) -> int:
    summary = export_room_audio(args.bag, args.out, args.params_file, args.overrides)
    print(f"{len(summary['files'])} file(s), {summary['seconds']:.1f} s of audio in {args.out}"
          + (f"; {summary['refused']} message(s) refused" if summary["refused"] else "")
          + (f"; {summary['short']} stretch(es) too short for a room file left out" if summary["short"] else ""))
    return 0
