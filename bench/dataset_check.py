#!/usr/bin/env python
"""The pre-flight dataset check against decoding the same files alone.

CamVid's training pairs (480x360 image PNG + label PNG) through `segdet.data.check.check_dataset`
with the CamVid config's classes
(decode every file to the end, check the label values, sizes, and count the class pixels
that class weights "auto" need), cold (an empty cache) and cached (the second start of a
training), against the bare work it cannot avoid: `read_image` + `LabelCodec.read` of every
pair, in the main process and split over the same number of processes as the check. The
files are read once before timing (page cache warm).

    .venv/bin/python bench/dataset_check.py [--quick] [--data-root DIR] [--processes N] [--output results.json]

No target: the numbers say what the check adds to the start of a training run.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

CONFIG = os.path.join(common.REPO_ROOT, "configs", "camvid", "semantic_R_18.yaml")


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    common.add_data_root(p)
    p.add_argument("--processes", type=int, default=None, help="check processes (default: the usable cores)")
    return p.parse_args()


def _decode_pair(pair):
    from segdet.utils.image_io import read_image

    image_path, label_path, codec = pair
    return read_image(image_path).shape, codec.read(label_path).shape


def main() -> None:
    args = parse_args()
    from concurrent.futures import ProcessPoolExecutor

    from segdet.config import load_config
    from segdet.data.catalog import get_dataset_dicts
    from segdet.data.check import check_dataset
    from segdet.data.check_cache import FileFactsCache
    from segdet.data.formats.camvid import register_camvid
    from segdet.data.label_codec import LabelCodec
    from segdet.data.resolve import resolve_metadata

    threads = common.setup_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 5)
    processes = args.processes or common.usable_cores()
    root = common.camvid_root(args.data_root)
    info = common.machine_info()
    common.print_machine(info)
    register_camvid(root, name_prefix="bench_camvid")
    dicts = get_dataset_dicts(["bench_camvid_train"])[:40 if args.quick else None]
    cfg = load_config(CONFIG, ["DATASETS.TRAIN", "('bench_camvid_train',)", "DATASETS.TEST", "()"])
    metadata = resolve_metadata(cfg, ["bench_camvid_train"])
    codec = LabelCodec(metadata)
    for d in dicts:  # page cache warm for every candidate alike
        for key in ("file_name", "sem_seg_file_name"):
            with open(d[key], "rb") as f:
                f.read()
    pairs = [(d["file_name"], d["sem_seg_file_name"], codec) for d in dicts]
    cache_root = tempfile.mkdtemp(prefix="segdet-bench-check-")
    warm_cache = os.path.join(cache_root, "warm")
    check_dataset(dicts, metadata, "camvid_train", cache=FileFactsCache.for_dataset("camvid_train", warm_cache),
                  processes=processes)
    cold_runs = iter(range(10**6))

    def decode_main():
        for pair in pairs:
            _decode_pair(pair)

    def decode_processes():
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_decode_pair, pairs, chunksize=max(1, len(pairs) // (8 * processes))))

    def check_cold():
        cache = FileFactsCache.for_dataset("camvid_train", os.path.join(cache_root, f"cold{next(cold_runs)}"))
        result = check_dataset(dicts, metadata, "camvid_train", cache=cache, processes=processes)
        assert result.files_read == 2 * len(dicts) and not result.problems

    def check_cached():
        result = check_dataset(dicts, metadata, "camvid_train",
                               cache=FileFactsCache.for_dataset("camvid_train", warm_cache), processes=processes)
        assert result.files_read == 0 and not result.problems

    candidates = {
        "decode alone, main process": decode_main,
        f"decode alone, {processes} processes": decode_processes,
        f"check, cold cache, {processes} processes": check_cold,
        "check, cached": check_cached,
    }
    print(f"{len(dicts)} CamVid training pairs from {root}; {rounds} alternating rounds after a warm-up; "
          f"{processes} processes; {threads} torch threads", flush=True)
    start = time.perf_counter()
    times = common.alternate(candidates, rounds, warmup=1)
    stats = {k: common.summary(v) for k, v in times.items()}
    ref = stats[f"decode alone, {processes} processes"]["median"]
    common.print_table(
        [[k, s["median"], len(dicts) / s["median"], common.ratio(s["median"], ref)] for k, s in stats.items()],
        ["candidate", "seconds", "pairs/s", f"x decode alone ({processes} processes)"],
        title=f"{len(dicts)} CamVid training pairs, median of {rounds} ({time.perf_counter() - start:.0f} s in all)")
    settings = {"data_root": root, "pairs": len(dicts), "processes": processes, "rounds": rounds,
                "threads": threads, "quick": args.quick}
    results = {k: dict(stats[k], ratio_to_decode_alone_same_processes=common.ratio(stats[k]["median"], ref),
                       samples=times[k]) for k in stats}
    common.write_results(args.output or common.default_output("dataset_check", args.quick), "dataset_check",
                         info, settings, results)


if __name__ == "__main__":
    main()
