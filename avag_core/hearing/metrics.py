"""Recognition metrics: top-1 accuracy, confusion matrix, ECE, rejection and action loss.

``action_metrics_for_rows`` is the one call ``avag eval`` needs to report what was heard
on an AVAGD split (the affordance is the second part of each row's category).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .action_head import NONE
from .calibration import expected_calibration_error, reliability


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict:
    """Top-1 accuracy, confusion matrix (rows = truth, columns = prediction, over
    ``classes``), ECE and the reliability bins."""
    n = int(labels.numel())
    pred = probs.argmax(1)
    k = len(classes)
    conf = torch.zeros(k, k, dtype=torch.long)
    for t, p in zip(labels.tolist(), pred.tolist(), strict=True):
        conf[t, p] += 1
    return {
        "n": n,
        "top1": float((pred == labels).float().mean()) if n else float("nan"),
        "ece": expected_calibration_error(probs, labels),
        "classes": list(classes),
        "confusion": conf.tolist(),
        "reliability": reliability(probs, labels),
    }


def gate_metrics(accepted: torch.Tensor, is_action: torch.Tensor) -> dict:
    """Rejection rate of non-actions and loss rate of true actions at one threshold."""
    acc, act = accepted.bool(), is_action.bool()
    n_act, n_dis = int(act.sum()), int((~act).sum())
    return {
        "n_actions": n_act,
        "n_distractors": n_dis,
        "distractor_rejection": float((~acc[~act]).float().mean()) if n_dis else float("nan"),
        "action_loss": float((~acc[act]).float().mean()) if n_act else float("nan"),
    }


def accepted_mask(probs: torch.Tensor, classes: Sequence[str], threshold: float) -> torch.Tensor:
    """The rejection gate on a batch: top class is an action and its probability >= threshold."""
    conf, pred = probs.max(1)
    none_idx = list(classes).index(NONE)
    return (pred != none_idx) & (conf >= threshold)


def action_metrics_for_rows(recognizer, predictor_or_model, rows, threshold: float | None = None) -> dict:
    """What was heard on AVAGD rows (``avag eval``): accuracy, confusion, ECE and the share
    of true actions the gate would drop. Rows whose affordance the head does not know are
    counted under ``unknown_affordances`` and left out."""
    from avag_core.data.audio_io import load_audio

    classes = recognizer.classes
    emb = recognizer._embedder(predictor_or_model)
    feats, labels, unknown = [], [], 0
    for row in rows:
        aff = row.category.split("/")[-1]
        if aff not in classes:
            unknown += 1
            continue
        wave, rate = load_audio(row.audio)
        feats.append(emb.patches(wave, rate))
        labels.append(classes.index(aff))
    if not feats:
        return {"n": 0, "unknown_affordances": unknown}
    probs = recognizer.probs_from_features(emb.embed_patches(feats))
    lab = torch.tensor(labels)
    out = classification_metrics(probs, lab, classes)
    th = recognizer.threshold if threshold is None else threshold
    acc = accepted_mask(probs, classes, th)
    out.update({"threshold": th, "action_loss": float((~acc).float().mean()),
                "unknown_affordances": unknown})
    return out
