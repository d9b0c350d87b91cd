"""What-was-heard benchmark: recognition, rejection and few-shot enrollment on synthetic data.

    avag data synth --out data/synth --seed 0 --size medium
    python -m avag_core.benchmarks.heard_bench --checkpoint avag_core/checkpoints/realtime_synth.safetensors \\
        --data data/synth --json heard.json

1. Recognition with the head shipped beside the checkpoint, per split (``val`` fitted the
   temperature and chose the threshold; ``unseen`` = unseen objects, seen action sounds,
   plus distractors of another seed): top-1 accuracy on action clips, confusion matrix,
   ECE over action and distractor clips (label ``none``), distractor rejection and action
   loss at the head's threshold; for the clean clips and, separately, for the same clips
   as the node hears them (``avag_core.hearing.as_heard``: background before and after,
   any level, noise floor, speech/music/ambience under it).
2. Few-shot: a head trained *without* the held-out actions (default ``pour``, ``zip``);
   each is enrolled from 1, 3 or 5 clips of the train split (several random draws) and
   tested on val + unseen clips: labelling accuracy, false acceptance of distractors,
   accuracy on the trained actions, and function mIoU on the held-out actions with and
   without enrollment (a rejected sound gets no mask: IoU 0). Masks always come from the
   segmentation model with the sound itself; the segmentation checkpoint did see these
   actions in training, the head did not. mIoU here is computed at the image's own
   resolution from ``Predictor`` outputs, masks resized to it with nearest neighbour
   (``avag eval`` scores at the model's output size).

Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from avag_core.hearing.action_head import NONE
from avag_core.hearing.metrics import accepted_mask, classification_metrics, gate_metrics
from avag_core.hearing.train import (
    ClipSet,
    TrainConfig,
    cached_split,
    fit,
    head_probs,
    labels_of,
    split_rows,
)

SHOTS = (1, 3, 5)


def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def recognition(rec, sets: dict[str, ClipSet]) -> dict:
    out = {}
    classes = rec.classes
    views = [(split, cs, False) for split, cs in sets.items()] + \
        [(f"{split} as heard", cs, True) for split, cs in sets.items()]
    for split, cs, heard in views:
        cs = cs.select([lab in classes and h == heard for lab, h in zip(cs.labels, cs.heard, strict=True)])
        probs = rec.probs_from_features(cs.feats)
        labels = labels_of(cs, classes)
        is_act = torch.tensor([lab != NONE for lab in cs.labels])
        acts = classification_metrics(probs[is_act], labels[is_act], classes)
        allm = classification_metrics(probs, labels, classes)
        gate = gate_metrics(accepted_mask(probs, classes, rec.threshold), is_act)
        dis = [i for i, lab in enumerate(cs.labels) if lab == NONE]
        acc = accepted_mask(probs, classes, rec.threshold)
        per_kind = {}
        for i in dis:
            per_kind.setdefault(cs.kinds[i], []).append(not bool(acc[i]))
        out[split] = {
            "top1_actions": acts["top1"], "ece_actions": acts["ece"], "ece_all": allm["ece"],
            "top1_all": allm["top1"], "confusion": allm["confusion"], "classes": classes,
            "reliability": allm["reliability"], "threshold": rec.threshold, **gate,
            "rejection_by_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
        }  # fmt: skip
    return out


def function_iou(ckpt: str, data: Path, split: str, row_ids: list[int]) -> dict[int, float]:
    """Per-row function IoU of the segmentation model (its own masks, no gate)."""
    from PIL import Image

    from avag_core.data.audio_io import load_audio
    from avag_core.evaluation.metrics import iou_per_image
    from avag_core.predictor import Predictor
    from avag_core.preprocess import load_image

    pred = Predictor.from_checkpoint(ckpt)
    rows = split_rows(data, split)
    out = {}
    for i in row_ids:
        row = rows[i]
        rgb = load_image(row.image, min_side=pred.size)
        pred.set_image(rgb)
        wave, rate = load_audio(row.audio)
        p = pred.predict(wave, rate)
        # the JPEG may decode at a reduced scale (as in `avag eval`): mask to the image's size
        mask = Image.open(row.mask_func).convert("L").resize(rgb.shape[1::-1], Image.NEAREST)
        gt = np.asarray(mask) > 127
        out[i] = float(iou_per_image(torch.from_numpy(p.function_prob)[None],
                                     torch.from_numpy(gt.astype(np.float32))[None])[0])
    return out


def few_shot(model, ckpt: str, data: Path, work: Path, held_out: list[str], draws: int,
             sets: dict[str, ClipSet], seed: int) -> dict:
    from avag_core.hearing.enrollment import Enrollment

    all_actions = sorted({lab for lab in sets["train"].labels if lab != NONE})
    trained = [a for a in all_actions if a not in held_out]
    head, temperature, threshold, _ = fit(model, data, work, actions=trained, cfg=TrainConfig(seed=seed))
    test = {s: sets[s] for s in ("val", "unseen")}
    # mIoU inputs: every held-out action row of val and unseen
    ious = {s: function_iou(ckpt, data, s, [r for r, lab in zip(cs.rows, cs.labels, strict=True)
                                           if lab in held_out]) for s, cs in test.items()}
    feats = torch.cat([cs.feats for cs in test.values()])
    labels = [lab for cs in test.values() for lab in cs.labels]
    iou = [ious[s].get(r, float("nan")) for s, cs in test.items() for r in cs.rows]
    is_held = torch.tensor([lab in held_out for lab in labels])
    is_dis = torch.tensor([lab == NONE for lab in labels])
    is_trained = ~is_held & ~is_dis
    iou_t = torch.tensor(iou)
    train_cs = sets["train"]
    results = {"trained_actions": trained, "held_out": held_out, "threshold": threshold,
               "temperature": temperature, "n_held_out_clips": int(is_held.sum()),
               "n_distractors": int(is_dis.sum()), "model_miou_f_no_gate": float(iou_t[is_held].mean()),
               "rows": []}  # fmt: skip

    def evaluate(enr: Enrollment | None) -> dict:
        names = enr.names if enr is not None else []
        classes = [*head.cfg.classes, *names]
        probs = head_probs(head, feats, temperature, enr)
        acc = accepted_mask(probs, classes, threshold)
        pred = [classes[int(i)] for i in probs.argmax(1)]
        right = torch.tensor([p == lab for p, lab in zip(pred, labels, strict=True)])
        return {
            "held_out_label_acc": float((right & acc)[is_held].float().mean()),
            "held_out_accepted": float(acc[is_held].float().mean()),
            "distractor_false_accept": float(acc[is_dis].float().mean()),
            "trained_label_acc": float((right & acc)[is_trained].float().mean()),
            "miou_f_held_out": float(torch.where(acc[is_held], iou_t[is_held], 0.0).mean()),
        }

    base = evaluate(None)
    results["rows"].append({"shots": 0, **base})
    rng = np.random.default_rng(seed)
    for k in SHOTS:
        runs = []
        for _ in range(draws):
            enr = Enrollment(dim=head.cfg.proj_dim, head_id="bench")
            for name in held_out:
                pool = [i for i, lab in enumerate(train_cs.labels) if lab == name]
                pick = rng.choice(pool, size=k, replace=False)
                with torch.no_grad():
                    enr.add(name, head.project(train_cs.feats[torch.as_tensor(pick)]))
            runs.append(evaluate(enr))
        mean = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
        std = {f"{key}_std": float(np.std([r[key] for r in runs])) for key in runs[0]}
        results["rows"].append({"shots": k, **mean, **std})
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="avag_core/checkpoints/realtime_synth.safetensors")
    p.add_argument("--head", default=None, help="action head file (default: the one beside the checkpoint)")
    p.add_argument("--data", required=True, help="`avag data synth` output (train/val/unseen.csv)")
    p.add_argument("--work", default="runs/heard", help="embedding cache folder")
    p.add_argument("--held-out", default="pour,zip", help="actions left out of the few-shot head")
    p.add_argument("--draws", type=int, default=10, help="random draws of the enrollment clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="", help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from avag_core.hearing import ActionRecognizer
    from avag_core.weights.checkpoint import load_model_checkpoint

    t0 = time.monotonic()
    data, work = Path(args.data), Path(args.work)
    model, _ = load_model_checkpoint(args.checkpoint)
    rec = ActionRecognizer.load(args.checkpoint, head_path=args.head)
    sets = {s: cached_split(model, data, s, work) for s in ("train", "val", "unseen")}
    rec_res = recognition(rec, {s: sets[s] for s in ("val", "unseen")})
    print(f"recognition (head {rec.source}, threshold {rec.threshold:.2f}, temperature {rec.hf.temperature:.3f})")
    print(_table(["split", "action clips", "top-1", "ECE (actions)", "ECE (all)", "distractors",
                  "rejected", "actions lost"],
                 [[s, r["n_actions"], r["top1_actions"], r["ece_actions"], r["ece_all"],
                   r["n_distractors"], r["distractor_rejection"], r["action_loss"]]
                  for s, r in rec_res.items()]))
    u, uh = rec_res["unseen"], rec_res["unseen as heard"]
    print("\nunseen distractors rejected, by kind (clean clips, as heard)")
    print(_table(["kind", "clean", "as heard"], [[k, v, uh["rejection_by_kind"].get(k, float("nan"))]
                                                 for k, v in u["rejection_by_kind"].items()]))
    print("\nunseen confusion (rows truth, columns prediction)")
    print(_table(["", *u["classes"]], [[c, *row] for c, row in zip(u["classes"], u["confusion"], strict=True)]))
    held = [a.strip() for a in args.held_out.split(",") if a.strip()]
    fs = few_shot(model, args.checkpoint, data, work, held, args.draws, sets, args.seed)
    print(f"\nfew-shot: head trained on {', '.join(fs['trained_actions'])}; held out {', '.join(held)} "
          f"({fs['n_held_out_clips']} clips, {fs['n_distractors']} distractors; threshold {fs['threshold']:.2f}; "
          f"{args.draws} draws; model mIoU_f without any gate {fs['model_miou_f_no_gate']:.3f})")
    print(_table(["shots", "held-out labelled", "held-out accepted", "distractors accepted",
                  "trained labelled", "mIoU_f held-out"],
                 [[r["shots"], r["held_out_label_acc"], r["held_out_accepted"],
                   r["distractor_false_accept"], r["trained_label_acc"], r["miou_f_held_out"]]
                  for r in fs["rows"]]))
    result = {"checkpoint": args.checkpoint, "data": str(data), "recognition": rec_res,
              "few_shot": fs, "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
