"""Samplers: which dataset index each process loads next.

Training draws an endless stream of epochs; each epoch visits every image
`crops_per_image` times (DeepDIVA's crops per image) in an order shuffled by
(seed, epoch). Process `rank` of `world_size` takes every world_size-th entry
of that stream, so the shards are disjoint and together cover each epoch.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
from torch.utils.data import Sampler

from segdet.errors import DataError
from segdet.utils import comm


def shared_random_seed() -> int:
    """A random seed drawn on the main process and shared with all the others."""
    seed = int(np.random.SeedSequence().entropy % (2**31))
    return int(comm.broadcast(seed))


class TrainingSampler(Sampler[int]):
    """Endless, shuffled, sharded stream of dataset indices.

    Global position p of the stream lies in epoch p // (size * crops_per_image);
    this process yields the positions rank, rank + world_size, ... . Every epoch's
    order depends only on (seed, epoch), so the stream can start anywhere:
    `start_iter_samples=k` skips the first k indices of this process's stream, and
    what follows is exactly what an uninterrupted run would have produced.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: Optional[int] = None,
        crops_per_image: int = 1,
        start_iter_samples: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ):
        """
        Args:
            size: number of dataset dicts.
            shuffle: shuffle each epoch (else 0..size-1, each repeated crops_per_image times).
            seed: must be the same on every process; None = a shared random seed.
            crops_per_image: visits of each image per epoch.
            start_iter_samples: indices of this process's stream to skip (resume).
            rank, world_size: default to the current process group.
        """
        if size <= 0:
            raise DataError("TrainingSampler: the training dataset is empty")
        if crops_per_image <= 0:
            raise DataError(f"TrainingSampler: crops_per_image = {crops_per_image}; must be > 0")
        if start_iter_samples < 0:
            raise DataError(f"TrainingSampler: start_iter_samples = {start_iter_samples}; must be >= 0")
        self.size = int(size)
        self.shuffle = shuffle
        self.seed = int(seed) if seed is not None else shared_random_seed()
        self.crops_per_image = int(crops_per_image)
        self.start_iter_samples = int(start_iter_samples)
        self.rank = comm.get_rank() if rank is None else int(rank)
        self.world_size = comm.get_world_size() if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise DataError(f"TrainingSampler: rank {self.rank} is not in 0..{self.world_size - 1}")

    @property
    def epoch_length(self) -> int:
        """Samples per epoch, over all processes."""
        return self.size * self.crops_per_image

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The dataset indices of one epoch, in visiting order."""
        order = np.repeat(np.arange(self.size, dtype=np.int64), self.crops_per_image)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(order)
        return order

    def iter_with_positions(self) -> Iterator[tuple[int, int]]:
        """Endless (global stream position, dataset index) pairs of this process."""
        position = self.start_iter_samples * self.world_size + self.rank
        epoch_len = self.epoch_length
        epoch, order = -1, None
        while True:
            e, offset = divmod(position, epoch_len)
            if e != epoch:
                epoch, order = e, self.epoch_order(e)
            yield position, int(order[offset])
            position += self.world_size

    def __iter__(self) -> Iterator[int]:
        for _, index in self.iter_with_positions():
            yield index


class PositionedSampler(Sampler[tuple[int, int]]):
    """Yields TrainingSampler's (position, index) pairs, so a dataset can seed each sample by position."""

    def __init__(self, sampler: TrainingSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self.sampler.iter_with_positions()


class InferenceSampler(Sampler[int]):
    """Each process gets a contiguous shard of 0..size-1, in order; shard sizes differ by at most 1."""

    def __init__(self, size: int, rank: Optional[int] = None, world_size: Optional[int] = None):
        self.size = int(size)
        rank = comm.get_rank() if rank is None else int(rank)
        world_size = comm.get_world_size() if world_size is None else int(world_size)
        if not 0 <= rank < world_size:
            raise DataError(f"InferenceSampler: rank {rank} is not in 0..{world_size - 1}")
        per_rank, extra = divmod(self.size, world_size)
        self.begin = rank * per_rank + min(rank, extra)
        self.end = self.begin + per_rank + (1 if rank < extra else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.begin, self.end))

    def __len__(self) -> int:
        return self.end - self.begin
