"""Streaming scorer for ``EventConfig.detector = "learned"``: frames in, per-frame
(onset, active) probabilities out, ``shape.lookahead`` frames late.

Why a separate object: the detector's state machine only needs two numbers per frame;
features, model and their state live here. Why numpy here when the model is trained in
torch: a streaming step is a handful of [frames x 32] products per layer; torch spends
more on dispatch and on waking its thread pool than on the arithmetic (2 % of a core
against ~0.3 % here). Each layer keeps the last ``2 x dilation`` of its inputs, so a
new frame costs one output per layer. Before the first frame the model has seen
``shape.receptive - 1`` all-zero feature frames (a steady background), exactly as in training,
so this gives the outputs of ``OnsetNet`` run over the whole recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avag_core.events.onset_features import MELS, band_starts
from avag_core.events.onset_model import ACROSS_KERNEL, OnsetEnsemble, OnsetShape, load_onset_model

Member = tuple[OnsetShape, dict[str, np.ndarray]]  # one member's shape and weights
_WEIGHTS: dict[str, tuple[OnsetShape, list[Member]]] = {}  # one copy per weights file in a process


def probability(logits: np.ndarray) -> np.ndarray:
    """Logits -> probabilities as float64 (clipped: no overflow warning on a saturated logit)."""
    return 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -50.0, 50.0)))


def shared_weights(path: str | Path | None) -> tuple[OnsetShape, list[Member]]:
    """The model's shape and each member's shape and weights (default file when empty) as
    float32 arrays, loaded once per process."""
    key = str(Path(path).resolve()) if path else ""
    if key not in _WEIGHTS:
        model = load_onset_model(path or None)
        nets = list(model.members) if isinstance(model, OnsetEnsemble) else [model]
        _WEIGHTS[key] = (model.shape, [(net.shape, {k: v.detach().numpy().astype(np.float32)
                                                    for k, v in net.state_dict().items()}) for net in nets])
    return _WEIGHTS[key]


def across_taps(shape: OnsetShape) -> np.ndarray:
    """Where each tap of the convolution along the mel bands reads, as [MELS, groups *
    kernel] indices into a frame's features with one zero appended (index ``shape.inputs``):
    tap ``k`` of group ``g`` reads band ``m + k - kernel // 2`` for output band ``m``, zero past
    either end (the convolution's padding). One gather per chunk gives every band's window, so
    the convolution is one small product, not a [features, channels * MELS] matrix of
    mostly zeros."""
    m, k = np.arange(MELS)[:, None, None], np.arange(ACROSS_KERNEL)[None, None]
    band = m + k - ACROSS_KERNEL // 2
    starts = np.array(band_starts(shape.peaks))[None, :, None]
    return np.where((band >= 0) & (band < MELS), starts + band, shape.inputs).reshape(MELS, -1)


class StreamingOnsetNet:
    """A weights file's arithmetic, one new frame at a time: [n, features] -> [n, 2] logits
    (the mean over its members, as OnsetEnsemble). The members' weights are stacked, so each
    layer is one batched product for all of them: three members cost far less than three
    single models (numpy's per-call overhead dominates at this size). Members with the
    convolution along the bands (``across``) add its part to their rows of the projection,
    one product per ``across`` width, so mixing them with plain members adds no layer calls."""

    def __init__(self, shape: OnsetShape, members: list[Member]) -> None:
        self.shape = shape
        weights = [w for _, w in members]

        def stacked(name: str, tap: int | None = None, of: list[dict[str, np.ndarray]] = weights) -> np.ndarray:
            return np.stack([w[name][:, :, tap].T if tap is not None else w[name] for w in of])

        # the projection's rows for the features (an across member's further rows: below)
        self._proj_w = np.stack([w["proj.weight"][:, :shape.inputs, 0].T for w in weights])  # [members, inputs, width]
        self._proj_b = stacked("proj.bias")[:, None]
        # per ``across`` width: its members (a slice where they are adjacent: no copy on the hot
        # path), its weights [members, groups * kernel, channels],
        # bias and the projection's rows for its outputs, reordered band-major (row m * channels
        # + c, torch's c * MELS + m) so its [n * MELS, channels] outputs feed them without a copy
        self._taps = across_taps(shape)
        self._across = []
        for a in sorted({s.across for s, _ in members} - {0}):
            at = [i for i, (s, _) in enumerate(members) if s.across == a]
            of = [weights[i] for i in at]
            conv = np.stack([w["across.weight"][..., 0].transpose(1, 2, 0).reshape(-1, a) for w in of])
            rows = stacked("proj.weight", 0, of)[:, shape.inputs:]  # [members, across * MELS, width]
            rows = rows.reshape(len(of), a, MELS, -1).transpose(0, 2, 1, 3).reshape(len(of), MELS * a, -1)
            index = slice(at[0], at[-1] + 1) if at == list(range(at[0], at[-1] + 1)) else np.array(at)
            self._across.append((index, conv, stacked("across.bias", of=of)[:, None], np.ascontiguousarray(rows)))
        # each dilated layer's three taps as one [members, 3 * width, width] product
        self._convs = [(np.concatenate([stacked(f"convs.{i}.weight", k) for k in range(3)], axis=1),
                        stacked(f"convs.{i}.bias")[:, None], d) for i, d in enumerate(shape.dilations)]
        self._head_w, self._head_b = stacked("head.weight", 0), stacked("head.bias")[:, None]
        self.reset()

    @property
    def members(self) -> int:
        """How many members the logits average."""
        return int(self._proj_w.shape[0])

    def reset(self) -> None:
        members, features, width = self._proj_w.shape
        self._hist = [np.zeros((members, 2 * d, width), np.float32) for d in self.shape.dilations]
        self(np.zeros((self.shape.receptive - 1, features), np.float32))

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        n = feats.shape[0]
        h = feats @ self._proj_w + self._proj_b  # [members, n, width]
        if self._across:  # its outputs are more inputs of its members' projection
            padded = np.concatenate([feats, np.zeros((n, 1), np.float32)], axis=1)
            windows = padded[:, self._taps].reshape(n * MELS, -1)  # [n * MELS, groups * kernel]
            for index, conv, bias, rows in self._across:  # rows: [members, MELS * across, width]
                h[index] += np.maximum(windows @ conv + bias, 0.0).reshape(-1, n, rows.shape[1]) @ rows
        h = np.maximum(h, 0.0)
        for i, (w, b, d) in enumerate(self._convs):
            full = np.concatenate([self._hist[i], h], axis=1)
            out = np.concatenate([full[:, :n], full[:, d:d + n], full[:, 2 * d:]], axis=2) @ w + b
            h = np.maximum(out, 0.0) + h
            self._hist[i] = full[:, -2 * d:]
        self.member_logits = h @ self._head_w + self._head_b  # [members, n, 2]: what the mean hides
        return self.member_logits.mean(axis=0)


class LearnedOnsetScorer:
    """Call with frames and their start times; get back (times, p_onset, p_active) of the
    frames now scored (each ``shape.lookahead`` frames after it arrived); ``members_at``
    tells how many members agree on those frames' onsets (what the mean hides)."""

    def __init__(self, frame: int, hop: int, sample_rate: int, weights: str | Path | None = None) -> None:
        self._net = StreamingOnsetNet(*shared_weights(weights))
        self._features = self._net.shape.features(frame, hop, sample_rate)
        self.reset()

    def reset(self) -> None:
        self._features.reset()
        self._net.reset()
        self._times = np.zeros(0)  # times of frames seen but not yet scored (the lookahead)
        self._member_onset = np.zeros((self._net.members, 0))  # logits of the frames last returned

    def __call__(self, frames: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = frames.shape[0]
        if n == 0:
            self._member_onset = np.zeros((self._net.members, 0))
            return np.zeros(0), np.zeros(0), np.zeros(0)
        prob = probability(self._net(self._features(frames)))
        all_t = np.concatenate([self._times, times])
        done = max(0, all_t.size - self._net.shape.lookahead)
        # output k is about frame k - lookahead of the stream; the first lookahead outputs
        # of a stream are about frames before it began and are dropped
        skip = n - done
        self._times = all_t[done:]
        self._member_onset = self._net.member_logits[:, skip:, 0]  # a view: nothing computed here
        return all_t[:done], prob[skip:, 0], prob[skip:, 1]

    def members_at(self, level: float) -> np.ndarray:
        """Per frame last returned: how many members' onset probability reached ``level``."""
        return (probability(self._member_onset) >= level).sum(axis=0)
