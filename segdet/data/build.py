"""Data loaders for training (endless, sharded, resumable) and testing (each image once).

Failures: a sample's exception travels from the worker to the main process as itself (a
`RemoteFailure`), so that a DataError prints one line there as it would without workers;
the files of skipped samples travel with the batches and are counted per loader. The
iterators shut their workers down on `close()`, whatever ended the iteration.

Reproducibility: the sampler's order depends on (seed, epoch) only, and every
training sample's augmentations draw from a generator seeded by (seed, stream
position, dataset index). Resuming at iteration k therefore yields exactly the
batches an uninterrupted run would, whatever the number of workers. Worker
processes also seed their global RNGs from (seed, rank, worker id).
"""
from __future__ import annotations

import logging
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from segdet.data.mosaic import Mosaic
from segdet.data.samplers import InferenceSampler, PositionedSampler, TrainingSampler, shared_random_seed
from segdet.errors import ConfigError, DataError
from segdet.utils import comm
from segdet.utils.failures import RemoteFailure

logger = logging.getLogger(__name__)

Mapper = Callable[..., dict]


def trivial_batch_collator(batch: list) -> list:
    """A batch is the list of model input dicts, as they are."""
    return batch


def _describe(d: dict) -> str:
    return str(d.get("file_name") or d.get("image_id") or "?")


@dataclass
class LoadedSample:
    """What a loader's dataset returns for one item: the model input dict (None when the sample
    was skipped), the files of the bad samples left out on the way, or the failure to raise."""

    sample: Optional[dict]
    skipped: tuple[str, ...] = ()
    failure: Optional[RemoteFailure] = None


def _capture_failure(exception: BaseException) -> LoadedSample:
    info = get_worker_info()
    where = f"DataLoader worker process {info.id}" if info is not None else "data loading in the main process"
    return LoadedSample(None, failure=RemoteFailure.capture(exception, where))


def shutdown_loader_iterator(iterator) -> None:
    """Stop a loader iterator's worker processes now.

    torch stops them when the iterator is garbage-collected, but an exception's traceback keeps
    the iterator alive until the interpreter exits, and at exit torch does nothing: the workers
    would wait for work forever while Python waits for them.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


class BatchIterator:
    """The main-process side of a loader: raises a sample's failure as itself, counts the files
    of skipped samples in `skipped` (file -> times), and yields lists of model input dicts."""

    def __init__(self, batches: Iterator[list[LoadedSample]], skipped: Counter):
        self._batches = batches
        self.skipped = skipped

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> list[dict]:
        loaded = next(self._batches)
        for item in loaded:
            if item.failure is not None:
                item.failure.reraise()
        for item in loaded:
            self.skipped.update(item.skipped)
        return [item.sample for item in loaded if item.sample is not None]

    def close(self) -> None:
        shutdown_loader_iterator(self._batches)
        self._batches = iter(())


def leave_process_group(worker_id: int = 0) -> None:
    """Move a loader worker into a process group of its own (a worker_init_fn).

    Ctrl-C or a SIGTERM sent to the trainer's process group must not kill the workers under
    the trainer's feet while it saves its checkpoint; yet a worker must still die of the
    SIGTERM its loader sends when it shuts down (a worker that ignored it made the process
    wait for it forever at exit).
    """
    try:
        os.setpgid(0, 0)
    except (AttributeError, OSError):  # not on this platform: ignore the group's signals instead
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return
    # A background group writing to a terminal set to `stty tostop` would be stopped, and its
    # warnings (a skipped sample) with it; ignoring SIGTTOU lets the write through.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)


class _WorkerInit:
    """Seeds a worker's numpy, random and torch RNGs from (seed, rank, worker id), and moves it
    into a process group of its own (`leave_process_group`)."""

    def __init__(self, seed: int, rank: int):
        self.seed = seed
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        state = np.random.SeedSequence([self.seed, self.rank, worker_id]).generate_state(2)
        np.random.seed(int(state[0]))
        random.seed(int(state[1]))
        torch.manual_seed((int(state[0]) << 32) | int(state[1]))
        leave_process_group(worker_id)


class TrainingMapDataset(Dataset):
    """Maps (stream position, index) to a LoadedSample, replacing bad samples if asked.

    A replacement is the next dataset index that maps without DataError, so it is
    the same in every run; the replaced samples' files are in `LoadedSample.skipped`.
    With a `Mosaic`, a sample may become a mosaic with three partners, drawn from
    (seed, position, index) and each loaded as a sample is (bad ones replaced alike).
    """

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Mapper, seed: int, skip_bad_samples: bool,
                 mosaic: Optional[Mosaic] = None):
        self.dataset_dicts = list(dataset_dicts)
        self.mapper = mapper
        self.seed = int(seed)
        self.skip_bad_samples = skip_bad_samples
        self.mosaic = mosaic
        self._bad: set[int] = set()  # found in this process

    def __len__(self) -> int:
        return len(self.dataset_dicts)

    def __getitem__(self, key: tuple[int, int]) -> LoadedSample:
        try:
            return self._load(*key)
        except Exception as e:
            return _capture_failure(e)

    def _load(self, position: int, index: int) -> LoadedSample:
        sample, skipped = self._map_first_good(position, index)
        if self.mosaic is None:
            return LoadedSample(sample, tuple(skipped))
        rng = np.random.default_rng([self.seed, position, index, 1])
        partners = self.mosaic.partners(rng, len(self.dataset_dicts))
        if partners is None:
            return LoadedSample(sample, tuple(skipped))
        samples = [sample]
        for k, partner in enumerate(partners):
            partner_sample, partner_skipped = self._map_first_good(position, partner, 2 + k)
            samples.append(partner_sample)
            skipped += partner_skipped
        return LoadedSample(self.mosaic.combine(samples, rng), tuple(skipped))

    def _map_first_good(self, position: int, index: int, *stream: int) -> tuple[dict, list[str]]:
        """The first sample from `index` on that maps (its augmentations seeded by
        (seed, position, its index, *stream)), and the files of the bad ones before it."""
        n = len(self.dataset_dicts)
        last_error: Optional[DataError] = None
        skipped: list[str] = []
        for attempt in range(n):
            i = (index + attempt) % n
            if i in self._bad:
                skipped.append(_describe(self.dataset_dicts[i]))
                continue
            rng = np.random.default_rng([self.seed, position, i, *stream])
            try:
                return self.mapper(self.dataset_dicts[i], rng), skipped
            except DataError as e:
                if not self.skip_bad_samples:
                    raise
                last_error = e
                self._bad.add(i)
                skipped.append(_describe(self.dataset_dicts[i]))
                logger.warning("Skipping bad training sample %s: %s", _describe(self.dataset_dicts[i]), e)
        raise DataError(f"all {n} training samples failed to load; the last error: {last_error}")


class TestMapDataset(Dataset):
    """Maps an index to a LoadedSample; with skip_bad_samples a bad sample is left out."""

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Mapper, skip_bad_samples: bool):
        self.dataset_dicts = list(dataset_dicts)
        self.mapper = mapper
        self.skip_bad_samples = skip_bad_samples

    def __len__(self) -> int:
        return len(self.dataset_dicts)

    def __getitem__(self, index: int) -> LoadedSample:
        d = self.dataset_dicts[index]
        try:
            return LoadedSample(self.mapper(d))
        except DataError as e:
            if not self.skip_bad_samples:
                return _capture_failure(e)
            logger.warning("Skipping bad test sample %s: %s", _describe(d), e)
            return LoadedSample(None, (_describe(d),))
        except Exception as e:
            return _capture_failure(e)


class TrainLoader(DataLoader):
    """A DataLoader whose iterators are BatchIterators; `skipped` counts the files of skipped
    samples (file -> times) over all of them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: Counter = Counter()

    def __iter__(self) -> BatchIterator:
        return BatchIterator(super().__iter__(), self.skipped)


