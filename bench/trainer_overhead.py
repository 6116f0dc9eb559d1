#!/usr/bin/env python
"""Training: seconds per iteration of segdet's Trainer against a bare loop over the same model,
batches and optimizer (the trainer's own overhead).

The model, optimizer, LR schedule and gradient clipping are the Trainer's own, built from the
demo config (configs/demo/quickstart.yaml), once semantic-only (SemanticSegmentor) and once
panoptic. Both loops take the same pre-mapped batches (a fixed list, cycled; data loading is
excluded from both). The bare loop is forward, sum of losses, zero_grad, backward, clipping,
optimizer step, scheduler step. The Trainer runs `SimpleTrainer` with every hook
`Trainer.build_hooks` makes (timer, LR schedule, periodic checkpoints, evaluation on
DATASETS.TEST, writers: console/log, metrics.json, TensorBoard; Ctrl-C handling), at the demo
config's periods. Blocks of iterations alternate: bare, trainer, bare, trainer, ...

Reported: the steady-state overhead (median s/it of the trainer blocks without a periodic
checkpoint or evaluation, against the bare blocks' median; writers run every 20 iterations,
so a block of 20 holds one write), the overall overhead of the measured run (all blocks,
periodic events included), the time of each hook, and the overhead amortized over the config's
whole run (SOLVER.MAX_ITER) with the measured cost of each checkpoint and evaluation.

    .venv/bin/python bench/trainer_overhead.py [--quick] [--models semantic panoptic] [--output results.json]

Target: steady-state overhead at most 5%.
"""
from __future__ import annotations

import itertools
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

DEMO_CONFIG = os.path.join(common.REPO_ROOT, "configs", "demo", "quickstart.yaml")
TARGET_OVERHEAD = 0.05


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--models", nargs="+", choices=["semantic", "panoptic"], default=None,
                   help="which models (default both; --quick semantic)")
    p.add_argument("--block", type=int, default=None,
                   help="iterations per block (default 20, the writers' period; --quick 2)")
    p.add_argument("--blocks", type=int, default=None,
                   help="blocks of each loop (default 8: 160 trainer iterations, which include the demo's "
                        "checkpoint and evaluation at iteration 150; --quick 3)")
    p.add_argument("--batches", type=int, default=None,
                   help="distinct pre-mapped batches, cycled; must divide --block (default 10; --quick 2)")
    p.add_argument("--datasets-root", default=None,
                   help="folder holding demo_fruit/ (default $SEGDET_DATASETS, else the repository's datasets/)")
    return p.parse_args()


class _HookClock:
    """Wraps a hook's before_step/after_step/before_train/after_train to add up their seconds."""

    def __init__(self, hook):
        self.name = type(hook).__name__
        self.seconds = 0.0
        for method in ("before_step", "after_step"):
            setattr(hook, method, self._wrap(getattr(hook, method)))

    def _wrap(self, fn):
        def call():
            start = time.perf_counter()
            try:
                return fn()
            finally:
                self.seconds += time.perf_counter() - start
        return call


