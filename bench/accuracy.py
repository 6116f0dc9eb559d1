"""Accuracy on real data: train a recipe from scratch with tools/train_net.py, then report the
measures the benchmarks ask for, with the wall time.

  .venv/bin/python bench/accuracy.py camvid    [--data-root ../shared/datasets] [--output-dir DIR]
  .venv/bin/python bench/accuracy.py pennfudan [--data-root ../shared/datasets] [--output-dir DIR]
  .venv/bin/python bench/accuracy.py camvid --eval-only   # re-check the saved model
  .venv/bin/python bench/accuracy.py pennfudan --eval-only INPUT.MIN_SIZE_TEST 352   # config overrides

The model is saved in the output folder (model_final.pth, model_best.pth); the numbers can be
re-checked with `tools/train_net.py --config-file <config> --eval-only MODEL.WEIGHTS <model>`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import default_output, machine_info, print_machine, print_table, write_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPES = {
    "camvid": {
        "config": "configs/camvid/semantic_R_18.yaml",
        "test": "camvid_val",
        "output": "output/camvid_semantic_R_18",
        "targets": {"sem_seg/mean_iou": 0.60},
    },
    "pennfudan": {
        "config": "configs/pennfudan/panoptic_R_18.yaml",
        "test": "pennfudan_val",
        "output": "output/pennfudan_panoptic_R_18",
        "targets": {"segm/AP50": 50.0, "sem_seg/IoU-person": 0.70},
    },
}


def measures(results: dict, class_names: list[str]) -> dict[str, float]:
    """The figures the benchmarks report, flat: semantic measures (fractions), per-class IoU,
    COCO AP (percent) and PQ (percent) when present."""
    sem = results["sem_seg"]
    out = {f"sem_seg/{k}": sem[k] for k in ("mean_iou", "pixel_accuracy", "mean_accuracy", "frequency_weighted_iou")}
    for name, iou in zip(class_names, sem["class_iou"]):
        out[f"sem_seg/IoU-{name}"] = iou
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75"):
            if task in results:
                out[f"{task}/{key}"] = results[task][key]
    if "panoptic_seg" in results:
        for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"):
            out[f"panoptic_seg/{key}"] = results["panoptic_seg"][key]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--data-root", default=os.path.join(ROOT, "..", "shared", "datasets"),
                        help="folder holding camvid/ and pennfudan/ (becomes SEGDET_DATASETS)")
    parser.add_argument("--output-dir", help="training output folder (default: the recipe's)")
    parser.add_argument("--eval-only", action="store_true", help="evaluate the saved model_final.pth only")
    parser.add_argument("--weights", help="with --eval-only: the model file (default OUTPUT_DIR/model_final.pth)")
    parser.add_argument("--output", help="results JSON (default bench/results/accuracy_<recipe>.json)")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides, passed to train_net.py")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    recipe = RECIPES[args.recipe]
    output_dir = os.path.abspath(args.output_dir or os.path.join(ROOT, recipe["output"]))
    env = dict(os.environ, SEGDET_DATASETS=os.path.abspath(args.data_root))
    command = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file",
               os.path.join(ROOT, recipe["config"])]
    if args.eval_only:
        weights = args.weights or os.path.join(output_dir, "model_final.pth")
        eval_dir = output_dir + "_eval"
        command += ["--eval-only", "MODEL.WEIGHTS", weights, "OUTPUT_DIR", eval_dir]
        results_dir = eval_dir
    else:
        command += ["OUTPUT_DIR", output_dir]
        results_dir = output_dir
    command += args.opts
    print("running:", " ".join(command), flush=True)
    start = time.time()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    wall = time.time() - start

    with open(os.path.join(results_dir, "inference", recipe["test"], "results.json")) as f:
        results = json.load(f)
    sys.path.insert(0, ROOT)
    os.environ["SEGDET_DATASETS"] = env["SEGDET_DATASETS"]
    from segdet.data import MetadataCatalog  # noqa: E402  (after SEGDET_DATASETS is set)

    figures = measures(results, MetadataCatalog.get(recipe["test"]).class_names)
    rows = [(k, f"{v:.4f}", recipe["targets"].get(k, "")) for k, v in figures.items()]
    info = machine_info()
    print_machine(info)
    print_table(rows, ["measure", "value", "target"], title=f"{args.recipe} on {recipe['test']}")
    print(f"wall time (training + evaluation): {wall / 60:.1f} min")
    write_results(args.output or default_output(f"accuracy_{args.recipe}", False), f"accuracy_{args.recipe}", info,
                  {"command": command, "eval_only": args.eval_only, "overrides": args.opts},
                  {"wall_seconds": wall, "measures": figures},
                  recipe["targets"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
