"""Train the learned onset model (``EventConfig.detector = "learned"``) on CPU, reproducibly.

    python -m avag_core.events.train_onset --out onset.safetensors --seed 0        # one model
    python -m avag_core.events.train_onset --out onset.safetensors --seed 0,1,2    # an ensemble
    python -m avag_core.events.train_onset --out onset.safetensors --seed 0,1,2 --jobs 3   # the same file, sooner
    python -m avag_core.events.train_onset --out onset.safetensors --join s0.safetensors,s1.safetensors
    # a run that was stopped: the same command with --resume (each member from its last epoch)
    python -m avag_core.events.train_onset --out onset.safetensors --seed 0,1,2 --resume
    # the shipped file: six plain members and six with the convolution along the bands
    python -m avag_core.events.train_onset --out plain.safetensors --seed 0,1,2,3,4,5
    python -m avag_core.events.train_onset --out across.safetensors --seed 0,1,2,3,4,5 --across 8 --epochs 15
    python -m avag_core.events.train_onset --out onset.safetensors --join plain.safetensors,across.safetensors
    # adapt the shipped members to a room (recordings of it, no actions needed; README,
    # "Adapting the detector to a room")
    python -m avag_core.events.train_onset --out room.safetensors --room recordings/ \
        --init avag_core/checkpoints/onset.safetensors --streams 1200 --epochs 4 --lr 1e-3 --room-share 0.8
    # ... and weigh up the room's sounds the members still take for onsets (rain, pops)
    python -m avag_core.events.train_onset --out room.safetensors --room recordings/ \
        --init avag_core/checkpoints/onset.safetensors --streams 1200 --epochs 4 --lr 1e-3 --room-share 0.8 \
        --hard-negatives 4

Streams come from avag_core.events.onset_data (recordings the hearing benchmark does not
use). Whole streams are scored in one pass (the model has no padding), the loss is binary
cross-entropy on both outputs with the frame weights of the labels. The last
``--val-streams`` streams are held out; the script reports frame-level figures on them.
One thread per member, fixed seeds: the same command writes the same tensors and metadata on
the same machine, whether its members train in turn or ``--jobs N`` at a time in their own
processes (the file's header lists the metadata in another order on each run).
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avag_core.errors import AvagError
from avag_core.events.onset_data import (
    FRAME,
    HOP,
    MORE_RECORDINGS,
    OVERLAP_AFTER_S,
    OVERLAP_HEARD_DB,
    PAUSE_QUIET_DB,
    PAUSE_S,
    RETAKE_EQ_DB,
    RETAKE_P,
    RETAKE_SPEED,
    SHORT_ACTION_P,
    SILENT_P,
    SNR_DB,
    SR,
    SYNTH_PER_KIND,
    Library,
    StreamRecipe,
    load_library,
    load_room,
    make_stream,
    training_sources,
)
from avag_core.events.onset_features import MELS, band_starts, frames_of
from avag_core.events.onset_model import (
    ACROSS_KERNEL,
    OnsetEnsemble,
    OnsetNet,
    OnsetShape,
    load_onset_model,
    save_onset_model,
)
from avag_core.events.onset_state import load_member_state, recipe_of, save_member_state, state_path
from avag_core.user_cache import default_cache_dir

_ONSET_POS_WEIGHT = 4.0
HARD_NEGATIVE_P = 0.5  # --hard-negatives: a background frame at this onset probability would start an event
BAND_MASK_WIDTH = 12  # --band-mask: the widest run of adjacent mel bands hidden (a quarter of the 48)
# the shipped weights' shape (of its plain members; the others add --across 8): 4 s of context
# (a background that pops every second is heard as one), 8 frames (128 ms) of hindsight, each
# band's level against its recent peaks
SHIPPED_SHAPE = OnsetShape(dilations=(1, 2, 4, 8, 16, 32, 64), lookahead=8, peaks=True)


def _numbers(text: str, cast: type) -> tuple:
    """Comma-separated numbers, or () when one is not a number (the caller's check refuses it)."""
    try:
        return tuple(cast(v) for v in text.split(","))
    except ValueError:
        return ()


def _dilations(text: str) -> tuple[int, ...]:
    """``--dilations 1,2,4``: positive integers, else argparse's one-line usage error."""
    out = _numbers(text, int)
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return out


def share_arg(text: str) -> float:
    """A probability in [0, 1] (argparse type: a one-line usage error otherwise)."""
    out = _numbers(text, float)
    if len(out) != 1 or not 0.0 <= out[0] <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return out[0]


def _at_least_one(text: str) -> float:
    """A finite weight >= 1 (argparse type: 1 is the plain loss, below it would favour false onsets)."""
    v = float(text)
    if not (v >= 1.0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 1, got {text!r}")
    return v


def _jobs(text: str) -> int:
    """``--jobs N``: a positive integer (argparse type: a one-line usage error otherwise)."""
    out = _numbers(text, int)
    if len(out) != 1 or out[0] < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return out[0]


def _snr_range(text: str) -> tuple[float, float]:
    """``--snr-db -10,20``: LOW < HIGH."""
    out = _numbers(text, float)
    if len(out) != 2 or not out[0] < out[1]:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with LOW < HIGH, got {text!r}")
    return out


def _groups(text: str) -> tuple[str, ...]:
    """``--more-recordings colobot,asterisk``: names of onset_data.MORE_RECORDINGS."""
    out = tuple(v for v in text.split(",") if v)
    unknown = [v for v in out if v not in MORE_RECORDINGS]
    if unknown or not out:
        raise argparse.ArgumentTypeError(f"expected names from {', '.join(MORE_RECORDINGS)}, got {text!r}")
    return out


def _seeds(text: str) -> tuple[int, ...]:
    """``--seed 0`` or ``--seed 0,1,2``: distinct integers, else argparse's one-line usage error."""
    out = _numbers(text, int)
    if not out or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"expected one or more distinct integers, got {text!r}")
    return out


def stream_tensors(audio: np.ndarray, labels: np.ndarray, shape: OnsetShape) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input [features, receptive - 1 + frames] (zero context first, as streaming
    starts) and labels aligned with the outputs [frames, 3] (output t: frame t - lookahead)."""
    feats = shape.features(FRAME, HOP, SR)(frames_of(audio, FRAME, HOP))
    x = np.concatenate([np.zeros((shape.receptive - 1, shape.inputs), np.float32), feats], axis=0)
    y = np.zeros_like(labels)
    y[shape.lookahead:] = labels[: labels.shape[0] - shape.lookahead]  # the first outputs speak of no frame: weight 0
    return torch.from_numpy(x.T.copy()), torch.from_numpy(y)


def loss_of(logits: torch.Tensor, y: torch.Tensor, hard_negatives: float = 1.0) -> torch.Tensor:
    """logits [B, 2, T], y [B, T, 3] (onset, active, weight). ``hard_negatives`` > 1 multiplies
    the weight of every frame that is no onset but that the model, as it is now, scores at or
    above HARD_NEGATIVE_P (the detector's default ``learned_on``): the frames that would start
    a false event. Why: in a room of pops or drops most background frames are easy, and their
    plain mean hardly moves the few that fire."""
    w = y[..., 2]
    if hard_negatives != 1.0:
        fires = (torch.sigmoid(logits[:, 0].detach()) >= HARD_NEGATIVE_P) & (y[..., 0] == 0)
        w = w * torch.where(fires, hard_negatives, 1.0)
    on = F.binary_cross_entropy_with_logits(logits[:, 0], y[..., 0], reduction="none",
                                            pos_weight=torch.tensor(_ONSET_POS_WEIGHT))
    act = F.binary_cross_entropy_with_logits(logits[:, 1], y[..., 1], reduction="none")
    return ((on + 0.5 * act) * w).sum() / w.sum().clamp_min(1.0)


def mask_bands(x: torch.Tensor, shape: OnsetShape, p: float, gen: torch.Generator) -> torch.Tensor:
    """``--band-mask P``: in each stream of the batch ``x`` [B, features, frames], with
    probability ``p``, set one run of 1 to BAND_MASK_WIDTH adjacent mel bands to 0 in every
    per-band input (level against the background, rise since the last frame and, with peaks,
    level against the peaks): "at the background, no rise". The broadband level, the
    quarters and a ``percussive`` input stay. Why: a voice, a melody or a machine's hum covers some bands and leaves the
    rest, so the model is asked to find the onset in the bands the background leaves free.
    In place; draws from ``gen`` in stream order (one command, one file)."""
    starts = band_starts(shape.peaks)
    for b in range(x.shape[0]):
        if torch.rand(1, generator=gen).item() < p:
            width = int(torch.randint(1, BAND_MASK_WIDTH + 1, (1,), generator=gen))
            low = int(torch.randint(0, MELS - width + 1, (1,), generator=gen))
            for start in starts:
                x[b, start + low:start + low + width] = 0.0
    return x


def frame_report(model: OnsetNet, xs: torch.Tensor, ys: torch.Tensor) -> str:
    """Onset frames found (prob >= 0.5 within +-2 frames) and false frames per minute."""
    with torch.no_grad():
        p = torch.sigmoid(model(xs))[:, 0].numpy()
    y = ys.numpy()
    hits = total = false = 0
    for b in range(p.shape[0]):
        on = np.flatnonzero(y[b, :, 0] > 0)[::2]
        fired = p[b] >= 0.5
        total += on.size
        hits += sum(bool(fired[max(0, k - 2):k + 4].any()) for k in on)
        near = np.zeros_like(fired)
        for k in on:
            near[max(0, k - 2):k + 4] = True
        rising = fired & ~np.concatenate([[False], fired[:-1]])
        false += int((rising & ~near & (y[b, :, 2] > 0)).sum())
    minutes = p.shape[0] * p.shape[1] * HOP / SR / 60
    return f"onsets found {hits}/{total}, false rises {false / minutes:.1f}/min"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("avag_core/checkpoints/onset.safetensors"))
    ap.add_argument("--seed", type=_seeds, default=None, metavar="N[,N...]",
                    help="one seed, or several: one member per seed (trained in turn, or --jobs at a time), their logits averaged "
                    "(default 0; with --init one per member of that file, 0, 1, ...)")
    ap.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                    help="train up to N members at once, each in its own process on one thread (each holds "
                    "its own streams: about 2 GB at --streams 1200); the same tensors for any N")
    ap.add_argument("--streams", type=int, default=6000)
    ap.add_argument("--val-streams", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--short-actions", type=float, default=SHORT_ACTION_P,
                    help="probability that an action is a 10-80 ms transient (onset_data._short_action)")
    ap.add_argument("--ambient-share", type=share_arg, default=0.0,
                    help="extra share of streams over a recorded ambience alone (onset_data.background)")
    ap.add_argument("--retakes", type=share_arg, default=RETAKE_P, metavar="P",
                    help="share of backgrounds and actions played as another take: another speed "
                    f"({RETAKE_SPEED[0]:g}-{RETAKE_SPEED[1]:g}) through a random equaliser (+-{RETAKE_EQ_DB:g} dB; "
                    f"onset_data._retake); default {RETAKE_P:g}, the shipped weights' recipe")
    ap.add_argument("--gated", type=share_arg, default=0.0, metavar="P",
                    help="share of streams heard through a noise gate: exact zeros between the sounds "
                    "that open it (onset_data._gate); default 0, the shipped weights' recipe")
    ap.add_argument("--overlap", type=share_arg, default=0.0, metavar="P",
                    help="share of actions followed by the next while they still sound (its onset "
                    f"{OVERLAP_AFTER_S[0]:g}-{OVERLAP_AFTER_S[1]:g} s after theirs; an onset not "
                    f"{OVERLAP_HEARD_DB:g} dB above what sounds there counts for nothing); default 0, "
                    "the shipped weights' recipe")
    ap.add_argument("--silent", type=share_arg, default=SILENT_P, metavar="P",
                    help="share of streams with no background: each action rises out of exact zeros, "
                    f"its quiet lead-in included (what a noise suppressor sends); default {SILENT_P:g}, "
                    "the shipped weights' recipe")
    ap.add_argument("--pauses", type=share_arg, default=0.0, metavar="P",
                    help="share of actions that come right after a pause of the background "
                    f"({PAUSE_S[0]:g}-{PAUSE_S[1]:g} s of exact zeros or, as often, {PAUSE_QUIET_DB[0]:g}-"
                    f"{PAUSE_QUIET_DB[1]:g} dB quieter; onset_data._pause), and as many pauses with no action "
                    "after them; default 0, the shipped weights' recipe")
    ap.add_argument("--headroom", action=argparse.BooleanOptionalAction, default=False,
                    help="scale each training mix within full scale before the deliberate clipping of a hot "
                    "input (15 %% of the streams); without it the loud mixes clip wherever they exceed it")
    ap.add_argument("--snr-db", type=_snr_range, default=SNR_DB, metavar="LOW,HIGH",
                    help="range of the training actions' SNR in dB (onset_data.make_stream); write --snr-db=-10,20")
    ap.add_argument("--synth-actions", type=int, default=SYNTH_PER_KIND,
                    help="synthetic-world action sounds per kind added to the recordings (onset_data.load_library)")
    ap.add_argument("--more-recordings", type=_groups, default=(), metavar="NAME[,NAME...]",
                    help="also train on these groups of onset_data.MORE_RECORDINGS: " + ", ".join(MORE_RECORDINGS))
    ap.add_argument("--channels", type=int, default=SHIPPED_SHAPE.channels)
    ap.add_argument("--dilations", type=_dilations, default=SHIPPED_SHAPE.dilations,
                    help="comma-separated dilations of the causal layers (the context is 1 + 2 x their sum frames)")
    ap.add_argument("--lookahead", type=int, default=SHIPPED_SHAPE.lookahead,
                    help="frames of hindsight: output t speaks about frame t - lookahead")
    ap.add_argument("--peaks", action=argparse.BooleanOptionalAction, default=SHIPPED_SHAPE.peaks,
                    help="also give the model each band's level against its recent peaks (onset_features); "
                    "on by default, as in the shipped weights")
    ap.add_argument("--percussive", type=int, default=SHIPPED_SHAPE.percussive, metavar="SAMPLES",
                    help="also give the model the broadband part of a window of SAMPLES (a multiple of 256) "
                    "ending at each frame (the geometric mean across neighbouring bins: a voice's or an "
                    "instrument's harmonics drop out; onset_features.BroadbandPart); default 0 (none), "
                    "the shipped weights'")
    ap.add_argument("--clip-db", type=float, default=SHIPPED_SHAPE.clip_db, metavar="DB",
                    help="clip the input levels at +-DB (onset_features; stored in the file's shape); "
                    "default the shipped weights'")
    ap.add_argument("--across", type=int, default=SHIPPED_SHAPE.across, metavar="C",
                    help="C channels of a convolution along the mel bands of each frame's per-band inputs, "
                    f"{ACROSS_KERNEL} bands wide, before the projection (stored in the file's shape; 0: none)")
    ap.add_argument("--init", type=Path, default=None, metavar="FILE",
                    help="fine-tune this file's members instead of training new ones (each its own shape; "
                    "--channels, --dilations, --lookahead, --peaks, --percussive, --clip-db and --across do not apply)")
    ap.add_argument("--room", type=lambda t: tuple(v for v in t.split(",") if v), default=(), metavar="PATH[,...]",
                    help="recordings of the robot's room (audio files or folders of them; its background "
                    "sounds, no actions needed): a share of the streams (--room-share) plays them as background")
    ap.add_argument("--room-share", type=share_arg, default=0.5, metavar="P",
                    help="share of the streams over the --room recordings (the rest as the recipe draws them)")
    ap.add_argument("--hard-negatives", type=_at_least_one, default=1.0, metavar="W",
                    help="weight W on background frames the model currently scores as an onset "
                    f"(probability >= {HARD_NEGATIVE_P:g}): its false events count W times in the loss "
                    "(loss_of); default 1 (off), the shipped weights' recipe")
    ap.add_argument("--band-mask", type=share_arg, default=0.0, metavar="P",
                    help=f"share of training streams with a run of 1-{BAND_MASK_WIDTH} adjacent mel bands hidden from "
                    "the model (mask_bands); default 0, the shipped weights' recipe")
    ap.add_argument("--cache", type=Path, default=default_cache_dir() / "onset_train")
    ap.add_argument("--resume", action="store_true",
                    help="continue a stopped run of this command: each member from the state it wrote after "
                    "its last whole epoch (OUT.seedN.state.pt; removed once OUT is written), the same "
                    "tensors as a run never stopped; a state of another recipe is refused")
    ap.add_argument("--join", type=lambda t: [Path(v) for v in t.split(",")], default=None, metavar="A,B,...",
                    help="train nothing: write one file holding every member of these trained files (one "
                    "input and timing, --across may differ; e.g. members trained in parallel with one seed each)")
    args = ap.parse_args(argv)
    if args.join:
        return _join(ap, args.join, args.out)
    try:
        shape = OnsetShape(channels=args.channels, dilations=args.dilations, lookahead=args.lookahead,
                            peaks=args.peaks, percussive=args.percussive, clip_db=args.clip_db,
                            across=args.across)
        starts = _initial_members(args.init)
        room = load_room(args.room) if args.room else []
        if args.more_recordings:  # a group that cannot be read (a damaged packed file) stops here, in one line
            training_sources(args.more_recordings)
    except (AvagError, ValueError) as e:
        ap.error(str(e))
    if starts:  # one seed per member to fine-tune, in the file's shape
        shape = starts[0].shape
        args.seed = args.seed or tuple(range(len(starts)))
        if len(args.seed) != len(starts):
            ap.error(f"--seed gives {len(args.seed)} seed(s) for the {len(starts)} member(s) of --init {args.init}")
    else:
        args.seed = args.seed or (0,)
    if args.streams < args.batch or args.epochs < 1:
        ap.error(f"--streams ({args.streams}) must hold at least one --batch ({args.batch}) and --epochs must be >= 1")
    states = [state_path(args.out, seed) for seed in args.seed]
    if args.resume:
        try:
            for seed, path in zip(args.seed, states, strict=True):
                load_member_state(path, seed, recipe_of(args))
        except AvagError as e:
            ap.error(str(e))
    elif any(p.is_file() for p in states):
        print(f"train_onset: starting anew over the states of a stopped run next to {args.out} "
              "(--resume continues it)", file=sys.stderr)
    _one_thread()
    t0 = time.time()
    try:
        members = train_members(args, shape, starts, room)
    except BrokenProcessPool:
        print(f"train_onset: error: a training process died (out of memory? fewer --jobs than {args.jobs}); "
              f"nothing written to {args.out}", file=sys.stderr)
        return 1
    model = members[0] if len(members) == 1 else OnsetEnsemble(members=members)
    adapted = ({"init": args.init.name if args.init else "", "room_recordings": str(len(room)),
                "room_seconds": f"{sum(r.size for r in room) / SR:.1f}", "room_share": str(args.room_share)}
               if args.init or room else {})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_onset_model(model, args.out, {"seed": ",".join(map(str, args.seed)), "streams": str(args.streams),
                                       "epochs": str(args.epochs),
                                       "short_actions": str(args.short_actions),
                                       "synth_actions": str(args.synth_actions),
                                       "recordings": ",".join(("default", *args.more_recordings)),
                                       "ambient_share": str(args.ambient_share),
                                       "snr_db": ",".join(f"{v:g}" for v in args.snr_db),
                                       "retakes": str(args.retakes), "headroom": str(int(args.headroom)),
                                       "gated": str(args.gated), "overlap": str(args.overlap),
                                       "silent": str(args.silent), "pauses": str(args.pauses),
                                       "hard_negatives": f"{args.hard_negatives:g}",
                                       "band_mask": f"{args.band_mask:g}",
                                       **adapted})
    for path in states:
        path.unlink(missing_ok=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) in {time.time() - t0:.0f} s")
    return 0


def _one_thread() -> None:
    """What makes a member's training the same on every run: one thread, deterministic kernels."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def _worker(parent: int) -> None:
    """A ``--jobs`` worker: one thread (``_one_thread``), and it ends when the command does. Why:
    a command stopped with SIGTERM (``kill``, a launch file, a service manager) would otherwise
    leave its workers training on, each holding a core and gigabytes, for minutes."""
    _one_thread()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the kernel's signal when the parent dies
    if os.getppid() != parent:  # it died before that was set
        os._exit(1)


def train_members(args: argparse.Namespace, shape: OnsetShape, starts: list[OnsetNet],
                  room: list[np.ndarray]) -> list[OnsetNet]:
    """One member per seed, in order, ``args.jobs`` at a time. Why processes: a member trains
    on one thread (so the same command writes the same file), and each depends only on its
    own seed, start and room, so a machine with more cores trains several at once and the
    file is the same for any ``--jobs``. Why spawned, not forked: torch refuses autograd in a
    child forked after its parent ran autograd's threads, and a caller of ``main`` may have."""
    work = [(args, seed, shape, starts[i] if starts else None, room) for i, seed in enumerate(args.seed)]
    if args.jobs == 1 or len(work) == 1:
        return [train_member(*w) for w in work]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(args.jobs, len(work)), mp_context=ctx, initializer=_worker,
                             initargs=(os.getpid(),)) as pool:
        return list(pool.map(train_member, *zip(*work, strict=True)))


def _initial_members(path: Path | None) -> list[OnsetNet]:
    """The members of a trained file (``--init``: each the start of one fine-tuned member;
    ``--join``: each a member of the joined file)."""
    if path is None:
        return []
    model = load_onset_model(path)
    return list(model.members) if isinstance(model, OnsetEnsemble) else [model]


def train_member(args: argparse.Namespace, seed: int, shape: OnsetShape, start: OnsetNet | None = None,
                 room: list[np.ndarray] | None = None) -> OnsetNet:
    """One model from its own seed's streams: the same tensors whether trained alone
    (``--seed 1``) or as a member (``--seed 0,1,2``). From ``start``'s weights when given
    (``--init``), with a share of the streams over ``room`` (``--room``); from its state after
    its last whole epoch with ``--resume`` (onset_state)."""
    t0 = time.time()
    torch.manual_seed(seed)
    recipe_text, state_file = recipe_of(args), state_path(args.out, seed)
    state = load_member_state(state_file, seed, recipe_text) if args.resume else None
    if state is not None and state["epoch"] >= args.epochs:  # no streams needed
        model = OnsetNet(shape=shape if start is None else start.shape)
        model.load_state_dict(state["model"])
        print(f"seed {seed}: trained before (--resume)", flush=True)
        return model
    lib = load_library(args.cache, seed, args.synth_actions, args.more_recordings)
    lib.room = room or []
    rng = np.random.default_rng(seed)
    recipe = StreamRecipe(short_action_p=args.short_actions, ambient_p=args.ambient_share, snr_db=args.snr_db,
                          retake_p=args.retakes, headroom=args.headroom,
                          room_p=args.room_share if lib.room else 0.0, gate_p=args.gated,
                          overlap_p=args.overlap, silent_p=args.silent, pause_p=args.pauses)
    xs, ys = _stream_store(lib, rng, args.streams + args.val_streams, recipe, shape)
    xv, yv = _with_context(xs[args.streams:], shape), ys[args.streams:]
    xs, ys = xs[: args.streams], ys[: args.streams]
    print(f"seed {seed}: {len(lib.actions)} actions, {len(lib.music)} music, {len(lib.ambient)} ambient, "
          f"{len(lib.room)} room recordings; "
          f"{args.streams} + {args.val_streams} streams in {time.time() - t0:.0f} s", flush=True)
    model = OnsetNet(shape=shape if start is None else start.shape)  # a member keeps its own across
    if start is not None:
        model.load_state_dict(start.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (args.streams // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    mask_gen = torch.Generator().manual_seed(1000 + seed)
    done = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gens"][0])
        mask_gen.set_state(state["gens"][1])
        done = state["epoch"]
        print(f"seed {seed}: resumed after epoch {done}/{args.epochs}", flush=True)
    for epoch in range(done, args.epochs):
        model.train()
        order = torch.randperm(args.streams, generator=gen)
        total = 0.0
        for i in range(args.streams // args.batch):
            idx = order[i * args.batch:(i + 1) * args.batch]
            x = _with_context(xs[idx], shape)
            if args.band_mask:
                x = mask_bands(x, shape, args.band_mask, mask_gen)
            loss = loss_of(model(x), ys[idx], args.hard_negatives)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        model.eval()
        with torch.no_grad():
            val = float(loss_of(model(xv), yv))
        print(f"seed {seed} epoch {epoch + 1}/{args.epochs}: train {total / (args.streams // args.batch):.4f} "
              f"val {val:.4f}  {frame_report(model, xv, yv)}  ({time.time() - t0:.0f} s)", flush=True)
        save_member_state(state_file, seed=seed, recipe=recipe_text, epoch=epoch + 1, model=model, opt=opt,
                          sched=sched, gens=[gen, mask_gen])
    return model


def _stream_store(lib: Library, rng: np.random.Generator, n: int, recipe: StreamRecipe,
                  shape: OnsetShape) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` streams' features [n, features, frames] without the zero context, and labels
    [n, frames, 3], filled in place. Why: stacking a list of streams with their context held
    the data twice at the peak (1208 streams: peak RSS 1.87 GB before, 1.27 GB with this); a
    batch gets its all-zero context back in ``_with_context``, so training sees the same numbers."""
    skip = shape.receptive - 1
    xs = ys = None
    for i in range(n):
        x, y = stream_tensors(*make_stream(lib, rng, recipe), shape)
        if xs is None:
            xs = torch.empty((n, x.shape[0], x.shape[1] - skip), dtype=x.dtype)
            ys = torch.empty((n, *y.shape), dtype=y.dtype)
        xs[i], ys[i] = x[:, skip:], y
    return xs, ys


def _with_context(x: torch.Tensor, shape: OnsetShape) -> torch.Tensor:
    """Model input with the zero context in front, as ``stream_tensors`` makes it."""
    return F.pad(x, (shape.receptive - 1, 0))


def _join(ap: argparse.ArgumentParser, paths: list[Path], out: Path) -> int:
    """``--join``: one file holding the members of the given files, in order (the recipe
    metadata all of them agree on, and every member's seed). A file may itself hold several,
    and members with and without ``--across`` may be joined."""
    from avag_core.weights.checkpoint import read_safetensors

    try:
        members = [m for p in paths for m in _initial_members(p)]
        ensemble = OnsetEnsemble(members=members)
    except (AvagError, ValueError) as e:
        ap.error(str(e))
    metas = [read_safetensors(p, "onset model")[1] for p in paths]
    meta = {k: v for k, v in metas[0].items()
            if k not in ("format", "members", "member_across", *OnsetShape().to_meta())
            and all(m.get(k) == v for m in metas)}
    meta["seed"] = ",".join(m.get("seed", "?") for m in metas)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_onset_model(ensemble, out, meta)
    print(f"wrote {out}: {len(members)} members ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
