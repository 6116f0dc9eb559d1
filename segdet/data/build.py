"""Data loaders for training (endless, sharded, resumable) and testing (each image once).

Reproducibility: the sampler's order depends on (seed, epoch) only, and every
training sample's augmentations draw from a generator seeded by (seed, stream
position, dataset index). Resuming at iteration k therefore yields exactly the
batches an uninterrupted run would, whatever the number of workers. Worker
processes also seed their global RNGs from (seed, rank, worker id).
"""
from __future__ import annotations

import logging
import random
import signal
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segdet.data.samplers import InferenceSampler, PositionedSampler, TrainingSampler, shared_random_seed
from segdet.errors import ConfigError, DataError
from segdet.utils import comm

logger = logging.getLogger(__name__)

Mapper = Callable[..., dict]


def trivial_batch_collator(batch: list) -> list:
    """A batch is the list of model input dicts, as they are."""
    return batch


def _drop_failed_collator(batch: list) -> list:
    return [x for x in batch if x is not None]


def _describe(d: dict) -> str:
    return str(d.get("file_name") or d.get("image_id") or "?")


class _WorkerInit:
    """Seeds a worker's numpy, random and torch RNGs from (seed, rank, worker id), and lets the
    main process handle Ctrl-C / SIGTERM: a signal sent to the whole process group must not kill
    the workers under the trainer's feet while it saves its checkpoint."""

    def __init__(self, seed: int, rank: int):
        self.seed = seed
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        state = np.random.SeedSequence([self.seed, self.rank, worker_id]).generate_state(2)
        np.random.seed(int(state[0]))
        random.seed(int(state[1]))
        torch.manual_seed((int(state[0]) << 32) | int(state[1]))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class TrainingMapDataset(Dataset):
    """Maps (stream position, index) to a model input dict, replacing bad samples if asked.

    A replacement is the next dataset index that maps without DataError, so it is
    the same in every run. `num_skipped` counts replaced samples (in this process).
    """

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Mapper, seed: int, skip_bad_samples: bool):
        self.dataset_dicts = list(dataset_dicts)
        self.mapper = mapper
        self.seed = int(seed)
        self.skip_bad_samples = skip_bad_samples
        self.num_skipped = 0
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset_dicts)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        position, index = key
        n = len(self.dataset_dicts)
        last_error: Optional[DataError] = None
        for attempt in range(n):
            i = (index + attempt) % n
            if i in self._bad:
                self.num_skipped += 1
                continue
            rng = np.random.default_rng([self.seed, position, i])
            try:
                return self.mapper(self.dataset_dicts[i], rng)
            except DataError as e:
                if not self.skip_bad_samples:
                    raise
                last_error = e
                self._bad.add(i)
                self.num_skipped += 1
                logger.warning("Skipping bad training sample %s: %s (%d skipped so far in this process)",
                               _describe(self.dataset_dicts[i]), e, self.num_skipped)
        raise DataError(f"all {n} training samples failed to load; the last error: {last_error}")


class TestMapDataset(Dataset):
    """Maps an index to a model input dict; with skip_bad_samples a bad sample becomes None (dropped)."""

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Mapper, skip_bad_samples: bool):
        self.dataset_dicts = list(dataset_dicts)
        self.mapper = mapper
        self.skip_bad_samples = skip_bad_samples
        self.num_skipped = 0

    def __len__(self) -> int:
        return len(self.dataset_dicts)

    def __getitem__(self, index: int) -> Optional[dict]:
        d = self.dataset_dicts[index]
        try:
            return self.mapper(d)
        except DataError as e:
            if not self.skip_bad_samples:
                raise
            self.num_skipped += 1
            logger.warning("Skipping bad test sample %s: %s (%d skipped so far in this process)",
                           _describe(d), e, self.num_skipped)
            return None


class TestLoader(DataLoader):
    """A DataLoader that leaves out batches whose samples were all skipped.

    len() counts batches before skipping.
    """

    def __iter__(self):
        for batch in super().__iter__():
            if batch:
                yield batch


def _has_instances(d: dict) -> bool:
    return any(not a.get("iscrowd", 0) for a in d.get("annotations") or [])


def build_train_loader(cfg, mapper: Mapper, dataset_dicts: Sequence[dict], start_iter: int = 0) -> DataLoader:
    """An endless loader of training batches (lists of model input dicts) for this process.

    Args:
        cfg: reads SOLVER.IMS_PER_BATCH (over all processes), DATALOADER.*, SEED,
            INPUT.CROP.CROPS_PER_IMAGE.
        mapper: called as mapper(dataset_dict, rng).
        dataset_dicts: the training set.
        start_iter: the iteration to resume at; the batches are those an
            uninterrupted run would see from that iteration on.
    """
    dataset_dicts = list(dataset_dicts)
    if cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS:
        before = len(dataset_dicts)
        dataset_dicts = [d for d in dataset_dicts if _has_instances(d)]
        logger.info("Removed %d images without annotations; %d left", before - len(dataset_dicts), len(dataset_dicts))
    if not dataset_dicts:
        raise DataError("the training set is empty (DATASETS.TRAIN)")
    world_size, rank = comm.get_world_size(), comm.get_rank()
    total = cfg.SOLVER.IMS_PER_BATCH
    if total <= 0 or total % world_size:
        raise ConfigError(
            f"config key SOLVER.IMS_PER_BATCH = {total} must be a positive multiple of the {world_size} processes"
        )
    batch_size = total // world_size
    seed = cfg.SEED if cfg.SEED >= 0 else shared_random_seed()
    if cfg.SEED < 0:
        logger.info("Data loader seed (SEED < 0, drawn at random): %d", seed)
    sampler = TrainingSampler(
        len(dataset_dicts),
        shuffle=True,
        seed=seed,
        crops_per_image=cfg.INPUT.CROP.CROPS_PER_IMAGE,
        start_iter_samples=start_iter * batch_size,
        rank=rank,
        world_size=world_size,
    )
    dataset = TrainingMapDataset(dataset_dicts, mapper, seed, cfg.DATALOADER.SKIP_BAD_SAMPLES)
    num_workers = cfg.DATALOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        sampler=PositionedSampler(sampler),
        batch_size=batch_size,
        drop_last=True,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=_WorkerInit(seed, rank),
        generator=torch.Generator().manual_seed(seed),
    )


def build_test_loader(
    mapper: Mapper,
    dataset_dicts: Sequence[dict],
    batch_size: int = 1,
    num_workers: int = 0,
    skip_bad_samples: bool = False,
) -> DataLoader:
    """A loader over this process's contiguous shard of the dataset, each image once, in order.

    Args:
        mapper: called as mapper(dataset_dict).
        dataset_dicts: the test set.
        batch_size: images per batch.
        num_workers: loader processes.
        skip_bad_samples: drop a sample that raises DataError (with a warning)
            instead of stopping.
    """
    if batch_size <= 0:
        raise ConfigError(f"test batch size {batch_size}; must be > 0")
    dataset = TestMapDataset(dataset_dicts, mapper, skip_bad_samples)
    return TestLoader(
        dataset,
        sampler=InferenceSampler(len(dataset)),
        batch_size=batch_size,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=_drop_failed_collator,
    )
