#!/usr/bin/env python
"""Large images: tiled prediction of 2048^2, 4096^2 and 8000^2 images, time per megapixel and
peak resident memory.

Each (size, overlap) runs in a fresh subprocess, so that its peak memory is its own. The model
is the demo config's semantic-only model (ResNet-18, FPN 96; random weights: speed does not
depend on them; training class weights recorded and the class weight correction on) or a segdet checkpoint (--weights), through `segdet.inference.predictor.Predictor`
with tiles of 512 and overlap 0.5 (the default) and 0.25, `return_scores=False` (outputs:
segmentation_image int64 + segmentation_confidence float32, 12 bytes per pixel).

Memory: the kernel's peak-RSS mark is reset right before the prediction (the image is already
in memory); "working memory" = that peak - the RSS just before - the outputs' bytes. It must
not grow with the image. By design one buffer grows with the image's width (not its area):
the band of C x tile x W float32 scores of the row of tiles in progress; its size is shown.
Time: wall seconds, and the process's CPU seconds (one thread: the work done, whatever else the
machine runs; on a shared machine the wall time follows the other jobs' load, also recorded).
The number of tiles per megapixel grows with the image (the last tile of a row or column
is shifted back inside the image, so small images have fewer overlapping tiles per pixel):
time per tile is shown and checked too; it is the cost the implementation controls.

    .venv/bin/python bench/large_images.py [--quick] [--weights model.pth] [--output results.json]

With instances (a Panoptic FPN checkpoint), on mosaics of demo images so that there are objects
to detect and stitch: `--weights output/demo/model_final.pth --content demo`. The outputs then
also hold panoptic_seg (int32, 4 bytes per pixel) and the instances (their crops' bytes).

Targets: time per megapixel (and per tile) of every size within 20% of the smallest size's;
working memory within 20% + 64 MiB of the smallest size's (strict), and the same plus twice the
band's growth (the band and the per-row segmentation temporaries, which scale with the width).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

DEMO_CONFIG = os.path.join(common.REPO_ROOT, "configs", "demo", "quickstart.yaml")
LINEARITY_TOLERANCE = 0.20
MEMORY_TOLERANCE = 0.20
MEMORY_SLACK_MIB = 64


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="square image sides (default 2048 4096 8000; --quick 256 512)")
    p.add_argument("--tile", type=int, default=None, help="tile size (default 512; --quick 128)")
    p.add_argument("--overlaps", type=float, nargs="+", default=[0.5, 0.25],
                   help="tile overlaps (default 0.5 0.25)")
    p.add_argument("--weights", default=None,
                   help="a segdet checkpoint (default: the demo config's semantic model, random weights)")
    p.add_argument("--repeat", type=int, default=1, help="timed predictions per size (median; default 1)")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                   help="config overrides of the model, e.g. MODEL.CHANNELS_LAST True TEST.AMP.ENABLED True")
    p.add_argument("--content", choices=("random", "demo"), default="random",
                   help="image content: random pixels, or demo images side by side (fruit to detect)")
    # Internal: one measurement in this (fresh) process.
    p.add_argument("--measure", action="store_true", help=argparse_hidden())
    p.add_argument("--size", type=int, default=None, help=argparse_hidden())
    p.add_argument("--overlap", type=float, default=None, help=argparse_hidden())
    return p.parse_args()


def test_image(content: str, size: int):
    """A size x size RGB image: random pixels, or demo images (192 px, unseen seed) side by side."""
    import numpy as np

    if content == "random":
        return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    import mosaics

    return mosaics.tile_mosaic(mosaics.demo_cells(64, seed=1000), size, size)


def output_bytes(out: dict) -> int:
    """Bytes of an output dict's arrays: tensors, panoptic_seg's ids, the instances' fields and crops."""
    import torch

    total = sum(v.numel() * v.element_size() for v in out.values() if isinstance(v, torch.Tensor))
    if "panoptic_seg" in out:
        total += out["panoptic_seg"][0].numel() * out["panoptic_seg"][0].element_size()
    if "instances" in out:
        for value in out["instances"].fields().values():
            total += value.nbytes if hasattr(value, "nbytes") else value.numel() * value.element_size()
    return total


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


# Class weights of the kind median-frequency balancing gives the demo (border: an ignore class),
# with the full class weight correction at inference, as the shipped recipes use it.
CLASS_WEIGHTS = [0.2, 1.5, 2.0, 1.8, 0.0]
CORRECTION = 1.0