def run_model(kind: str, args, quick: bool, out_dir: str) -> dict:
    """Trainer and bare loop side by side for one model kind ("semantic" or "panoptic")."""
    import torch

    from segdet.config import load_config
    from segdet.data.build import build_train_loader
    from segdet.engine.solver import build_gradient_clipper
    from segdet.engine.train_loop import HookBase
    from segdet.engine.trainer import Trainer
    from segdet.utils.logger import setup_logger

    block = args.block or (2 if quick else 20)
    blocks = args.blocks or (3 if quick else 8)
    n_batches = args.batches or (2 if quick else 10)
    if block % n_batches:
        raise SystemExit(f"--batches {n_batches} must divide --block {block} (every block sees the same batches)")
    opts = ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", out_dir, "DATALOADER.NUM_WORKERS", "0"]
    if kind == "semantic":
        opts += ["MODEL.MASK_ON", "False", "MODEL.META_ARCHITECTURE", "SemanticSegmentor"]
    if quick:
        # Exercise the periodic checkpoint and evaluation inside the short run (in its second block).
        opts += ["SOLVER.CHECKPOINT_PERIOD", str(2 * block), "TEST.EVAL_PERIOD", str(2 * block),
                 "DATASETS.TEST", "('demo_fruit_val',)"]
    cfg = load_config(DEMO_CONFIG, opts)
    logger = setup_logger(out_dir)
    # Log lines go to OUTPUT_DIR/log.txt only (the same work as the console; a readable benchmark).
    for handler in list(logger.handlers):
        if getattr(handler, "_segdet", False) and not hasattr(handler, "baseFilename"):
            logger.removeHandler(handler)
    torch.manual_seed(0)
    trainer = Trainer(cfg)
    model, optimizer, scheduler = trainer.model, trainer.optimizer, trainer.scheduler
    clipper = build_gradient_clipper(cfg)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    batches = list(itertools.islice(iter(build_train_loader(cfg, trainer.mapper, trainer.train_dicts)), n_batches))
    trainer.loop.data_loader_factory = lambda start_iter: itertools.cycle(batches)

    def bare_iterations(n: int) -> float:
        model.train()
        data = itertools.cycle(batches)
        start = time.perf_counter()
        for _ in range(n):
            loss_dict = model(next(data))
            losses = sum(loss_dict.values())
            optimizer.zero_grad(set_to_none=True)
            losses.backward()
            if clipper is not None:
                clipper(params)
            optimizer.step()
            scheduler.step()
        return time.perf_counter() - start

    bare_times: list[float] = []
    trainer_times: list[float] = []
    n_trainer = block * blocks

    class Alternate(HookBase):
        """Registered last: at each block boundary, closes the trainer's block and runs a bare one."""

        def __init__(self):
            self.t0 = 0.0

        def before_train(self):
            bare_iterations(max(1, block // 4))  # warm-up, untimed
            bare_times.append(bare_iterations(block))
            self.t0 = time.perf_counter()

        def after_step(self):
            it = self.trainer.iter + 1
            if it % block == 0:
                trainer_times.append(time.perf_counter() - self.t0)
                if it < n_trainer:
                    bare_times.append(bare_iterations(block))
                    model.train()
                self.t0 = time.perf_counter()

    hooks = trainer.build_hooks()
    clocks = [_HookClock(h) for h in hooks if h is not None]
    trainer.loop.register_hooks(hooks + [Alternate()])
    print(f"[{kind}] {type(trainer.unwrapped_model).__name__}, batch {cfg.SOLVER.IMS_PER_BATCH}, {n_batches} "
          f"pre-mapped batches; {blocks} blocks of {block} iterations per loop; checkpoint every "
          f"{cfg.SOLVER.CHECKPOINT_PERIOD}, evaluation every {cfg.TEST.EVAL_PERIOD} on {list(cfg.DATASETS.TEST)}",
          flush=True)
    start = time.perf_counter()
    trainer.loop.train(0, n_trainer)
    wall = time.perf_counter() - start

    # Iterations (counted from 1) after which the hooks save a checkpoint (fvcore's PeriodicCheckpointer)
    # or evaluate (EvalHook: every period and after the last iteration, before its checkpoint).
    ckpt_period, eval_period = cfg.SOLVER.CHECKPOINT_PERIOD, cfg.TEST.EVAL_PERIOD
    ckpt_its = [i for i in range(1, n_trainer + 1) if i % ckpt_period == 0]
    eval_its = [i for i in range(1, n_trainer + 1) if i == n_trainer or (eval_period > 0 and i % eval_period == 0)]

    def periodic(b: int) -> bool:
        return any(b * block < i <= (b + 1) * block for i in ckpt_its + eval_its)

    steady = [t for b, t in enumerate(trainer_times) if not periodic(b)]
    bare_it = common.summary(bare_times)["median"] / block
    steady_it = common.summary(steady)["median"] / block if steady else float("nan")
    overall = sum(trainer_times) / sum(bare_times) - 1
    hook_seconds = {c.name: c.seconds for c in clocks}
    events = {"checkpoints": len(ckpt_its), "evaluations": len(eval_its)}
    per_ckpt = hook_seconds.get("PeriodicCheckpointer", 0.0) / events["checkpoints"] if events["checkpoints"] else None
    per_eval = hook_seconds.get("EvalHook", 0.0) / events["evaluations"] if events["evaluations"] else None
    # A whole run of the config: SOLVER.MAX_ITER iterations; a checkpoint at each period plus
    # model_final; an evaluation at each period before the last iteration plus the final one.
    max_iter = cfg.SOLVER.MAX_ITER
    n_ckpt = max_iter // ckpt_period + 1
    n_eval = (max_iter - 1) // eval_period + 1 if eval_period > 0 else 1
    amortized = None
    if per_ckpt is not None and per_eval is not None:
        amortized = (steady_it * max_iter + per_ckpt * n_ckpt + per_eval * n_eval) / (bare_it * max_iter) - 1
    return {
        "model": type(trainer.unwrapped_model).__name__, "block": block, "blocks": blocks, "batches": n_batches,
        "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH, "checkpoint_period": cfg.SOLVER.CHECKPOINT_PERIOD,
        "eval_period": cfg.TEST.EVAL_PERIOD, "test_datasets": list(cfg.DATASETS.TEST), "writer_period": 20,
        "bare_block_seconds": bare_times, "trainer_block_seconds": trainer_times,
        "periodic_blocks": [b for b in range(len(trainer_times)) if periodic(b)],
        "bare_s_per_it": bare_it, "trainer_steady_s_per_it": steady_it,
        "steady_overhead": steady_it / bare_it - 1, "overall_overhead_measured_run": overall,
        "hook_seconds": hook_seconds, "events_in_run": events, "seconds_per_checkpoint": per_ckpt,
        "seconds_per_evaluation": per_eval, "config_max_iter": max_iter,
        "amortized_overhead_full_config_run": amortized, "wall_seconds": wall,
    }


def main() -> None:
    args = parse_args()
    threads = common.setup_threads(args.threads)
    quick = args.quick
    models = args.models or (["semantic"] if quick else ["semantic", "panoptic"])
    root = args.datasets_root or os.environ.get("SEGDET_DATASETS", os.path.join(common.REPO_ROOT, "datasets"))
    info = common.machine_info()
    common.print_machine(info)
    from segdet.data.builtin import register_builtin_datasets

    register_builtin_datasets(root)  # generates the demo dataset on first use
    results = {}
    for kind in models:
        out_dir = tempfile.mkdtemp(prefix=f"segdet_bench_trainer_{kind}_")
        try:
            results[kind] = run_model(kind, args, quick, out_dir)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)

    rows = []
    for kind, r in results.items():
        rows.append([kind, r["bare_s_per_it"], r["trainer_steady_s_per_it"], 100 * r["steady_overhead"],
                     100 * r["overall_overhead_measured_run"],
                     None if r["amortized_overhead_full_config_run"] is None
                     else 100 * r["amortized_overhead_full_config_run"]])
    common.print_table(rows, ["model", "bare s/it", "trainer s/it (steady)", "steady overhead %",
                              "measured run overhead %", "amortized over MAX_ITER %"],
                       title="Trainer vs bare loop (median of blocks; demo config's periods)")
    hook_rows = []
    for kind, r in results.items():
        for name, s in r["hook_seconds"].items():
            hook_rows.append([kind, name, s, s / (r["block"] * r["blocks"])])
    common.print_table(hook_rows, ["model", "hook", "total s", "s per trainer iteration"],
                       title="Time inside each hook (before_step + after_step) during the measured run")
    def secs(value):
        return "n/a" if value is None else f"{value:.2f} s"

    for kind, r in results.items():
        print(f"[{kind}] per event: checkpoint {secs(r['seconds_per_checkpoint'])}, evaluation "
              f"{secs(r['seconds_per_evaluation'])}; a {r['config_max_iter']}-iteration run of the config has them "
              f"at every period and at its end (used by the amortized column)", flush=True)
    ok = all(r["steady_overhead"] <= TARGET_OVERHEAD for r in results.values() if not math.isnan(r["steady_overhead"]))
    print(f"steady-state overhead <= {TARGET_OVERHEAD:.0%}: {common.verdict(ok)}", flush=True)
    settings = {"config": os.path.relpath(DEMO_CONFIG, common.REPO_ROOT), "models": models, "threads": threads,
                "datasets_root": root, "quick": quick}
    common.write_results(args.output or common.default_output("trainer_overhead", quick), "trainer_overhead",
                         info, settings, results, {"steady_overhead_max": TARGET_OVERHEAD, "pass": ok})


if __name__ == "__main__":
    main()
