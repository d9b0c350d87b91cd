"""Two CPU processes under torchrun (gloo): both finish, weights stay identical across
ranks, and validation scores every sample exactly once despite the padded split."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_data import make_tiny_dataset

WORKER = """
import sys, torch
from avag_core.config import load_config
from avag_core.training.trainer import Trainer
data, out = sys.argv[1], sys.argv[2]
cfg = load_config("tiny", ["data.cache_dir=", "train.epochs=1", "train.batch_size=2",
                           "train.threads=1", "train.ckpt_interval=0"])
trainer = Trainer(cfg, data, out, device="cpu", train_csv="train_small.csv",
                  val_csv="val_small.csv", progress=False)
result = trainer.fit()
torch.save(trainer.model.state_dict(), f"{out}/rank{trainer.dist.rank}.pt")
# one file per rank: two processes printing to one pipe interleave their lines
with open(f"{out}/rank{trainer.dist.rank}.txt", "w") as fh:
    fh.write(f"WORLD {trainer.dist.world_size} STEP {result.step}")
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path: Path):
    data = make_tiny_dataset(tmp_path / "data", n_train=7, n_val=3)  # odd sizes: padding
    out = tmp_path / "run"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), str(data), str(out)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    for rank in (0, 1):  # 7 samples -> 4 per rank -> 2 steps
        assert (out / f"rank{rank}.txt").read_text() == "WORLD 2 STEP 2", log[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    saved = load_file(str(out / "last.safetensors"))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        assert torch.equal(r0[k], saved[k]), k
    assert (out / "checkpoint.pt").exists() and (out / "best.safetensors").exists()
    with (out / "val_log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(int(r["num_samples"]) == 3 for r in rows)
