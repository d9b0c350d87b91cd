"""``ActionRecognizer``: what was heard, with a calibrated confidence and a rejection gate.

    rec = ActionRecognizer.load("avag_core/checkpoints/realtime_synth.safetensors")
    heard = rec.recognize(predictor, waveform, 16000)
    if heard.is_action: masks = predictor.predict(waveform, 16000)   # else: no masks

``is_action`` is true when the most probable class is an action (trained or enrolled),
not ``none``, and its calibrated probability is at least ``threshold``. An enrolled action
is recognised like a trained one; its masks come from the segmentation model with the
sound itself (the model's audio path is generic, it was never told the class).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avag_core.errors import AvagError
from avag_core.settings import setting

from .action_head import NONE
from .embedding import AudioEmbedder, audio_fingerprint, fingerprint_of_state, model_of
from .enrollment import Enrollment
from .head_file import HeadFile, check_matches, head_path_for, load_head


@dataclass
class RecognizerConfig:
    """Run-time settings of the rejection gate."""

    threshold: float = setting(
        0.5, "lowest calibrated probability of the top action for a sound to get masks",
        lo=0.0, hi=1.0, live=True,
    )


@dataclass(frozen=True)
class Heard:
    """One recognised sound: ``label`` is an action name or ``none``."""

    label: str
    confidence: float  # calibrated probability of ``label``
    is_action: bool  # passes the rejection gate (gets masks)
    top: list[tuple[str, float]] = field(default_factory=list)  # best 3, most probable first


class ActionRecognizer:
    """Action head + enrollment on top of a (frozen) AVAGFormer's audio tokens."""

    def __init__(
        self, *, head_file: HeadFile, source: str, checkpoint: str | None = None,
        enrollment: Enrollment | None = None, threshold: float | None = None,
    ) -> None:  # fmt: skip
        self.hf = head_file
        self.head = head_file.head.eval()
        self.source = source
        self.checkpoint = checkpoint
        self.threshold = float(head_file.threshold if threshold is None else threshold)
        self.head_id = self._head_id()
        self.enrollment = enrollment or Enrollment(dim=self.head.cfg.proj_dim, head_id=self.head_id)
        self._embedders: dict[int, AudioEmbedder] = {}
        self._last_model: torch.nn.Module | None = None
        # recognize (a worker thread) and enroll (a service callback) may run concurrently
        self._lock = threading.Lock()

    def _head_id(self) -> str:
        h = hashlib.sha256(self.hf.fingerprint.encode())
        for k, v in sorted(self.head.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().float().numpy().tobytes())
        return h.hexdigest()[:16]

    # --- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, checkpoint_path: str | Path, enrollment_path: str | Path | None = None,
             head_path: str | Path | None = None) -> ActionRecognizer:
        """The head stored next to ``checkpoint_path`` (``<stem>.actions.safetensors``, or
        ``head_path``), checked against the checkpoint's audio weights, plus an optional
        enrollment file."""
        from avag_core.weights.checkpoint import checkpoint_config, read_checkpoint

        ckpt = Path(checkpoint_path)
        hp = Path(head_path) if head_path else head_path_for(ckpt)
        if not hp.is_file():
            raise AvagError(f"no action head for {ckpt} (expected {hp}); train one with `avag heard train`")
        hf = load_head(hp)
        tensors, _ = read_checkpoint(ckpt)
        cfg = checkpoint_config(ckpt)
        check_matches(hf, fingerprint_of_state(tensors), int(cfg.model.embed_dim), str(hp))
        rec = cls(head_file=hf, source=str(hp), checkpoint=str(ckpt))
        if enrollment_path is not None:
            rec.enrollment = Enrollment.load(enrollment_path, dim=hf.head.cfg.proj_dim, head_id=rec.head_id)
        return rec

    @property
    def classes(self) -> list[str]:
        """Trained actions, ``none``, then enrolled actions: the order of probabilities."""
        return [*self.head.cfg.classes, *self.enrollment.names]

    @property
    def actions(self) -> list[str]:
        return [c for c in self.classes if c != NONE]

    # --- embedding --------------------------------------------------------------------
    def _embedder(self, predictor_or_model) -> AudioEmbedder:
        model = model_of(predictor_or_model)
        key = id(model)
        if key not in self._embedders:
            # a Predictor folds batch norms into convolutions: it keeps the fingerprint of the
            # weights as loaded (same tokens, different bytes)
            fingerprint = getattr(predictor_or_model, "audio_fingerprint", None) or audio_fingerprint(model)
            check_matches(self.hf, fingerprint, int(model.cfg.embed_dim), self.source)
            self._embedders[key] = AudioEmbedder.from_source(model)
        self._last_model = model
        return self._embedders[key]

    def _model_for_enroll(self, predictor_or_model) -> AudioEmbedder:
        if predictor_or_model is not None:
            return self._embedder(predictor_or_model)
        if self._last_model is not None:
            return self._embedder(self._last_model)
        if self.checkpoint is None:
            raise AvagError("enroll needs a model: pass predictor_or_model")
        from avag_core.weights.checkpoint import load_model_checkpoint

        model, _ = load_model_checkpoint(self.checkpoint)
        return self._embedder(model)

    @torch.inference_mode()
    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """Clip embeddings [N, in_dim] -> unit vectors [N, proj_dim]."""
        return self.head.project(feats)

    def _snapshot(self) -> tuple[Enrollment, list[str]]:
        """A copy of the enrolled actions and the class list, consistent with each other."""
        with self._lock:
            snap = Enrollment(dim=self.enrollment.dim, head_id=self.head_id)
            snap.names = list(self.enrollment.names)
            snap._vectors, snap._owners = self.enrollment._vectors, self.enrollment._owners
            return snap, self.classes

    @torch.inference_mode()
    def probs_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """[N, in_dim] -> [N, len(classes)] calibrated probabilities."""
        return self.head.probs(feats, self.hf.temperature, self._snapshot()[0])

    def decide(self, probs: torch.Tensor, classes: list[str] | None = None) -> list[Heard]:
        """Probabilities -> ``Heard`` per row, with the current threshold."""
        classes = self.classes if classes is None else classes
        out = []
        for row in probs:
            vals, idx = row.topk(min(3, row.numel()))
            top = [(classes[int(i)], float(v)) for v, i in zip(vals, idx, strict=True)]
            label, conf = top[0]
            out.append(Heard(label, conf, label != NONE and conf >= self.threshold, top))
        return out

    # --- public API -------------------------------------------------------------------
    def recognize(self, predictor_or_model, audio: np.ndarray, sample_rate: int) -> Heard:
        """Name the action in one clip (any rate, mono [N] or channels-first [C, N])."""
        emb = self._embedder(predictor_or_model)
        try:
            feats = emb.embed([np.asarray(audio)], int(sample_rate))
        except ValueError as exc:
            raise AvagError(f"cannot recognise this audio: {exc}") from None
        enrolled, classes = self._snapshot()
        with torch.inference_mode():
            probs = self.head.probs(feats, self.hf.temperature, enrolled)
        return self.decide(probs, classes)[0]

    def enroll(self, name: str, clips: list[np.ndarray], sample_rate: int,
               predictor_or_model=None) -> int:
        """Teach (or refine) action ``name`` from clips; returns its total clip count.

        The model defaults to the one last used by ``recognize``, else the checkpoint's."""
        if not clips:
            raise AvagError(f"enroll {name!r}: no clips given")
        emb = self._model_for_enroll(predictor_or_model)
        for i, c in enumerate(clips):
            a = np.asarray(c)
            if a.size == 0 or not np.isfinite(a).all():
                raise AvagError(f"enroll {name!r}: clip {i} is empty or holds NaN/inf samples")
        z = self.project(emb.embed([np.asarray(c) for c in clips], int(sample_rate)))
        with self._lock:
            self.enrollment.add(name, z, reserved=tuple(self.head.cfg.classes))
        return self.enrollment.counts()[name]

    def save_enrollment(self, path: str | Path) -> Path:
        """Write the enrolled actions (atomically: a temporary file, then a rename)."""
        with self._lock:
            return self.enrollment.save(path)

