"""Training the action head on cached clip embeddings, the segmentation model frozen.

    python -m avag_core.hearing.train --checkpoint CKPT --data data/synth [--out HEAD]
    (same as ``avag heard train``)

Data: the action clips of an AVAGD-layout data set (the affordance is the class; ``avag
data synth`` output works as is) plus distractor clips (``data/synth/distractors.py``) as
the ``none`` class. Embeddings are computed once per checkpoint and cached in ``--work``,
so training takes seconds. Validation clips fit the temperature and choose the default
threshold: the highest one that loses at most ``--max-action-loss`` of validation actions.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avag_core.errors import AvagError

from .action_head import NONE, ActionHead, HeadConfig
from .calibration import fit_temperature
from .embedding import AudioEmbedder, audio_fingerprint
from .metrics import accepted_mask

DISTRACTOR_SEEDS = {"train": 1001, "val": 1002, "unseen": 1003}
DISTRACTORS_PER_KIND = {"train": 60, "val": 25, "unseen": 40}
HEARD_VIEWS = 4  # stream-event views (``as_heard``) per clip, besides the clean clip


@dataclass
class ClipSet:
    """Embeddings of one split: ``labels`` are affordances or ``none``; ``kinds`` name the
    distractor kind (or the affordance); ``rows`` index the split's CSV rows (-1: distractor);
    ``heard`` marks views re-framed as a stream event (``as_heard``), the others are clean."""

    feats: torch.Tensor
    labels: list[str]
    kinds: list[str]
    rows: list[int]
    heard: list[bool]

    def select(self, keep: list[bool]) -> ClipSet:
        idx = [i for i, k in enumerate(keep) if k]
        return ClipSet(self.feats[idx], [self.labels[i] for i in idx], [self.kinds[i] for i in idx],
                       [self.rows[i] for i in idx], [self.heard[i] for i in idx])


@dataclass
class TrainConfig:
    epochs: int = 120
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-3
    feature_noise: float = 0.3  # Gaussian noise on standardised features (regulariser)
    seed: int = 0


def split_rows(data_root: Path, split: str):
    from avag_core.data.rows import read_rows, resolve_csv

    csv = resolve_csv(data_root, f"{split}.csv")
    return [r for r in read_rows(data_root, csv) if r.error is None]


def distractors_per_kind(split: str, train_per_kind: int | None = None) -> int:
    """Distractor clips per kind in ``split``; ``train_per_kind`` rescales every split."""
    base = DISTRACTORS_PER_KIND.get(split, 25)
    if train_per_kind is None:
        return base
    return max(1, -(-base * train_per_kind // DISTRACTORS_PER_KIND["train"]))


def embed_split(embedder: AudioEmbedder, data_root: Path, split: str,
                per_kind: int | None = None, views: int = HEARD_VIEWS) -> ClipSet:
    """Action clips of ``split`` plus that split's distractors, embedded: each clip clean
    and in ``views`` random stream-event views (``as_heard``, the same for both kinds)."""
    from avag_core.data.audio_io import load_audio
    from avag_core.data.synth.distractors import distractor_set
    from avag_core.modeling.audio_frontend import to_mono_16k

    from .as_heard import as_heard, background_kinds

    seed = DISTRACTOR_SEEDS.get(split, 1000 + len(split))
    bg_kinds = background_kinds()
    patches, labels, kinds, rows, heard = [], [], [], [], []

    def add(clip: np.ndarray, label: str, kind: str, row: int, key: int) -> None:
        for v in range(views + 1):
            wave = clip if v == 0 else as_heard(clip, np.random.default_rng([seed, key, v]), 16000, bg_kinds)
            patches.append(embedder.patches(wave, 16000))
            labels.append(label)
            kinds.append(kind)
            rows.append(row)
            heard.append(v > 0)

    for i, row in enumerate(split_rows(data_root, split)):
        wave, rate = load_audio(row.audio)
        aff = row.category.split("/")[-1]
        add(to_mono_16k(wave, rate).numpy(), aff, aff, i, i)
    for j, (kind, clip) in enumerate(distractor_set(distractors_per_kind(split, per_kind), seed)):
        add(clip, NONE, kind, -1, 100_000 + j)
    return ClipSet(embedder.embed_patches(patches), labels, kinds, rows, heard)


def cached_split(model, data_root: Path, split: str, work: Path,
                 per_kind: int | None = None) -> ClipSet:
    """``embed_split`` cached on disk by checkpoint audio weights, data folder and split."""
    from safetensors.torch import save_file

    from avag_core.data.synth.distractors import available_kinds
    from avag_core.weights.checkpoint import read_safetensors

    from .as_heard import RECIPE, background_kinds

    ident = json.dumps([audio_fingerprint(model), str(data_root.resolve()), split,
                        DISTRACTOR_SEEDS.get(split), distractors_per_kind(split, per_kind),
                        available_kinds(), background_kinds(), HEARD_VIEWS, RECIPE, 3])
    key = hashlib.sha1(ident.encode()).hexdigest()[:16]
    path = work / f"heard_{split}_{key}.safetensors"
    if path.is_file():
        t, meta = read_safetensors(path, "embedding cache")
        return ClipSet(t["feats"], json.loads(meta["labels"]), json.loads(meta["kinds"]),
                       t["rows"].tolist(), t["heard"].bool().tolist())
    cs = embed_split(AudioEmbedder.from_source(model), data_root, split, per_kind)
    work.mkdir(parents=True, exist_ok=True)
    save_file({"feats": cs.feats.contiguous(), "rows": torch.tensor(cs.rows),
               "heard": torch.tensor(cs.heard, dtype=torch.uint8)}, str(path),
              metadata={"labels": json.dumps(cs.labels), "kinds": json.dumps(cs.kinds)})
    return cs


def row_label(head_cfg: HeadConfig, label: str, kind: str) -> int:
    """Index of a clip's row: its action, or its distractor kind for ``none``."""
    rows = head_cfg.rows
    return rows.index(label) if label != NONE else rows.index(kind if kind in rows else NONE)


