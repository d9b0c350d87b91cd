"""A sampler whose order is a pure function of (seed, epoch) and that can start mid-epoch.

Resuming a killed run exactly needs the same sample order as the uninterrupted run and the
batches already consumed skipped; torch's samplers draw from the global RNG instead.
For several processes the order is padded (by repeating its head) to a multiple of the world
size and strided over ranks, like ``DistributedSampler``; evaluation removes the repeats by
sample index.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    def __init__(
        self,
        num_samples: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0  # samples of this rank's share to skip (resume)
        self.per_rank = -(-num_samples // world_size) if num_samples else 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def rank_indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        total = self.per_rank * self.world_size
        while len(order) < total:  # pad so every rank gets the same number of batches
            order += order[: total - len(order)]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.rank_indices()[self.start :])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)
