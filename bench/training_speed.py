#!/usr/bin/env python
"""Training speed switches (issue 13): seconds per iteration of the CamVid and Penn-Fudan recipes
in fp32, bf16 (SOLVER.AMP), channels-last (MODEL.CHANNELS_LAST), both, and optionally
torch.compile, side by side in one process, with the loss each reaches.

Each variant is the recipe's own Trainer (model, optimizer, LR schedule, gradient clipping,
`SimpleTrainer.run_step` with its autocast), built from configs/<recipe>.yaml plus the variant's
switches; all start from the same initial weights and take the same pre-mapped batches (the
recipe's augmentations, mapped once; data loading excluded). Blocks of iterations alternate
between the variants (order reversed every other block), so a drift of the machine hits all
alike. Reported: median seconds per iteration over the blocks after the first (warm-up;
for compile the first block holds the compilation, reported apart), the ratio to fp32, and
the mean loss of each variant's last block (bf16 must learn what fp32 learns). oneDNN's
kernel cache is enlarged so that the variants side by side do not evict each other's kernels.

    .venv/bin/python bench/training_speed.py [--quick] [--recipes camvid pennfudan] [--compile]

Target (issue 13): bf16 at most 0.7x the fp32 seconds per iteration on the CamVid recipe.
"""
from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets up the import path of the repository)