def train_head(train: ClipSet, actions: list[str], cfg: TrainConfig) -> ActionHead:
    """Fit a head whose classes are ``actions`` + ``none`` (one row per distractor kind)
    on ``train`` (clips of other actions are dropped)."""
    classes = [*actions, NONE]
    data = train.select([lab in classes for lab in train.labels])
    kinds = sorted({k for k, lab in zip(data.kinds, data.labels, strict=True) if lab == NONE})
    torch.manual_seed(cfg.seed)
    head = ActionHead(cfg=HeadConfig(in_dim=int(data.feats.shape[1]), classes=classes, none_kinds=kinds))
    head.set_standardisation(data.feats)
    y = torch.tensor([row_label(head.cfg, lab, k) for lab, k in zip(data.labels, data.kinds, strict=True)])
    # Balance rows: actions and distractor kinds come in different counts.
    counts = torch.bincount(y, minlength=len(head.cfg.rows)).float().clamp_min(1)
    weight = (counts.sum() / counts) / len(head.cfg.rows)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = y.numel()
    steps = cfg.epochs * max(1, (n + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    head.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            x = data.feats[idx]
            x = x + cfg.feature_noise * head.feat_std * torch.randn(x.shape, generator=g)
            loss = F.cross_entropy(head(x), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


@torch.no_grad()
def head_probs(head: ActionHead, feats: torch.Tensor, temperature: float = 1.0,
               enrolled=None) -> torch.Tensor:
    """Probabilities over the head's classes (+ enrolled), kinds merged into ``none``."""
    return head.probs(feats, temperature, enrolled)


def labels_of(cs: ClipSet, classes: list[str]) -> torch.Tensor:
    return torch.tensor([classes.index(lab) for lab in cs.labels])


def choose_threshold(probs: torch.Tensor, is_action: torch.Tensor, classes: list[str],
                     max_action_loss: float) -> float:
    """The highest threshold on a 0.01 grid that loses at most ``max_action_loss`` more of
    the true actions than the top-1 decision alone (actions heard as ``none`` are lost at
    any threshold), rejecting as many distractors as that allows."""

    def loss(t: float) -> float:
        return float((~accepted_mask(probs, classes, t)[is_action]).float().mean())

    floor = loss(0.0)
    best = 0.0
    for t in np.arange(0.0, 1.0, 0.01):
        if loss(float(t)) <= floor + max_action_loss:
            best = float(t)
    return round(best, 2)


def fit(model, data_root: Path, work: Path, actions: list[str] | None = None,
        max_action_loss: float = 0.01, cfg: TrainConfig | None = None,
        per_kind: int | None = None):
    """Train + calibrate + choose the threshold. Returns (head, temperature, threshold, sets)."""
    cfg = cfg or TrainConfig()
    sets = {s: cached_split(model, data_root, s, work, per_kind) for s in ("train", "val")}
    if actions is None:
        actions = sorted({lab for lab in sets["train"].labels if lab != NONE})
    head = train_head(sets["train"], actions, cfg)
    classes = head.cfg.classes
    val = sets["val"].select([lab in classes for lab in sets["val"].labels])
    with torch.no_grad():
        logits = head(val.feats)
    rows = torch.tensor([row_label(head.cfg, lab, k) for lab, k in zip(val.labels, val.kinds, strict=True)])
    temperature = fit_temperature(logits, rows)
    probs = head_probs(head, val.feats, temperature)
    is_action = torch.tensor([lab != NONE for lab in val.labels])
    threshold = choose_threshold(probs, is_action, classes, max_action_loss)
    return head, temperature, threshold, sets


def main(argv: list[str] | None = None) -> int:
    from avag_core.cli.heard import add_train_arguments

    parser = argparse.ArgumentParser(prog="avag heard train", description=__doc__.split("\n\n")[0])
    add_train_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from avag_core.weights.checkpoint import load_model_checkpoint

    from .head_file import HeadFile, head_path_for, save_head

    torch.set_num_threads(max(1, args.threads))
    data = Path(args.data)
    if args.distractors_per_kind < 1 or args.epochs < 1:
        raise AvagError("--distractors-per-kind and --epochs must be at least 1")
    if not 0.0 <= args.max_action_loss <= 1.0:
        raise AvagError(f"--max-action-loss must be in [0, 1], got {args.max_action_loss}")
    if not (data / "train.csv").is_file() or not (data / "val.csv").is_file():
        raise AvagError(f"{data} has no train.csv and val.csv (make one with `avag data synth`)")
    t0 = time.monotonic()
    model, mcfg = load_model_checkpoint(args.checkpoint)
    cfg = dataclasses.replace(TrainConfig(), epochs=args.epochs, seed=args.seed)
    head, temperature, threshold, sets = fit(model, data, Path(args.work),
                                             max_action_loss=args.max_action_loss, cfg=cfg,
                                             per_kind=args.distractors_per_kind)
    out = Path(args.out) if args.out else head_path_for(args.checkpoint)
    meta = json.loads((data / "metadata.json").read_text()) if (data / "metadata.json").is_file() else {}
    info = {"data": {k: meta[k] for k in ("generator", "size", "seed") if k in meta} or str(data),
            "train_clips": len(sets["train"].labels),
            "max_action_loss": args.max_action_loss, "epochs": cfg.epochs, "seed": cfg.seed,
            "distractors_per_kind": args.distractors_per_kind,
            "seconds": round(time.monotonic() - t0, 1)}
    save_head(out, HeadFile(head, temperature, threshold, audio_fingerprint(model),
                            int(mcfg.model.embed_dim), info))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB): classes {', '.join(head.cfg.classes)}; "
          f"temperature {temperature:.3f}, threshold {threshold:.2f}, {info['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
