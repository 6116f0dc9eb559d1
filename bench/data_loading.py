#!/usr/bin/env python
"""Data loading: the training mapper's throughput against decoding the same files alone.

CamVid's training images go through the CamVid config's augmentations
(configs/camvid/semantic_R_18.yaml: scale jitter, 256x256 crop, flip, brightness/contrast,
sem_seg + weight image) by `DatasetMapper.from_config(cfg, is_train=True, ...)` inside
`build_train_loader`, with 0 and 2 worker processes; the reference reads the same image and
label files only (`read_image` + `LabelCodec.read`), in the main process and with 2 workers.
The files are read once before timing (page cache warm), and each loader's start-up (worker
processes, first batches) is left out of its time.

    .venv/bin/python bench/data_loading.py [--quick] [--data-root DIR] [--output results.json]

No target: the numbers say how much of a training iteration the data can cost.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

CONFIG = os.path.join(common.REPO_ROOT, "configs", "camvid", "semantic_R_18.yaml")


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    common.add_data_root(p)
    p.add_argument("--images", type=int, default=None,
                   help="training images used (default all; --quick 20)")
    p.add_argument("--batches", type=int, default=None,
                   help="timed batches per measurement (default 24; --quick 3)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per batch (default the config's SOLVER.IMS_PER_BATCH, 8; --quick 4)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="worker counts to measure (default 0 2)")
    return p.parse_args()


class DecodeOnly:
    """A dataset that only decodes an item's image and label file (the reference)."""

    def __init__(self, dicts, codec, length: int):
        self.dicts = dicts
        self.codec = codec
        self.length = length  # item i is file i mod len(dicts): as many items as a measurement takes

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        from segdet.utils.image_io import read_image

        d = self.dicts[i % len(self.dicts)]
        return read_image(d["file_name"]), self.codec.read(d["sem_seg_file_name"])


def timed_batches(loader, warmup_batches: int, batches: int) -> float:
    """Seconds for `batches` batches after `warmup_batches` (worker start-up, first prefetch)."""
    it = iter(loader)
    for _ in range(warmup_batches):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    del it  # shuts the workers down before the next candidate runs
    return seconds


def main() -> None:
    args = parse_args()
    import torch
    from torch.utils.data import DataLoader

    from segdet.config import load_config
    from segdet.data.build import build_train_loader, trivial_batch_collator
    from segdet.data.catalog import get_dataset_dicts
    from segdet.data.class_weights import resolve_class_weights
    from segdet.data.formats.camvid import register_camvid
    from segdet.data.label_codec import LabelCodec
    from segdet.data.mapper import DatasetMapper
    from segdet.data.resolve import resolve_metadata

    threads = common.setup_threads(args.threads)
    quick = args.quick
    rounds = args.rounds or (2 if quick else 5)
    batches = args.batches or (3 if quick else 24)
    root = common.camvid_root(args.data_root)
    info = common.machine_info()
    common.print_machine(info)

    register_camvid(root, name_prefix="bench_camvid")
    cfg = load_config(CONFIG, ["MODEL.DEVICE", "cpu", "DATASETS.TRAIN", "('bench_camvid_train',)",
                               "DATASETS.TEST", "()"])
    cfg.defrost()
    batch_size = args.batch_size or (4 if quick else cfg.SOLVER.IMS_PER_BATCH)
    cfg.SOLVER.IMS_PER_BATCH = batch_size
    dicts = get_dataset_dicts(["bench_camvid_train"])
    n_images = args.images or (20 if quick else len(dicts))
    dicts = dicts[:n_images]
    metadata = resolve_metadata(cfg, ["bench_camvid_train"])
    class_weights = resolve_class_weights(cfg, dicts, metadata, metadata.ignore_class_ids)
    mapper = DatasetMapper.from_config(cfg, is_train=True, metadata=metadata, class_weights=class_weights)
    codec = LabelCodec(metadata)

    # Page cache warm for every candidate alike.
    for d in dicts:
        for key in ("file_name", "sem_seg_file_name"):
            with open(d[key], "rb") as f:
                f.read()

    n_timed = batches * batch_size
    max_workers = max(args.workers)
    decode = DecodeOnly(dicts, codec, (batches + max_workers + 2) * batch_size)

    def decode_main():
        # Same amount of work as the loaders: `batches` batches of images, cycling the files.
        for i in range(batch_size):  # warm-up: one batch
            decode[i]
        start = time.perf_counter()
        for i in range(n_timed):
            decode[batch_size + i]
        return time.perf_counter() - start

    def decode_workers(workers):
        def call():
            loader = DataLoader(decode, batch_size=batch_size, shuffle=True, num_workers=workers,
                                collate_fn=trivial_batch_collator, generator=torch.Generator().manual_seed(0),
                                drop_last=True)
            return timed_batches(loader, workers + 1, batches)
        return call

    def mapper_loader(workers):
        def call():
            cfg.DATALOADER.NUM_WORKERS = workers
            loader = build_train_loader(cfg, mapper, dicts)
            return timed_batches(loader, workers + 1, batches)
        return call

    candidates = {"decode only, main process": decode_main}
    for wk in args.workers:
        if wk > 0:
            candidates[f"decode only, {wk} workers"] = decode_workers(wk)
    for wk in args.workers:
        candidates[f"mapper (CamVid augmentations), {wk} workers"] = mapper_loader(wk)

    print(f"{len(dicts)} CamVid training images from {root}; batches of {batch_size}, {batches} timed batches "
          f"({n_timed} images) per measurement, {rounds} alternating rounds; {threads} torch threads", flush=True)
    times = common.alternate(candidates, rounds, warmup=0, self_timed=True)
    stats = {k: common.summary(v) for k, v in times.items()}
    rate = {k: n_timed / s["median"] for k, s in stats.items()}
    ref = rate["decode only, main process"]
    common.print_table(
        [[k, rate[k], 1000.0 / rate[k], common.ratio(rate[k], ref)] for k in stats],
        ["pipeline", "images/s", "ms/image", "x decode only (main)"],
        title=f"CamVid training data, {n_timed} images per measurement, median of {rounds}")

    settings = {"data_root": root, "images": len(dicts), "batch_size": batch_size, "timed_batches": batches,
                "images_per_measurement": n_timed, "workers": args.workers, "rounds": rounds,
                "threads": threads, "config": os.path.relpath(CONFIG, common.REPO_ROOT),
                "augmentations": [type(a).__name__ for a in mapper.augmentations], "quick": quick}
    results = {k: dict(stats[k], images_per_second=rate[k], ratio_to_decode_only=common.ratio(rate[k], ref),
                       samples=times[k]) for k in stats}
    common.write_results(args.output or common.default_output("data_loading", quick), "data_loading",
                         info, settings, results)


if __name__ == "__main__":
    main()
