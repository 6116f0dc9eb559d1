"""Samplers and loaders: epoch coverage, sharding, exact resume, and skipping bad samples."""
import multiprocessing
from collections import Counter
from itertools import islice

import numpy as np
import pytest
import torch
from PIL import Image

from segdet.config import get_cfg
from segdet.data.build import build_test_loader, build_train_loader
from segdet.data.mapper import DatasetMapper
from segdet.structures.metadata import Metadata
from segdet.data.samplers import InferenceSampler, TrainingSampler
from segdet.data.transforms import RandomBrightness, RandomCrop, RandomFlip, RandomRotation
from segdet.errors import DataError
from tests.logs import captured_warnings

S = 12  # image size


def _metadata():
    return Metadata(["bg", "a", "b", "border"], ignore_class_ids=[3], thing_class_ids=[1, 2])


def _dataset(tmp_path, n=5):
    dicts = []
    for i in range(n):
        rng = np.random.default_rng(i)
        image = rng.integers(0, 256, size=(S, S, 3)).astype(np.uint8)
        label = rng.integers(0, 4, size=(S, S)).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / f"im{i}.png")
        Image.fromarray(label, mode="L").save(tmp_path / f"lb{i}.png")
        dicts.append({"file_name": str(tmp_path / f"im{i}.png"), "sem_seg_file_name": str(tmp_path / f"lb{i}.png"),
                      "height": S, "width": S, "image_id": f"im{i}"})
    return dicts


def _mapper(is_train=True):
    augs = []
    if is_train:
        augs = [RandomRotation((-20, 20)), RandomCrop(8, 8), RandomFlip("both"), RandomBrightness(0.7, 1.3)]
    return DatasetMapper(is_train, augs, _metadata(), ignore_class_ids=[3])


def _cfg(seed=7, batch=2, workers=0, skip=False):
    cfg = get_cfg()
    cfg.SEED = seed
    cfg.SOLVER.IMS_PER_BATCH = batch
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.DATALOADER.SKIP_BAD_SAMPLES = skip
    return cfg


def _same_batches(a, b):
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b):
        assert [x["file_name"] for x in batch_a] == [x["file_name"] for x in batch_b]
        for x, y in zip(batch_a, batch_b):
            assert torch.equal(x["image"], y["image"]) and torch.equal(x["sem_seg"], y["sem_seg"])


def test_training_sampler_visits_each_image_crops_per_image_times_per_epoch():
    sampler = TrainingSampler(5, seed=3, crops_per_image=3, rank=0, world_size=1)
    stream = list(islice(iter(sampler), 45))
    epochs = [stream[i:i + 15] for i in range(0, 45, 15)]
    for epoch in epochs:
        assert Counter(epoch) == {i: 3 for i in range(5)}
    assert epochs[0] != epochs[1]  # shuffled anew each epoch
    unshuffled = TrainingSampler(3, shuffle=False, seed=0, crops_per_image=2, rank=0, world_size=1)
    assert list(islice(iter(unshuffled), 6)) == [0, 0, 1, 1, 2, 2]


def test_training_sampler_shards_are_disjoint_and_cover_each_epoch():
    size, crops = 6, 2
    shards = [TrainingSampler(size, seed=11, crops_per_image=crops, rank=r, world_size=2) for r in range(2)]
    epoch = size * crops
    pos = [list(islice(s.iter_with_positions(), epoch)) for s in shards]  # two epochs' worth, all ranks
    positions = [{p for p, _ in rank_pos} for rank_pos in pos]
    assert not positions[0] & positions[1]
    assert positions[0] | positions[1] == set(range(2 * epoch))
    first_epoch = [i for rank_pos in pos for p, i in rank_pos if p < epoch]
    assert Counter(first_epoch) == {i: crops for i in range(size)}
    # The shards interleave one global stream.
    single = list(islice(iter(TrainingSampler(size, seed=11, crops_per_image=crops, rank=0, world_size=1)), 2 * epoch))
    assert [i for _, i in pos[0]] == single[0::2] and [i for _, i in pos[1]] == single[1::2]


def test_training_sampler_starts_anywhere_in_its_stream():
    full = list(islice(iter(TrainingSampler(4, seed=5, crops_per_image=2, rank=1, world_size=3)), 30))
    resumed = list(islice(iter(TrainingSampler(4, seed=5, crops_per_image=2, start_iter_samples=13,
                                               rank=1, world_size=3)), 17))
    assert resumed == full[13:]


def test_inference_sampler_contiguous_shards():
    assert [list(InferenceSampler(7, rank=r, world_size=2)) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6]]
    shards = [list(InferenceSampler(7, rank=r, world_size=3)) for r in range(3)]
    assert shards == [[0, 1, 2], [3, 4], [5, 6]]
    assert len(InferenceSampler(7, rank=2, world_size=3)) == 2