class TestLoader(DataLoader):
    """A DataLoader of lists of model input dicts that leaves out batches whose samples were all
    skipped; `skipped` counts the files of skipped samples (file -> times).

    len() counts batches before skipping.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: Counter = Counter()

    def __iter__(self) -> Iterator[list[dict]]:
        batches = BatchIterator(super().__iter__(), self.skipped)
        try:
            for batch in batches:
                if batch:
                    yield batch
        finally:
            batches.close()


def gather_skipped(loader, local: bool = False) -> Counter:
    """The files of the samples `loader` skipped (file -> times), over every rank: all of them
    must call it (`local`: this rank's only, when the others may not be here)."""
    mine = Counter(getattr(loader, "skipped", None) or {})
    if local:
        return mine
    return sum((Counter(c) for c in comm.all_gather(dict(mine))), Counter())


def _has_instances(d: dict) -> bool:
    return any(not a.get("iscrowd", 0) for a in d.get("annotations") or [])


def build_train_loader(cfg, mapper: Mapper, dataset_dicts: Sequence[dict], start_iter: int = 0) -> TrainLoader:
    """An endless loader of training batches (lists of model input dicts) for this process.

    Its iterator's `close()` stops the worker processes; `loader.skipped` counts the files of
    the samples skipped in this process (DATALOADER.SKIP_BAD_SAMPLES).

    Args:
        cfg: reads SOLVER.IMS_PER_BATCH (over all processes), DATALOADER.*, SEED,
            INPUT.CROP.CROPS_PER_IMAGE, INPUT.MOSAIC (with MODEL.PIXEL_MEAN and
            MODEL.SEM_SEG_HEAD.IGNORE_VALUE, its fill).
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
    dataset = TrainingMapDataset(dataset_dicts, mapper, seed, cfg.DATALOADER.SKIP_BAD_SAMPLES, Mosaic.from_config(cfg))
    num_workers = cfg.DATALOADER.NUM_WORKERS
    return TrainLoader(
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
) -> TestLoader:
    """A loader over this process's contiguous shard of the dataset, each image once, in order.

    `loader.skipped` counts the files of the samples skipped in this process.

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
        collate_fn=trivial_batch_collator,
        worker_init_fn=leave_process_group,
    )
