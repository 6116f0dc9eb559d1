#!/usr/bin/env python
"""segdet's CamVid recipe against segmentation_models_pytorch (smp) FPN and U-Net, ResNet-18
encoder, all from scratch, each trained for the same wall-clock budget, then evaluated on
camvid_val by segdet's evaluator.

Everything but the network is the same for the three: smp's model is plugged into segdet as a
backbone (BACKBONE_REGISTRY) whose output is the class logits, passed through by a head that does
nothing (SEM_SEG_HEAD_REGISTRY), so that segdet's Trainer trains it with the recipe's data loader,
crops and augmentation, class weights and loss, optimizer, schedule and switches (AMP,
channels-last), and the same evaluator measures it.

Equal time: each model first trains a few iterations to measure its seconds per iteration, then
gets SOLVER.MAX_ITER = budget / (s/it), so that its cosine schedule ends when the budget does.
Each model runs in its own process, one after the other (a quiet machine: nothing else running).

smp is a bench-only dependency, in its own virtual environment that borrows segdet's packages
(see BENCHMARKS.md):

    python -m venv /tmp/smpvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/smpvenv/lib/python3.11/site-packages/zz_segdet_venv.pth
    /tmp/smpvenv/bin/pip install segmentation-models-pytorch
    /tmp/smpvenv/bin/python bench/peer_accuracy.py --data-root ../shared/datasets --budget-min 30

Target: segdet's recipe at least as accurate (val mean_iou) as the better of the two peers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

ROOT = common.REPO_ROOT
CONFIG = os.path.join(ROOT, "configs", "camvid", "semantic_R_18.yaml")
# model name -> (config overrides that select it, smp architecture or None for segdet's own)
MODELS = {
    "segdet": ([], None),
    "smp_fpn": (["MODEL.BACKBONE.NAME", "build_smp_fpn", "MODEL.SEM_SEG_HEAD.NAME", "PassLogitsHead"], "FPN"),
    "smp_unet": (["MODEL.BACKBONE.NAME", "build_smp_unet", "MODEL.SEM_SEG_HEAD.NAME", "PassLogitsHead"], "Unet"),
    # Not in the default --models: segdet's recipe with the head refined at stride 2 by the stem,
    # and with a wider FPN and head (smp FPN's widths are 256 and 128).
    "segdet_stem": (["MODEL.SEM_SEG_HEAD.PROJECT_FEATURES", "['stem']"], None),
    "segdet_wide": (["MODEL.FPN.OUT_CHANNELS", "128", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "128"], None),
    "segdet_smp_widths": (["MODEL.FPN.OUT_CHANNELS", "256", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "128"], None),
}
DEFAULT_MODELS = "segdet,smp_fpn,smp_unet"
# The switches every model trains with: segdet's fastest training on this CPU (BENCHMARKS.md).
SWITCHES = ["SOLVER.AMP.ENABLED", "True", "MODEL.CHANNELS_LAST", "True"]


def register_peers() -> None:
    """Register smp's FPN and U-Net as segdet backbones, and the head that passes their logits on."""
    import segmentation_models_pytorch as smp
    from torch import nn

    from segdet.modeling.backbone import BACKBONE_REGISTRY
    from segdet.modeling.sem_seg_head import SEM_SEG_HEAD_REGISTRY

    class SmpLogits(nn.Module):
        """An smp model as a backbone: its full-resolution class logits as the feature 'logits'."""

        size_divisibility = 32  # smp's encoders need sides divisible by 32; segdet pads to this

        def __init__(self, arch: str, num_classes: int):
            super().__init__()
            self.net = smp.create_model(arch, encoder_name="resnet18", encoder_weights=None, classes=num_classes)
            self.out_channels = num_classes

        def forward(self, x):
            return {"logits": self.net(x)}

    @BACKBONE_REGISTRY.register()
    def build_smp_fpn(cfg):
        return SmpLogits("FPN", cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES)

    @BACKBONE_REGISTRY.register()
    def build_smp_unet(cfg):
        return SmpLogits("Unet", cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES)

    @SEM_SEG_HEAD_REGISTRY.register()
    class PassLogitsHead(nn.Module):
        """The backbone already predicts the logits at the input resolution."""

        @classmethod
        def from_config(cls, cfg, in_channels):
            return cls()

        def forward(self, features):
            return features["logits"]


