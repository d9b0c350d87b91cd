"""`avag demo`: the whole robot loop on a built-in synthetic scene, in a few minutes.

Synthesises a small AV-AG dataset, turns its validation scenes into a camera + microphone
rosbag (each scene: an action sound, then a sound that is not an action: speech, a cough,
clapping, music, an alarm, footsteps), plays it over DDS into the real perception node
running the shipped checkpoint, records what the node publishes, and writes overlays,
grasp-region point clouds (PLY) and a report (HTML + JSON) to the output folder. It judges
itself: the exit status is 1, with one line per reason, when an action was missed or
rejected, a sound that is not an action got masks, the live node disagreed with the
offline replay, or no grasp region was published where depth exists.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from pathlib import Path

from avag_core.errors import AvagError
from avag_ros.bag.synth_bag import DEMO_BACKGROUND_SNR_DB, DEMO_BACKGROUNDS

# The demo plays its bag at twice real time: it stays a live test (the node must keep up
# with twice what a robot streams) and ends in about half the time.
DEMO_RATE = 2.0


def demo_failures(result: dict) -> list[str]:
    """What the demo knows that a user's bag does not: every action must be heard and
    get masks, and no sound that is not an action may get any (one line per reason)."""
    out = []
    for name in ("offline", "live"):
        r = result.get(name)
        if r is None:
            continue
        ev, h = r["events"], r["heard"]
        if ev["matched"] < ev["ground_truth"]:
            out.append(f"{name}: detected {ev['matched']} of {ev['ground_truth']} scene actions")
        if h["actions_rejected"]:
            out.append(f"{name}: {h['actions_rejected']} action(s) rejected as not actions")
        if h["given_masks"]:
            out.append(f"{name}: {h['given_masks']} of {h['distractors']} sound(s) that are not actions got masks")
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the perception node on a built-in synthetic scene bag",
                       description=__doc__)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    p.add_argument("--scenes", type=int, default=4, help="number of scenes (sound events)")
    p.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.add_argument("--params-file", type=Path, default=None, help="the node's ROS 2 parameters file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override one node parameter")
    p.add_argument("--backgrounds", default=",".join(DEMO_BACKGROUNDS), metavar="NAMES",
                   help="real recordings played under the whole bag: comma-separated 'speech', 'music' "
                   f"(shipped) or audio file paths; '' = noise only (default: {','.join(DEMO_BACKGROUNDS) or 'none'})")
    p.add_argument("--background-snr-db", type=float, default=DEMO_BACKGROUND_SNR_DB,
                   help="the actions' level over the backgrounds (dB)")
    p.add_argument("--rate", type=float, default=DEMO_RATE,
                   help=f"playback speed of the bag into the node (default: {DEMO_RATE:g}, twice real time: the node "
                   "must keep up with twice its live input; 1 = real time, as a robot streams)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avag_core.data.synth import generate
    from avag_ros.adapter import default_checkpoint
    from avag_ros.bag.evaluate import LiveRun, eval_config, evaluate_bag
    from avag_ros.bag.synth_bag import demo_bag_config, load_scenes, write_synth_bag
    from avag_ros.cli.bag import print_summary, verdict

    if not 0.1 <= args.rate <= 10.0:  # before anything is written or started
        raise AvagError(f"--rate {args.rate:g} is outside 0.1-10")
    t0 = time.monotonic()
    # Stay on this machine and out of other ROS graphs unless the user chose otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random().randrange(100, 200)))
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    checkpoint = args.checkpoint or default_checkpoint()
    cfg, node_args = eval_config(checkpoint, args.device, args.params_file, args.overrides)
    # the node starts now: its start-up overlaps making the scenes (the offline replay waits
    # for it and then runs while the bag plays)
    with LiveRun(cfg, out / "report" / "live", node_args, args.rate) as node:
        print(f"[1/3] synthesising scenes (seed {args.seed})")
        data = generate(out / "data", seed=args.seed, size="tiny", splits=("val",))
        scenes = load_scenes(data, "val", limit=args.scenes)
        bag = out / "scenes_bag"
        backgrounds = tuple(b.strip() for b in args.backgrounds.split(",") if b.strip())
        info = write_synth_bag(scenes, bag, demo_bag_config(args.seed, backgrounds, args.background_snr_db))
        print(f"      {bag}: {info['scenes']} scenes, {info['duration_s']:.1f} s of camera + microphone; "
              f"between the actions: {', '.join(info['distractor_kinds'])} (not actions)"
              + (f"; under everything: {', '.join(info['backgrounds'])} ({args.background_snr_db:g} dB below "
                 "the actions)" if info["backgrounds"] else ""))
        print(f"[2/3] playing it into avag_node ({checkpoint.name}, {args.device or 'cpu'}) over DDS"
              + (f" at {args.rate:g}x real time" if args.rate != 1.0 else ""))
        result = evaluate_bag(bag, checkpoint, out / "report", device=args.device, params_file=args.params_file,
                              overrides=args.overrides, live_run=node)
    result["failures"][:0] = demo_failures(result)
    print("[3/3] report")
    print_summary(result)
    print(f"\noverlays:       {out / 'report' / 'overlays'}")
    print(f"point clouds:   {out / 'report' / 'grasp_regions'} (PLY, camera optical frame)")
    print(f"report:         {out / 'report' / 'index.html'}")
    print(f"node outputs:   {out / 'report' / 'live' / 'node_outputs'} (rosbag2)")
    print(f"done in {time.monotonic() - t0:.0f} s")
    status = verdict(result)
    print("demo: " + ("FAILED (see the errors above)" if status else
                      "ok: every action detected and named, no masks for sounds that are not actions, "
                      "live matches offline, grasp regions where depth exists"))
    return status
