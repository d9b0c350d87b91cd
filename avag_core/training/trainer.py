"""The training loop: single process or DDP, CPU or CUDA (AMP), exactly resumable.

Resuming reproduces the uninterrupted run bit for bit on CPU with ``num_workers: 0`` (the
sample order, the batches already done, every RNG and the optimiser state are restored);
with worker processes the augmentation draws of the resumed epoch differ, the rest is equal.

Files written to ``out_dir`` (main process):
  checkpoint.pt          resumable state, rewritten atomically every ``ckpt_interval`` steps
                         and at every epoch end (see :mod:`avag_core.training.state`)
  best.safetensors       model weights + config of the best validation score so far
  last.safetensors       model weights + config at the end of training
  config.yaml            the full config of the run
  train_log.csv, val_log.csv, tensorboard/
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avag_core.config import AvagConfig, config_from_dict, save_config, to_dict
from avag_core.errors import AvagError
from avag_core.evaluation.evaluator import evaluate_model
from avag_core.evaluation.metrics import summarize
from avag_core.training import distributed as D
from avag_core.training.logs import RunLogger
from avag_core.training.losses import compute_losses
from avag_core.training.sampler import ResumableSampler
from avag_core.training.schedule import build_optimizer, build_scheduler
from avag_core.training.state import (
    FORMAT_VERSION,
    atomic_torch_save,
    capture_rng,
    load_training_state,
    restore_rng,
    seed_everything,
)

STATE_FILE = "checkpoint.pt"
# Test hooks: seconds to sleep after each resumable checkpoint, or "STEP:SECONDS" to sleep
# after logging step STEP (kill/resume tests kill the process at a known point).
PAUSE_ENV = "AVAG_TEST_PAUSE_AFTER_CHECKPOINT"
PAUSE_STEP_ENV = "AVAG_TEST_PAUSE_AFTER_STEP"


@dataclass
class TrainResult:
    out_dir: Path
    epoch: int
    step: int
    best_score: float
    stopped_early: bool
    last_val: dict[str, float] | None


def pick_device(requested: str | None, dist_info: D.DistInfo | None = None) -> torch.device:
    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise AvagError(f"--device {requested}: CUDA is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", dist_info.local_rank if dist_info else 0)
    return torch.device("cpu")


def backbone_trainable(epoch: int, unfreeze_epoch: int, frozen_at_start: bool = True) -> bool:
    """Derived from the epoch alone, so a resumed run gets it right.

    A model configured with ``freeze_backbone: false`` trains its backbone throughout.
    """
    if not frozen_at_start:
        return True
    return unfreeze_epoch >= 0 and epoch >= unfreeze_epoch


def _collate():
    from avag_core.data import collate_batch

    return collate_batch


def make_dataset(cfg: AvagConfig, root: str | Path, csv: str, train: bool):
    from avag_core.data import AVAGDDataset

    root = Path(root)
    if not (root / csv).is_file():
        raise AvagError(f"data split {root / csv} does not exist")
    return AVAGDDataset(
        root,
        csv,
        cfg.model.image_size,
        train=train,
        cfg=cfg.data,
        max_audio_patches=getattr(cfg.model, "max_audio_patches", 0),
    )


def make_eval_loader(dataset, batch_size: int, num_workers: int, dist_info: D.DistInfo):
    sampler = ResumableSampler(len(dataset), False, 0, dist_info.rank, dist_info.world_size)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate(),
        drop_last=False,
    )


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _test_pause_at(step: int) -> None:
    spec = os.environ.get(PAUSE_STEP_ENV)
    if spec:
        at, _, seconds = spec.partition(":")
        if int(at) == step:
            time.sleep(float(seconds or 120))


class Trainer:
    def __init__(
        self,
        cfg: AvagConfig,
        data_root: str | Path,
        out_dir: str | Path,
        resume: str | Path | None = None,
        device: str | None = None,
        train_csv: str = "train.csv",
        val_csv: str | None = None,
        progress: bool = True,
    ) -> None:
        self.resume_state: dict[str, Any] | None = None
        if resume is not None:
            self.resume_state = load_training_state(resume)
            cfg = config_from_dict(self.resume_state["config"])  # continue the same run
        self.cfg = cfg
        self.tc = cfg.train
        self.data_root = Path(data_root)
        self.out_dir = Path(out_dir)
        self.train_csv = train_csv
        self.val_csv = val_csv if val_csv is not None else f"{self.tc.val_split}.csv"
        self.progress = progress
        self.requested_device = device

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        tc = self.tc
        guess = pick_device(self.requested_device)
        self.dist = D.init_distributed(guess.type)
        self.device = pick_device(self.requested_device, self.dist)
        if self.device.type == "cuda" and self.requested_device in (None, "auto"):
            self.device = torch.device("cuda", self.dist.local_rank)
        if tc.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(tc.threads)
        if tc.deterministic:
            # cuBLAS reads this when its first handle is made (the model's first step, below)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.out_dir / "config.yaml")

        from avag_core.modeling import build_model

        seed_everything(tc.seed)  # identical initial weights on every rank
        self.model = build_model(self.cfg.model)
        if tc.init_from and self.resume_state is None:  # fine-tuning: weights only
            from avag_core.training.finetune import load_initial_weights

            load_initial_weights(self.model, tc.init_from)
        self.model = self.model.to(self.device)
        seed_everything(tc.seed + 7919 * self.dist.rank)  # different augmentation per rank

        self.train_set = make_dataset(self.cfg, self.data_root, self.train_csv, train=True)
        if len(self.train_set) == 0:
            raise AvagError(f"{self.data_root / self.train_csv} has no samples")
        self.val_set = None
        if tc.val_interval > 0 and (self.data_root / self.val_csv).is_file():
            self.val_set = make_dataset(self.cfg, self.data_root, self.val_csv, train=False)
        self.sampler = ResumableSampler(
            len(self.train_set), True, tc.seed, self.dist.rank, self.dist.world_size
        )
        self.steps_per_epoch = math.ceil(self.sampler.per_rank / tc.batch_size)
        total = tc.epochs * self.steps_per_epoch
        if tc.max_steps > 0:
            total = min(total, tc.max_steps)
        self.total_steps = total

        self.optimizer = build_optimizer(self.model, tc)
        self.scheduler = build_scheduler(self.optimizer, tc, total)
        self.use_amp = tc.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if tc.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        self.epoch = 0
        self.batches_done = 0  # batches of the current epoch already trained
        self.step = 0
        self.best_score = -math.inf
        self.last_val: dict[str, float] | None = None
        self._val_step = -1
        if self.resume_state is not None:
            s = self.resume_state
            if int(s.get("world_size", 1)) != self.dist.world_size:
                raise AvagError(
                    f"resume checkpoint was written by {s.get('world_size')} process(es), this run "
                    f"has {self.dist.world_size}: resume with the same number of processes"
                )
            self.model.load_state_dict(s["model"])
            self.optimizer.load_state_dict(s["optimizer"])
            self.scheduler.load_state_dict(s["scheduler"])
            if s.get("scaler"):
                self.scaler.load_state_dict(s["scaler"])
            self.epoch = int(s["epoch"])
            self.batches_done = int(s["batches_done"])
            self.step = int(s["step"])
            self.best_score = float(s["best_score"])
        self.ddp_model: torch.nn.Module = self.model
        self._ddp_trainable: bool | None = None
        resumed_at = self.step if self.resume_state is not None else None
        self.logger = RunLogger(self.out_dir, self.dist.is_main, resume_step=resumed_at)

    def _set_backbone(self, epoch: int) -> None:
        trainable = backbone_trainable(
            epoch, self.tc.unfreeze_backbone_epoch, getattr(self.cfg.model, "freeze_backbone", True)
        )
        if trainable == self._ddp_trainable:
            return
        self.model.set_backbone_trainable(trainable)
        self._ddp_trainable = trainable
        if self.dist.enabled:
            # DDP fixes the set of synchronised parameters at construction: rebuild it.
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(
                self.model,
                device_ids=ids,
                find_unused_parameters=self.tc.ddp_find_unused_parameters,
            )
        else:
            self.ddp_model = self.model

    def _loader(self, epoch: int) -> torch.utils.data.DataLoader:
        tc = self.tc
        self.sampler.set_epoch(epoch, self.batches_done * tc.batch_size)
        g = torch.Generator()
        g.manual_seed((tc.seed * 1_000_003 + epoch) * 1009 + self.dist.rank)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_size=tc.batch_size,
            sampler=self.sampler,
            num_workers=tc.num_workers,
            collate_fn=_collate(),
            drop_last=False,
            generator=g,
            pin_memory=self.device.type == "cuda",
        )

    # ------------------------------------------------------------- checkpoint
    def save_state(self) -> None:
        # every rank's RNG (each augments differently); collective, so all ranks call it
        rngs = D.all_gather_objects(capture_rng(), self.dist)
        if not self.dist.is_main:
            return
        state = {
            "format": FORMAT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "step": self.step,
            "best_score": self.best_score,
            "rng": rngs[0],
            "rng_per_rank": rngs,
            "config": to_dict(self.cfg),
            "world_size": self.dist.world_size,
        }
        atomic_torch_save(state, self.out_dir / STATE_FILE)
        pause = os.environ.get(PAUSE_ENV)
        if pause:  # lets a test kill the process at a known point after a checkpoint
            time.sleep(float(pause))

    def _save_model(self, name: str, extra: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        from avag_core.weights.checkpoint import save_model_checkpoint

        save_model_checkpoint(self.out_dir / name, self.model, self.cfg, extra=extra)  # atomic

    # --------------------------------------------------------------- training
    def _train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        tc = self.tc
        batch = _to_device(batch, self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.ddp_model(batch["image"], batch["audio"], batch["audio_mask"])
        losses = compute_losses(out, batch["mask_func"], batch["mask_dep"], tc)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        grad_norm = float("nan")
        if tc.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, tc.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        row = {k: float(v.detach()) for k, v in losses.items()}
        row["grad_norm"] = grad_norm
        return row

    def validate(self) -> dict[str, float] | None:
        if self.val_set is None:
            return None
        loader = make_eval_loader(
            self.val_set, self.tc.batch_size, self.tc.num_workers, self.dist
        )
        records = evaluate_model(
            self.model,
            loader,
            self.device,
            self.dist,
            expected=len(self.val_set),
            amp_dtype=self.amp_dtype if self.use_amp else None,
            progress=self.progress,
        )
        return summarize(records)

    def fit(self) -> TrainResult:
        self._setup()
        tc = self.tc
        start = time.monotonic()
        stopped = False
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True, disable=None)
        self.model.train()
        try:
            while self.epoch < tc.epochs and not stopped:
                self._set_backbone(self.epoch)
                loader = self._loader(self.epoch)
                if self.resume_state is not None:
                    rngs = self.resume_state.get("rng_per_rank") or [self.resume_state["rng"]]
                    restore_rng(rngs[self.dist.rank])  # right before the next batch
                    self.resume_state = None
                for batch in loader:
                    row = self._train_step(batch)
                    self.batches_done += 1
                    self.step += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{row['total']:.4f}", epoch=self.epoch)
                    if self.step % max(1, tc.log_interval) == 0:
                        lr = self.optimizer.param_groups[-1]["lr"]
                        self.logger.train(
                            self.step, {"epoch": self.epoch, "lr": lr, **row,
                                        "elapsed_s": time.monotonic() - start}
                        )
                    _test_pause_at(self.step)
                    budget = tc.time_budget_s > 0 and time.monotonic() - start > tc.time_budget_s
                    limit = tc.max_steps > 0 and self.step >= tc.max_steps
                    if D.any_rank(budget or limit, self.dist, self.device):
                        stopped = True
                        break
                    if tc.ckpt_interval > 0 and self.step % tc.ckpt_interval == 0:
                        self.save_state()
                        D.barrier(self.dist)
                if stopped and self.batches_done < self.steps_per_epoch:
                    self.save_state()
                    break
                self._end_epoch()
        finally:
            if bar is not None:
                bar.close()
        if self._val_step != self.step:  # score the final weights once
            val = self.validate()
            if val is not None:
                self._record_val(val)
        D.sync_buffers(self.model, self.dist)
        self._save_model("last.safetensors", {"epoch": self.epoch, "step": self.step})
        if self.best_score == -math.inf:  # no validation: the last weights are the best known
            self._save_model("best.safetensors", {"epoch": self.epoch, "step": self.step})
        self.logger.close()
        D.barrier(self.dist)
        D.shutdown(self.dist)
        return TrainResult(self.out_dir, self.epoch, self.step, self.best_score, stopped,
                           self.last_val)

    def _record_val(self, val: dict[str, float]) -> None:
        self.last_val = val
        self._val_step = self.step
        self.logger.val(self.step, {"epoch": self.epoch, **val})
        score = val.get(self.tc.best_metric, float("nan"))
        if not math.isnan(score) and score > self.best_score:
            self.best_score = score
            self._save_model(
                "best.safetensors",
                {"epoch": self.epoch, "step": self.step, self.tc.best_metric: score},
            )

    def _end_epoch(self) -> None:
        finished = self.epoch
        self.epoch += 1
        self.batches_done = 0
        if self.val_set is not None and self.tc.val_interval > 0 and (
            (finished + 1) % self.tc.val_interval == 0 or self.epoch == self.tc.epochs
        ):
            val = self.validate()
            if val is not None:
                self._record_val(val)
        self.save_state()
        D.barrier(self.dist)