def test_resume_gives_the_batches_of_a_straight_run(tmp_path):
    dicts = _dataset(tmp_path)
    cfg = _cfg()
    k = 4
    straight = list(islice(iter(build_train_loader(cfg, _mapper(), dicts)), k + 3))
    resumed = list(islice(iter(build_train_loader(cfg, _mapper(), dicts, start_iter=k)), 3))
    assert all(len(b) == 2 for b in straight)
    _same_batches(straight[k:], resumed)
    # The samples are really augmented: the same image at different stream positions differs.
    by_file = {}
    for batch in straight:
        for x in batch:
            by_file.setdefault(x["file_name"], []).append(x["image"])
    repeated = [imgs for imgs in by_file.values() if len(imgs) > 1]
    assert repeated and any(not torch.equal(imgs[0], imgs[1]) for imgs in repeated)
    # Another seed gives other batches.
    other = list(islice(iter(build_train_loader(_cfg(seed=8), _mapper(), dicts)), 1))
    assert [x["file_name"] for x in other[0]] != [x["file_name"] for x in straight[0]] or not torch.equal(
        other[0][0]["image"], straight[0][0]["image"])


def test_worker_processes_give_the_same_batches(tmp_path):
    dicts = _dataset(tmp_path, n=3)
    in_process = list(islice(iter(build_train_loader(_cfg(workers=0), _mapper(), dicts)), 3))
    with_workers = list(islice(iter(build_train_loader(_cfg(workers=2), _mapper(), dicts)), 3))
    _same_batches(in_process, with_workers)


def _break_image(d):
    with open(d["file_name"], "wb") as f:
        f.write(b"garbage")


@pytest.mark.parametrize("workers", [0, 2])
def test_training_skips_a_bad_sample_with_a_warning_and_counts_it(tmp_path, workers):
    dicts = _dataset(tmp_path)
    _break_image(dicts[2])
    with captured_warnings("segdet.data.build") as warnings:
        loader = build_train_loader(_cfg(skip=True, workers=workers), _mapper(), dicts)
        it = iter(loader)
        batches = list(islice(it, 6))  # more than two epochs of 5 images
        it.close()
    assert all(len(b) == 2 for b in batches)
    files = {x["file_name"] for b in batches for x in b}
    assert dicts[2]["file_name"] not in files and len(files) == 4
    # Counted in the main process, whichever process loaded the sample: once per draw of the
    # bad index among the 12 stream positions consumed.
    draws = list(islice(iter(TrainingSampler(5, seed=7, rank=0, world_size=1)), 12)).count(2)
    assert draws >= 2 and dict(loader.skipped) == {dicts[2]["file_name"]: draws}
    if workers == 0:  # (a worker's log records stay in the worker)
        assert len(warnings) == 1 and dicts[2]["file_name"] in warnings[0] and "corrupt" in warnings[0]


@pytest.mark.parametrize("workers", [0, 1])
def test_training_without_skipping_stops_on_a_bad_sample(tmp_path, workers):
    dicts = _dataset(tmp_path)
    _break_image(dicts[2])
    expected = f"image is corrupt or not an image format OpenCV can read: {dicts[2]['file_name']}"
    with pytest.raises(DataError) as info:
        list(islice(iter(build_train_loader(_cfg(skip=False, workers=workers), _mapper(), dicts)), 6))
    # The same exception and message as without workers: no worker traceback pasted into it.
    assert str(info.value) == expected


class _Exploding:
    """A mapper with a bug (not bad data): ValueError on one file."""

    def __init__(self, mapper, bad_file):
        self.mapper, self.bad_file = mapper, bad_file

    def __call__(self, d, rng=None):
        if d["file_name"] == self.bad_file:
            raise ValueError("a bug in the mapper")
        return self.mapper(d, rng)


def test_other_exception_in_a_worker_is_raised_as_itself_with_the_worker_traceback(tmp_path):
    dicts = _dataset(tmp_path)
    before = {p.pid for p in multiprocessing.active_children()}
    loader = build_train_loader(_cfg(skip=True, workers=1), _Exploding(_mapper(), dicts[2]["file_name"]), dicts)
    it = iter(loader)
    with pytest.raises(ValueError, match="^a bug in the mapper$") as info:
        list(islice(it, 6))
    cause = str(info.value.__cause__)
    assert "DataLoader worker process 0" in cause and "in __call__" in cause and "ValueError" in cause
    workers = {p.pid for p in multiprocessing.active_children()} - before
    assert len(workers) == 1
    it.close()  # what the trainer does after a failure: the worker ends now, not at exit
    assert not workers & {p.pid for p in multiprocessing.active_children()}


def test_all_samples_bad_is_an_error_not_a_hang(tmp_path):
    dicts = _dataset(tmp_path, n=3)
    for d in dicts:
        _break_image(d)
    with pytest.raises(DataError, match="all 3 training samples failed"):
        next(iter(build_train_loader(_cfg(skip=True), _mapper(), dicts)))


def test_test_loader_in_order_and_drops_bad_samples(tmp_path):
    dicts = _dataset(tmp_path)
    outputs = [x for b in build_test_loader(_mapper(False), dicts, batch_size=2) for x in b]
    assert [x["image_id"] for x in outputs] == [d["image_id"] for d in dicts]
    assert outputs[0]["image"].shape == (3, S, S)

    _break_image(dicts[1])
    with captured_warnings("segdet.data.build") as warnings:
        loader = build_test_loader(_mapper(False), dicts, batch_size=1, skip_bad_samples=True)
        batches = list(loader)
    assert [b[0]["image_id"] for b in batches] == ["im0", "im2", "im3", "im4"]
    assert dict(loader.skipped) == {dicts[1]["file_name"]: 1}
    assert len(warnings) == 1 and dicts[1]["file_name"] in warnings[0]
    with pytest.raises(DataError, match=dicts[1]["file_name"]):
        list(build_test_loader(_mapper(False), dicts))