def random_weights_checkpoint(path: str) -> str:
    """Save the demo config's semantic-only model with random weights as a segdet checkpoint,
    with training class weights and the class weight correction on."""
    import torch

    from segdet.checkpoint import atomic_torch_save
    from segdet.config import load_config
    from segdet.data.demo import demo_metadata
    from segdet.modeling import build_model

    cfg = load_config(DEMO_CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.MASK_ON", "False",
                                    "MODEL.META_ARCHITECTURE", "SemanticSegmentor",
                                    "MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION", str(CORRECTION)])
    metadata = demo_metadata()
    torch.manual_seed(0)
    model = build_model(cfg, metadata)
    model.set_training_class_weights(CLASS_WEIGHTS)
    atomic_torch_save({"model": model.state_dict(), "metadata": metadata.to_dict(), "config": cfg.dump()}, path)
    return path


def measure(args) -> dict:
    """One (size, overlap) in this process: seconds and memory."""
    import gc

    from segdet.inference.predictor import Predictor
    from segdet.inference.tiling import tile_windows

    threads = common.setup_threads(args.threads)
    predictor = Predictor.from_checkpoint(args.weights, ["MODEL.DEVICE", "cpu", *args.opts])
    size, tile, overlap = args.size, args.tile, args.overlap
    # Warm-up on a 2x2-tile image: lazy initialization and the allocator's first growth.
    small = test_image(args.content, tile * 3 // 2)
    predictor(small, tile_size=tile, overlap=overlap, return_scores=False)
    image = test_image(args.content, size)
    instances = 0
    times, cpu_times, working, peaks = [], [], [], []
    out_bytes = 0
    for _ in range(args.repeat):
        out = None
        gc.collect()
        before = common.current_rss_bytes()
        reset_ok = common.reset_peak_rss()
        cpu_start = time.process_time()
        seconds, out = common.timed(lambda: predictor(image, tile_size=tile, overlap=overlap, return_scores=False))
        cpu_times.append(time.process_time() - cpu_start)
        peak = common.peak_rss_bytes()
        out_bytes = output_bytes(out)
        instances = len(out["instances"]) if "instances" in out else 0
        times.append(seconds)
        peaks.append(peak)
        working.append(peak - before - out_bytes)
        del out
    n_tiles = len(tile_windows(size, size, tile, overlap))
    mpix = size * size / 1e6
    median = common.summary(times)["median"]
    return {
        "size": size, "tile": tile, "overlap": overlap, "threads": threads, "tiles": n_tiles, "mpix": mpix,
        "seconds": times, "median_seconds": median, "seconds_per_mpix": median / mpix,
        "cpu_seconds": cpu_times, "cpu_seconds_per_mpix": common.summary(cpu_times)["median"] / mpix,
        "cpu_seconds_per_tile": common.summary(cpu_times)["median"] / n_tiles,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "seconds_per_tile": median / n_tiles, "tiles_per_mpix": n_tiles / mpix,
        "num_classes": predictor.metadata.num_classes, "content": args.content, "instances": instances,
        # The band of scores of the row of tiles in progress: C x tile x W float32.
        "band_bytes": predictor.metadata.num_classes * min(tile, size) * size * 4,
        "image_bytes": int(image.nbytes), "output_bytes": int(out_bytes), "rss_before_bytes": before,
        "peak_rss_bytes": max(peaks), "working_bytes": max(working), "peak_reset": reset_ok,
        "lifetime_max_rss_bytes": _ru_maxrss(),
    }


def _ru_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_measurement(args, size: int, overlap: float, weights: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result_path = f.name
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", "--size", str(size), "--overlap", str(overlap),
           "--tile", str(args.tile), "--weights", weights, "--repeat", str(args.repeat), "--output", result_path,
           "--content", args.content]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.opts:
        cmd += ["--opts", *args.opts]
    try:
        subprocess.run(cmd, check=True)
        with open(result_path) as f:
            return json.load(f)
    finally:
        os.remove(result_path)


def main() -> None:
    args = parse_args()
    if args.measure:
        result = measure(args)
        with open(args.output, "w") as f:
            json.dump(result, f)
        return

    quick = args.quick
    args.tile = args.tile or (128 if quick else 512)
    sizes = args.sizes or ([256, 512] if quick else [2048, 4096, 8000])
    info = common.machine_info()
    info["torch_threads"] = common.setup_threads(args.threads)
    common.print_machine(info)
    with tempfile.TemporaryDirectory(prefix="segdet_bench_") as tmp:
        weights = args.weights or random_weights_checkpoint(os.path.join(tmp, "model.pth"))
        model_note = args.weights or "demo config (configs/demo/quickstart.yaml), semantic only, random weights"
        print(f"Model: {model_note}; tile {args.tile}; sizes {sizes}; overlaps {args.overlaps}", flush=True)
        results = []
        for overlap in args.overlaps:
            for size in sizes:
                r = run_measurement(args, size, overlap, weights)
                print(f"  {size}x{size}, overlap {overlap}: {r['median_seconds']:.2f} s, {r['tiles']} tiles, "
                      f"{r['instances']} instances, peak RSS {common.mib(r['peak_rss_bytes']):.0f} MiB", flush=True)
                results.append(r)

    checks = {}
    rows = []
    for overlap in args.overlaps:
        group = [r for r in results if r["overlap"] == overlap]
        first = group[0]
        def within(key):
            return all(abs(r[key] / first[key] - 1) <= LINEARITY_TOLERANCE for r in group)

        mem_limit = first["working_bytes"] * (1 + MEMORY_TOLERANCE) + MEMORY_SLACK_MIB * 2**20
        checks[str(overlap)] = {
            "time_per_mpix_linear": within("seconds_per_mpix"),
            "time_per_tile_constant": within("seconds_per_tile"),
            "cpu_time_per_mpix_linear": within("cpu_seconds_per_mpix"),
            "cpu_time_per_tile_constant": within("cpu_seconds_per_tile"),
            "memory_flat_strict": all(r["working_bytes"] <= mem_limit for r in group),
            "memory_flat_but_band": all(
                r["working_bytes"] <= mem_limit + 2 * (r["band_bytes"] - first["band_bytes"]) for r in group),
        }
        for r in group:
            rows.append([f"{r['size']}x{r['size']}", overlap, r["tiles"], r["instances"], r["median_seconds"],
                         r["seconds_per_mpix"], r["seconds_per_mpix"] / first["seconds_per_mpix"],
                         r["cpu_seconds_per_mpix"], r["cpu_seconds_per_mpix"] / first["cpu_seconds_per_mpix"],
                         r["load_average_after"][0], 1000 * r["cpu_seconds_per_tile"], 1000 * r["seconds_per_tile"],
                         r["seconds_per_tile"] / first["seconds_per_tile"], common.mib(r["image_bytes"]),
                         common.mib(r["output_bytes"]), common.mib(r["peak_rss_bytes"]),
                         common.mib(r["working_bytes"]), common.mib(r["band_bytes"])])
    common.print_table(rows, ["image", "overlap", "tiles", "instances", "s", "s/Mpix", "x smallest", "CPU s/Mpix",
                              "x smallest", "load", "CPU ms/tile", "ms/tile", "x smallest",
                              "image MiB", "outputs MiB", "peak RSS MiB", "working MiB", "band MiB"],
                       title=f"Tiled prediction, tile {args.tile}, return_scores=False, "
                             f"{info['torch_threads']} threads",
                       floatfmt=".3g")
    for overlap, c in checks.items():
        print(f"overlap {overlap}: within {LINEARITY_TOLERANCE:.0%} of the smallest size: time per Mpix "
              f"{common.verdict(c['time_per_mpix_linear'])} (CPU time {common.verdict(c['cpu_time_per_mpix_linear'])})"
              f", time per tile "
              f"{common.verdict(c['time_per_tile_constant'])} (CPU time {common.verdict(c['cpu_time_per_tile_constant'])})"
              f"; working memory within {MEMORY_TOLERANCE:.0%} + {MEMORY_SLACK_MIB} MiB: "
              f"{common.verdict(c['memory_flat_strict'])}, allowing 2x the band's growth: "
              f"{common.verdict(c['memory_flat_but_band'])}", flush=True)

    settings = {"sizes": sizes, "tile": args.tile, "overlaps": args.overlaps, "model": model_note,
                "content": args.content, "opts": args.opts,
                "return_scores": False, "repeat": args.repeat, "threads": info["torch_threads"], "quick": quick}
    targets = {"time_per_mpix_tolerance": LINEARITY_TOLERANCE, "memory_tolerance": MEMORY_TOLERANCE,
               "memory_slack_mib": MEMORY_SLACK_MIB, "checks": checks,
               "pass_time_per_mpix": all(c["time_per_mpix_linear"] for c in checks.values()),
               "pass_time_per_tile": all(c["time_per_tile_constant"] for c in checks.values()),
               "pass_cpu_time_per_mpix": all(c["cpu_time_per_mpix_linear"] for c in checks.values()),
               "pass_memory_strict": all(c["memory_flat_strict"] for c in checks.values()),
               "pass_memory_but_band": all(c["memory_flat_but_band"] for c in checks.values())}
    common.write_results(args.output or common.default_output("large_images", quick), "large_images",
                         info, settings, results, targets)


if __name__ == "__main__":
    main()