RECIPES = {
    "camvid": os.path.join(common.REPO_ROOT, "configs", "camvid", "semantic_R_18.yaml"),
    "pennfudan": os.path.join(common.REPO_ROOT, "configs", "pennfudan", "panoptic_R_18.yaml"),
}
VARIANTS = {
    "fp32": [],
    "bf16": ["SOLVER.AMP.ENABLED", "True"],
    "channels-last": ["MODEL.CHANNELS_LAST", "True"],
    "channels-last + bf16": ["MODEL.CHANNELS_LAST", "True", "SOLVER.AMP.ENABLED", "True"],
}
TARGET_BF16_RATIO = 0.7
# oneDNN keeps 1024 compiled kernels by default. Measured with the default: channels-last + bf16
# at 0.99x fp32 CPU time with 4 variants side by side, 0.55x with 2; with this capacity and 2,
# 0.48x. Most likely the variants' models evict each other's kernels (forward, backward of data
# and weights, per layer, dtype and layout), which a training run with one model does not.
ONEDNN_CACHE = 16384


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    common.add_data_root(p)
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["camvid", "pennfudan"])
    p.add_argument("--block", type=int, default=None, help="iterations per block (default 5; --quick 1)")
    p.add_argument("--blocks", type=int, default=None, help="blocks per variant (default 6; --quick 2)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="which switches (default all; fp32 always)")
    p.add_argument("--compile", action="store_true", help="also channels-last + bf16 under torch.compile")
    return p.parse_args()


def build_trainers(recipe: str, args, out_dir: str) -> dict:
    """name -> Trainer, one per variant, all with the first one's initial weights."""
    import torch

    from segdet.config import load_config
    from segdet.engine.hooks import LRScheduler
    from segdet.engine.trainer import Trainer

    variants = {n: o for n, o in VARIANTS.items() if n == "fp32" or n in args.variants}
    if args.compile:
        variants["channels-last + bf16, compiled"] = VARIANTS["channels-last + bf16"]
    trainers = {}
    for name, opts in variants.items():
        cfg = load_config(RECIPES[recipe], ["MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0",
                                            "OUTPUT_DIR", os.path.join(out_dir, recipe, name.replace(" ", "_")),
                                            *opts])
        torch.manual_seed(0)
        trainer = Trainer(cfg)
        if trainers:
            trainer.unwrapped_model.load_state_dict(next(iter(trainers.values())).unwrapped_model.state_dict())
        if name.endswith("compiled"):
            trainer.loop.model = torch.compile(trainer.loop.model)
        trainer.loop.register_hooks([LRScheduler(trainer.optimizer, trainer.scheduler)])
        trainers[name] = trainer
    return trainers


def run_recipe(recipe: str, args, out_dir: str, block: int, blocks: int) -> dict:
    from segdet.data.build import build_train_loader

    trainers = build_trainers(recipe, args, out_dir)
    first = next(iter(trainers.values()))
    batches = list(itertools.islice(iter(build_train_loader(first.cfg, first.mapper, first.train_dicts)), block))
    shapes = sorted({tuple(x["image"].shape[-2:]) for b in batches for x in b})
    print(f"{recipe}: {len(trainers)} variants, {block} pre-mapped batches of {len(batches[0])} images "
          f"(sizes {shapes[:4]}{' ...' if len(shapes) > 4 else ''}), {blocks} blocks of {block} iterations each",
          flush=True)
    for trainer in trainers.values():
        trainer.loop.data_loader_factory = lambda start_iter: itertools.cycle(batches)
    seconds: dict[str, list[float]] = {n: [] for n in trainers}
    cpu_seconds: dict[str, list[float]] = {n: [] for n in trainers}
    losses: dict[str, list[float]] = {n: [] for n in trainers}
    names = list(trainers)
    for b in range(blocks):
        for name in (names if b % 2 == 0 else names[::-1]):
            loop = trainers[name].loop
            start, cpu_start = time.perf_counter(), time.process_time()
            loop.train(b * block, (b + 1) * block)
            seconds[name].append((time.perf_counter() - start) / block)
            cpu_seconds[name].append((time.process_time() - cpu_start) / block)
            losses[name].append(loop.storage.history("total_loss").avg(block))
    return summarize(recipe, seconds, cpu_seconds, losses, block)


def summarize(recipe: str, seconds: dict, cpu_seconds: dict, losses: dict, block: int) -> dict:
    """Wall and CPU seconds per iteration (median over the blocks after the first). The CPU time
    (all threads of the process) is the work done, whatever else runs on the machine; the wall
    time on a shared machine follows the other jobs."""
    steady = {n: common.summary(s[1:] or s) for n, s in seconds.items()}
    cpu = {n: common.summary(s[1:] or s) for n, s in cpu_seconds.items()}
    base, cpu_base = steady["fp32"]["median"], cpu["fp32"]["median"]
    rows, results = [], {}
    for name, s in steady.items():
        first_block = seconds[name][0] * block
        cpu_ratio = common.ratio(cpu[name]["median"], cpu_base)
        rows.append([name, s["median"], common.ratio(s["median"], base), cpu[name]["median"], cpu_ratio, first_block,
                     losses[name][-1]])
        results[name] = dict(s, ratio_to_fp32=common.ratio(s["median"], base), first_block_seconds=first_block,
                             cpu_seconds_per_iteration_median=cpu[name]["median"], cpu_ratio_to_fp32=cpu_ratio,
                             seconds_per_iteration=seconds[name], cpu_seconds_per_iteration=cpu_seconds[name],
                             block_mean_loss=losses[name])
    common.print_table(rows, ["variant", "wall s / it", "x fp32", "CPU s / it", "CPU x fp32",
                              "first block s (warm-up, compile)", "loss, last block"],
                       title=f"{recipe} recipe, training step")
    return results


def main() -> None:
    args = parse_args()
    root = os.path.abspath(args.data_root)
    env = {"SEGDET_DATASETS": root, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(ONEDNN_CACHE)}
    if any(os.environ.get(k) != v for k, v in env.items()):
        # Both are read once, when segdet (the built-in datasets' folder) and torch (oneDNN) load.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})
    threads = common.setup_threads(args.threads)
    block = args.block or (1 if args.quick else 5)
    blocks = args.blocks or (2 if args.quick else 6)
    info = common.machine_info()
    common.print_machine(info)
    results = {}
    with tempfile.TemporaryDirectory(prefix="segdet-training-speed-") as out_dir:
        for recipe in args.recipes:
            results[recipe] = run_recipe(recipe, args, out_dir, block, blocks)
    if "camvid" in results:
        for name in [n for n in ("bf16", "channels-last + bf16") if n in results["camvid"]]:
            r = results["camvid"][name]
            print(f"CamVid recipe, {name} / fp32 seconds per iteration: wall {r['ratio_to_fp32']:.3f}, CPU "
                  f"{r['cpu_ratio_to_fp32']:.3f} (target <= {TARGET_BF16_RATIO}): "
                  f"{common.verdict(r['ratio_to_fp32'] <= TARGET_BF16_RATIO)}", flush=True)
    common.write_results(args.output or common.default_output("training_speed", args.quick), "training_speed", info,
                         {"threads": threads, "block": block, "blocks": blocks, "variants": VARIANTS,
                          "compile": args.compile, "recipes": {r: RECIPES[r] for r in args.recipes},
                          "quick": args.quick}, results)


if __name__ == "__main__":
    main()
