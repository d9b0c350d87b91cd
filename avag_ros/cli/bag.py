"""`avag bag`: synthetic bags, replay evaluation, play and record (no rosbag2_py needed)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bag", help="rosbag2 tools: record-synth, eval, play, record, info, extract, audio",
                       description=__doc__)
    bag_sub = p.add_subparsers(dest="bag_command", metavar="BAG_COMMAND", required=True)

    r = bag_sub.add_parser("record-synth", help="dataset samples -> a realistic camera+microphone bag")
    r.add_argument("--data", type=Path, required=True, help="dataset root in AVAGD layout")
    r.add_argument("--split", default="val", help="CSV name without .csv (default: val)")
    r.add_argument("--out", type=Path, required=True, help="bag folder to create")
    r.add_argument("--limit", type=int, default=None, help="at most this many samples")
    r.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    r.add_argument("--scene-s", type=float, default=3.0, help="seconds each sample is shown")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=_record_synth)

    e = bag_sub.add_parser("eval", help="replay a bag through the node pipeline and score it")
    e.add_argument("bag", type=Path)
    e.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    e.add_argument("--out", type=Path, default=Path("out/bag_eval"), help="report folder")
    e.add_argument("--live", action="store_true",
                   help="also play it into a real avag_node over DDS; fails unless live agrees with offline")
    e.add_argument("--params-file", type=Path, default=None,
                   help="the node's ROS 2 parameters file (e.g. config/avag.yaml or your robot's)")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override one node parameter, e.g. --set function_threshold=0.6 --set events.on_db=8")
    e.add_argument("--device", default=None, help="override the device parameter (cpu, cuda, cuda:N)")
    e.add_argument("--rate", type=float, default=1.0, help="live playback speed")
    e.set_defaults(func=_eval)

    pl = bag_sub.add_parser("play", help="publish a bag's messages at their recorded pace")
    pl.add_argument("bag", type=Path)
    pl.add_argument("--rate", type=float, default=1.0)
    pl.add_argument("--clock", type=float, default=0.0, help="publish /clock at this rate (Hz)")
    pl.set_defaults(func=_play)

    rc = bag_sub.add_parser("record", help="record topics into a bag (NAME:pkg/msg/Type ...)")
    rc.add_argument("--out", type=Path, required=True)
    rc.add_argument("topics", nargs="+")
    rc.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    rc.set_defaults(func=_record)

    i = bag_sub.add_parser("info", help="topics, types and message counts")
    i.add_argument("bag", type=Path)
    i.set_defaults(func=_info)

    from avag_ros.bag.extract import add_parser as add_extract_parser

    add_extract_parser(bag_sub)  # `avag bag extract`

    from avag_ros.bag.room_audio import add_parser as add_audio_parser

    add_audio_parser(bag_sub)  # `avag bag audio`


def _record_synth(args: argparse.Namespace) -> int:
    from avag_ros.bag.synth_bag import SynthBagConfig, load_scenes, write_synth_bag

    scenes = load_scenes(args.data, args.split, args.limit)
    info = write_synth_bag(scenes, args.out, SynthBagConfig(scene_s=args.scene_s, seed=args.seed), args.storage)
    print(f"wrote {args.out}: {info['scenes']} scenes, {info['duration_s']:.1f} s ({args.storage})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from avag_ros.bag.evaluate import evaluate_bag

    result = evaluate_bag(args.bag, args.checkpoint, args.out, live=args.live, device=args.device,
                          rate=args.rate, params_file=args.params_file, overrides=args.overrides)
    print_summary(result)
    return verdict(result)


def verdict(result: dict) -> int:
    """Exit status of a replay: 1 with one line per reason when the loop did not work."""
    import sys

    for reason in result["failures"]:
        print(f"avag: error: {reason}", file=sys.stderr)
    return 1 if result["failures"] else 0


def print_summary(result: dict) -> None:
    rows = [("offline", result["offline"])] + ([("live", result["live"])] if "live" in result else [])
    print(f"{'replay':>8} {'events':>6} {'dets':>5} {'P':>6} {'R':>6} {'mIoU_f':>7} {'F_f':>6} "
          f"{'mIoU_d':>7} {'F_d':>6} {'ms p50':>7} {'ms p95':>7}")
    for name, r in rows:
        ev, lat = r["events"], r["latency_ms"]
        seg = {k: r["segmentation"].get(k, float("nan"))
               for k in ("miou_function", "fscore_function", "miou_dependency", "fscore_dependency")}
        print(f"{name:>8} {ev['ground_truth']:>6} {ev['detections']:>5} {ev['precision']:>6.3f} {ev['recall']:>6.3f} "
              f"{seg['miou_function']:>7.3f} {seg['fscore_function']:>6.3f} {seg['miou_dependency']:>7.3f} "
              f"{seg['fscore_dependency']:>6.3f} {lat['inference_median']:>7.1f} {lat['inference_p95']:>7.1f}")
    if "live_vs_offline" in result:
        c = result["live_vs_offline"]
        print(f"live vs offline: same events: {c['same_events']}, function-mask IoU min {c['mask_iou_min']:.4f}, "
              f"grasp regions missing live: {c['missing_clouds']}")
        if c.get("ended_by_bag_end"):
            print(f"  (not compared: {c['ended_by_bag_end']} event(s) still sounding when the bag ended; only the "
                  "offline replay closes those, a live node never sees the stream end)")
    print(f"offline detections with depth but no grasp region: {result['offline']['missing_clouds']}")
    for name, r in rows:
        h = r["heard"]
        if h["distractors"]:
            print(f"{name}: {h['distractors']} sound(s) that are not actions: {h['rejected']} rejected, "
                  f"{h['not_heard']} not an event, {h['given_masks']} given masks; "
                  f"actions rejected: {h['actions_rejected']}")
        if r.get("rejected"):
            heard = ", ".join(f"{x['label']} {x['confidence']:.2f}" for x in r["rejected"])
            print(f"{name}: {len(r['rejected'])} sound(s) rejected as not actions (no masks): {heard}")
    print(f"report: {result['report']}")


def _play(args: argparse.Namespace) -> int:
    from avag_ros.bag.player import main

    return main([str(args.bag), "--rate", str(args.rate), "--clock", str(args.clock)])


def _record(args: argparse.Namespace) -> int:
    from avag_ros.bag.recorder import main

    return main(["--out", str(args.out), "--storage", args.storage, *[a for t in args.topics for a in ("--topic", t)]])


def _info(args: argparse.Namespace) -> int:
    from avag_ros.bag.player import open_bag

    reader = open_bag(args.bag)
    try:
        print(f"{args.bag}: {reader.message_count} messages, {(reader.end_time - reader.start_time) / 1e9:.2f} s")
        for c in reader.connections:
            print(f"  {c.topic:<45} {c.msgtype:<35} {c.msgcount:>7}")
    finally:
        reader.close()
    return 0