def train_one(model: str, opts: list[str], result_path: str) -> None:
    """In this process: train one model with segdet's Trainer, then write its figures to result_path."""
    if MODELS[model][1] is not None:
        register_peers()
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import train_net

    from accuracy import measures
    from segdet.data import MetadataCatalog
    from segdet.engine.defaults import default_argument_parser
    from segdet.engine.events import read_metrics
    from segdet.engine.trainer import Trainer

    args = default_argument_parser().parse_args(["--config-file", CONFIG, *MODELS[model][0], *opts])
    cfg = train_net.setup(args)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    parameters = sum(p.numel() for p in trainer.unwrapped_model.parameters())
    evaluate, eval_seconds = trainer._evaluate, [0.0]

    def timed_evaluate():
        start = time.perf_counter()
        try:
            return evaluate()
        finally:
            eval_seconds[0] += time.perf_counter() - start

    trainer._evaluate = timed_evaluate  # before train(): its evaluation hook takes this one
    start = time.perf_counter()
    results = trainer.train()
    total = time.perf_counter() - start
    rows = read_metrics(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))
    # The mean of the trainer's per-window step times past the first two windows: the first steps are
    # slower (oneDNN creates its kernels), and counting them made segdet's budget 13 % short.
    step_times = [r["time"] for r in rows if "time" in r and r["iteration"] >= 40]
    figures = {}
    if results:  # the calibration run has no evaluation
        names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).class_names
        figures = {k: v for k, v in measures(results, names).items() if v >= 0}  # an ignore class's IoU is -1
    common.write_json({"model": model, "parameters": parameters, "iterations": cfg.SOLVER.MAX_ITER,
                       "train_seconds": total - eval_seconds[0], "eval_seconds": eval_seconds[0],
                       "seconds_per_iteration": sum(step_times) / len(step_times) if step_times else None,
                       "measures": figures}, result_path)


def run_child(model: str, opts: list[str], result_path: str, data_root: str, threads: int | None) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", model, "--child-result", result_path,
               "--data-root", data_root, *([] if threads is None else ["--threads", str(threads)]), "--", *opts]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=dict(os.environ, SEGDET_DATASETS=data_root), check=True)
    with open(result_path) as f:
        return json.load(f)


def main() -> int:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    common.add_data_root(parser)
    parser.add_argument("--budget-min", type=float, default=30.0, help="training minutes per model (default 30)")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"comma-separated, of {', '.join(MODELS)} (default {DEFAULT_MODELS})")
    parser.add_argument("--calibration-iters", type=int, default=100,
                        help="iterations that measure each model's s/it before its run (default 100)")
    parser.add_argument("--output-dir", default=os.path.join(ROOT, "output", "peer_accuracy"),
                        help="training folders, one per model (default output/peer_accuracy)")
    parser.add_argument("--child", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides for every model")
    args = parser.parse_args()
    data_root = os.path.abspath(args.data_root)
    if args.child:
        common.setup_threads(args.threads)
        train_one(args.child, args.opts, args.child_result)
        return 0

    common.camvid_root(data_root)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; expected some of {list(MODELS)}")
    budget_s = (1.0 if args.quick else args.budget_min) * 60
    calibration = 60 if args.quick else args.calibration_iters
    if calibration < 60:
        raise SystemExit(f"--calibration-iters {calibration}: at least 60 (the first 40 are not counted)")
    rows, runs = [], {}
    for model in models:
        folder = os.path.join(args.output_dir, model)
        base = [*SWITCHES, *args.opts, "SOLVER.CHECKPOINT_PERIOD", "100000"]
        probe = run_child(model, [*base, "OUTPUT_DIR", folder + "_calibration", "DATASETS.TEST", "()",
                                  "SOLVER.MAX_ITER", str(calibration), "SOLVER.WARMUP_ITERS", "10"],
                          os.path.join(folder + "_calibration", "peer_result.json"), data_root, args.threads)
        iterations = max(1, int(budget_s / probe["seconds_per_iteration"]))
        warmup = min(100, iterations // 10)
        run = run_child(model, [*base, "OUTPUT_DIR", folder, "SOLVER.MAX_ITER", str(iterations),
                                "SOLVER.WARMUP_ITERS", str(warmup), "TEST.EVAL_PERIOD", "0"],
                        os.path.join(folder, "peer_result.json"), data_root, args.threads)
        runs[model] = run
        rows.append((model, f"{run['parameters'] / 1e6:.1f} M", run["iterations"], f"{run['seconds_per_iteration']:.3f}",
                     f"{run['train_seconds'] / 60:.1f}", f"{run['measures']['sem_seg/mean_iou']:.4f}"))

    info = common.machine_info()
    common.print_machine(info)
    common.print_table(rows, ["model", "parameters", "iterations", "s / it", "training min", "val mean_iou"],
                       title=f"CamVid, {budget_s / 60:g} min of training each")
    class_keys = [k for k in next(iter(runs.values()))["measures"] if k.startswith("sem_seg/IoU-")]
    common.print_table([(k.split("-", 1)[1], *(f"{runs[m]['measures'][k]:.3f}" for m in runs))
                        for k in class_keys], ["class", *runs], title="per-class IoU")
    target = None
    if "segdet" in runs and any(m.startswith("smp_") for m in runs):
        best_peer = max(runs[m]["measures"]["sem_seg/mean_iou"] for m in runs if m.startswith("smp_"))
        target = runs["segdet"]["measures"]["sem_seg/mean_iou"] >= best_peer
        print(f"target (segdet >= the better peer): {common.verdict(target)}")
    common.write_results(args.output or common.default_output("peer_accuracy", args.quick), "peer_accuracy", info,
                         {"budget_minutes": budget_s / 60, "models": models, "switches": SWITCHES,
                          "overrides": args.opts, "config": os.path.relpath(CONFIG, ROOT)},
                         runs, {"segdet >= better peer": target})
    return 0


if __name__ == "__main__":
    sys.exit(main())
