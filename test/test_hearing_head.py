"""Action head: the shipped head names actions and rejects non-actions; files are checked."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from avag_core.data.synth.distractors import synth_distractor_sound
from avag_core.data.synth.sounds import SOUND_FAMILIES, synth_action_sound
from avag_core.errors import AvagError
from avag_core.hearing import ActionRecognizer
from avag_core.hearing.action_head import NONE, ActionHead, HeadConfig
from avag_core.hearing.calibration import expected_calibration_error, fit_temperature
from avag_core.hearing.head_file import head_path_for, load_head, save_head
from avag_core.weights.checkpoint import load_model_checkpoint


@pytest.fixture(scope="module")
def shipped(shipped_checkpoint):
    model, _ = load_model_checkpoint(shipped_checkpoint)
    return ActionRecognizer.load(shipped_checkpoint), model


def test_shipped_head_file_is_small_and_beside_the_checkpoint(shipped_checkpoint) -> None:
    path = head_path_for(shipped_checkpoint)
    assert path.name == "realtime_synth.actions.safetensors"
    assert path.stat().st_size < 2 * 1024 * 1024
    hf = load_head(path)
    assert hf.head.cfg.classes == [*sorted(SOUND_FAMILIES), NONE]
    assert 0.0 < hf.threshold < 1.0 and hf.temperature > 0


def test_names_fresh_action_sounds(shipped) -> None:
    rec, model = shipped
    hits = 0
    for i, aff in enumerate(sorted(SOUND_FAMILIES)):
        for j in range(3):
            h = rec.recognize(model, synth_action_sound(aff, np.random.default_rng([77, i, j])), 16000)
            hits += h.label == aff and h.is_action
            assert h.top[0] == (h.label, h.confidence) and len(h.top) == 3
            assert h.top[0][1] >= h.top[1][1] >= h.top[2][1]
    assert hits >= 22, f"{hits}/24 fresh action clips named and accepted"


@pytest.mark.parametrize("kind", ["speech", "clapping", "alarm", "noise", "silence", "music"])
def test_rejects_non_actions(shipped, kind) -> None:
    from avag_core.data.synth.distractors import available_kinds

    if kind not in available_kinds():
        pytest.skip(f"distractor {kind!r} is not installed here (see data/synth/distractors.py)")
    rec, model = shipped
    rejected = sum(
        not rec.recognize(model, synth_distractor_sound(kind, np.random.default_rng([55, i])), 16000).is_action
        for i in range(4)
    )
    assert rejected >= 3, f"{kind}: {rejected}/4 rejected"


def test_digital_silence_and_a_tiny_clip_are_rejected(shipped) -> None:
    rec, model = shipped
    for clip in (np.zeros(16000, np.float32), np.zeros(10, np.float32)):
        h = rec.recognize(model, clip, 16000)
        assert not h.is_action


def test_threshold_is_live(shipped) -> None:
    rec, model = shipped
    clip = synth_action_sound("twist", np.random.default_rng(1))
    old = rec.threshold
    try:
        rec.threshold = 1.0
        assert not rec.recognize(model, clip, 16000).is_action  # nothing reaches 1.0 exactly
        rec.threshold = 0.0
        assert rec.recognize(model, clip, 16000).is_action
    finally:
        rec.threshold = old


def test_head_of_another_checkpoint_is_refused(tmp_path, shipped_checkpoint, tiny_checkpoint) -> None:
    hf = load_head(head_path_for(shipped_checkpoint))
    # the shipped head beside a different checkpoint: load refuses it in one line
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_checkpoint.read_bytes())
    save_head(head_path_for(other), hf)
    with pytest.raises(AvagError) as err:
        ActionRecognizer.load(other)
    assert "does not match the checkpoint" in str(err.value) and "\n" not in str(err.value)
    # and a model whose audio weights changed after loading is refused at recognise time
    rec = ActionRecognizer.load(shipped_checkpoint)
    model, _ = load_model_checkpoint(shipped_checkpoint)
    with torch.no_grad():
        model.audio_proj.bias.add_(0.01)
    with pytest.raises(AvagError, match="does not match the checkpoint"):
        rec.recognize(model, np.zeros(16000, np.float32), 16000)


def test_missing_or_damaged_head_is_a_one_line_error(tmp_path, tiny_checkpoint) -> None:
    ck = tmp_path / "m.safetensors"
    ck.write_bytes(tiny_checkpoint.read_bytes())
    with pytest.raises(AvagError, match="no action head for"):
        ActionRecognizer.load(ck)
    head_path_for(ck).write_bytes(b"not a safetensors file")
    with pytest.raises(AvagError) as err:
        ActionRecognizer.load(ck)
    assert "not a readable safetensors file" in str(err.value) and "\n" not in str(err.value)


def test_nan_head_is_refused(tmp_path, shipped_checkpoint) -> None:
    hf = load_head(head_path_for(shipped_checkpoint))
    with torch.no_grad():
        hf.head.class_vectors[0, 0] = float("nan")
    path = save_head(tmp_path / "h.actions.safetensors", hf)
    with pytest.raises(AvagError, match="NaN"):
        load_head(path)


def test_checkpoint_without_head_still_loads(tiny_checkpoint) -> None:
    _model, cfg = load_model_checkpoint(tiny_checkpoint)  # the head is optional and separate
    assert cfg.model.embed_dim > 0


def test_head_learns_from_embeddings_and_rejects_a_none_class_violation() -> None:
    with pytest.raises(ValueError, match="must end with 'none'"):
        ActionHead(cfg=HeadConfig(in_dim=4, classes=["a", "b"]))
    # two separable blobs + a "none" blob: the trainer's loop reaches perfect accuracy
    from avag_core.hearing.train import ClipSet, TrainConfig, train_head

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 3
    feats = torch.cat([c + torch.randn(40, 16, generator=g) for c in centres])
    labels = ["a"] * 40 + ["b"] * 40 + [NONE] * 40
    cs = ClipSet(feats, labels, labels, [-1] * 120, [False] * 120)
    head = train_head(cs, ["a", "b"], dataclasses.replace(TrainConfig(), epochs=30))
    with torch.no_grad():
        pred = head(feats).argmax(1)
    truth = torch.tensor([["a", "b", NONE].index(lab) for lab in labels])
    assert float((pred == truth).float().mean()) >= 0.98


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=g) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=g).squeeze(1)
    t = fit_temperature(true_logits * 3.0, labels)  # over-confident by 3x
    assert 2.6 < t < 3.4
    calibrated = expected_calibration_error(torch.softmax(true_logits * 3.0 / t, 1), labels)
    raw = expected_calibration_error(torch.softmax(true_logits * 3.0, 1), labels)
    assert calibrated < 0.03 < raw


def test_heard_recognize_cli(tmp_path, shipped_checkpoint) -> None:
    import soundfile as sf

    wav = tmp_path / "twist.wav"
    sf.write(wav, synth_action_sound("twist", np.random.default_rng(4), 22050), 22050)
    noise = tmp_path / "cough.wav"
    sf.write(noise, synth_distractor_sound("cough", np.random.default_rng(4)), 16000)
    out = subprocess.run(
        [sys.executable, "-m", "avag_core.cli.main", "heard", "recognize", "--checkpoint",
         str(shipped_checkpoint), str(wav), str(noise)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "twist" in lines[1] and "action -> masks" in lines[1]
    assert "rejected (no masks)" in lines[2]


def test_action_metrics_for_avag_eval(tmp_path, shipped) -> None:
    """The one call `avag eval` makes: accuracy, confusion and ECE on an AVAGD split."""
    from avag_core.data.rows import read_rows
    from avag_core.data.synth import generate
    from avag_core.hearing.metrics import action_metrics_for_rows

    rec, model = shipped
    root = generate(tmp_path / "synth", seed=5, size="tiny")
    rows = read_rows(root, root / "unseen.csv")
    m = action_metrics_for_rows(rec, model, rows)
    assert m["n"] == len(rows) > 0 and m["unknown_affordances"] == 0
    k = len(rec.classes)
    assert len(m["confusion"]) == k and all(len(r) == k for r in m["confusion"])
    assert sum(map(sum, m["confusion"])) == len(rows)
    assert m["top1"] >= 0.9 and m["action_loss"] <= 0.1
    assert 0.0 <= m["ece"] <= 0.2
    assert sum(b["n"] for b in m["reliability"]) == len(rows)


def test_heard_train_cli_writes_a_head_for_its_checkpoint_only(tmp_path, tiny_checkpoint, shipped_checkpoint) -> None:
    from avag_core.data.synth import generate

    root = generate(tmp_path / "synth", seed=1, size="tiny")
    ck = tmp_path / "tiny.safetensors"
    ck.write_bytes(tiny_checkpoint.read_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "avag_core.cli.main", "heard", "train", "--checkpoint", str(ck),
         "--data", str(root), "--work", str(tmp_path / "work"), "--epochs", "5",
         "--distractors-per-kind", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    head = head_path_for(ck)
    assert f"wrote {head}" in out.stdout and head.is_file()
    rec = ActionRecognizer.load(ck)
    assert rec.classes == [*sorted(SOUND_FAMILIES), NONE]
    model, _ = load_model_checkpoint(ck)
    h = rec.recognize(model, synth_action_sound("zip", np.random.default_rng(0)), 16000)
    assert h.label in rec.classes and 0.0 <= h.confidence <= 1.0
    with pytest.raises(AvagError, match="does not match the checkpoint"):
        ActionRecognizer.load(shipped_checkpoint, head_path=head)
    bad = subprocess.run(
        [sys.executable, "-m", "avag_core.cli.main", "heard", "train", "--checkpoint", str(ck),
         "--data", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "has no train.csv and val.csv" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0


def test_embedding_runs_in_eval_mode_and_leaves_the_models_mode_as_it_was(tiny_checkpoint) -> None:
    """A training model is embedded in eval mode (dropout off: the same embedding as an eval
    model) and handed back training; an eval model is not switched at all (switching walks
    every sub-module, milliseconds on the node's path for each event)."""
    from avag_core.hearing.embedding import AudioEmbedder

    model, _ = load_model_checkpoint(tiny_checkpoint)
    clip = synth_action_sound(next(iter(SOUND_FAMILIES)), np.random.default_rng(0))
    emb = AudioEmbedder.from_source(model)
    calls = []
    original = type(model).train

    def counting_train(self, mode=True):
        calls.append(mode)
        return original(self, mode)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(model), "train", counting_train)
        at_eval = emb.embed([clip], 16000)
        assert calls == [] and not model.training
        model.train()
        calls.clear()
        in_training = emb.embed([clip], 16000)
    assert calls == [False, True] and model.training
    assert torch.equal(at_eval, in_training)
