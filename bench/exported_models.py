#!/usr/bin/env python
"""Exported models against the PyTorch model: the same predictions, the same measures, and the
time per image of each engine.

A trained segdet model (default: the CamVid recipe's, with its class weight correction) is
exported to ONNX and TorchScript (`segdet.export.export_model`); every image of a dataset
(default camvid_val) then goes through the PyTorch model (`Predictor`, whole image), the ONNX
file (onnxruntime, CPU) and the TorchScript file, in alternating order. Reported: the share of
pixels whose segmentation_image differs from PyTorch's, the largest score difference, the
measures of each engine's segmentation_image on the dataset (SemSegEvaluator, the dataset's
ignore classes), and the median seconds per image.

    SEGDET_DATASETS=../shared/datasets .venv/bin/python bench/exported_models.py \\
        --weights output/camvid_semantic_R_18/model_final.pth --dataset camvid_val

Targets: no pixel differs, and every measure equals PyTorch's.
"""
from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

ENGINES = ("pytorch", "onnx", "torchscript")


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--weights", default=os.path.join(common.REPO_ROOT, "output", "camvid_semantic_R_18",
                                                     "model_final.pth"), help="a segdet model file")
    p.add_argument("--dataset", default="camvid_val", help="the registered dataset to predict")
    p.add_argument("--images", type=int, default=None, help="use only the first N images (--quick: 4)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch

    from segdet.data.catalog import DatasetCatalog
    from segdet.data.resolve import dataset_metadata
    from segdet.evaluation.ground_truth import GroundTruthLabels
    from segdet.evaluation.sem_seg_evaluation import SemSegEvaluator
    from segdet.export import export_model, load_exported
    from segdet.inference.predictor import Predictor
    from segdet.utils.image_io import read_image

    threads = common.setup_threads(args.threads)
    info = common.machine_info()
    common.print_machine(info)
    predictor = Predictor.from_checkpoint(args.weights, ["MODEL.DEVICE", "cpu"])
    cfg = predictor.cfg
    print(f"Model {args.weights}: class weight correction {cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION}, "
          f"training class weights {[round(w, 3) for w in predictor.model.training_class_weights.tolist()]}",
          flush=True)
    dicts = DatasetCatalog.get(args.dataset)
    n = args.images or (4 if args.quick else len(dicts))
    dicts = dicts[:n]
    metadata = dataset_metadata(args.dataset)

    folder = tempfile.mkdtemp(prefix="segdet-export-bench-")
    engines = {}
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.ts")):
        path = os.path.join(folder, name)
        export_model(cfg, path, fmt, weights=args.weights, check_size=(dicts[0]["height"], dicts[0]["width"]))
        engines[fmt] = load_exported(path, fmt, threads)

    labels = GroundTruthLabels(metadata)
    evaluators = {e: SemSegEvaluator(metadata, labels=labels) for e in ENGINES}
    times = {e: [] for e in ENGINES}
    differing = {e: 0 for e in ENGINES}
    max_diff = {e: 0.0 for e in ENGINES}
    total_pixels = 0
    for k, d in enumerate(dicts):
        image = read_image(d["file_name"])
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()
        runs = {
            "pytorch": lambda: predictor(image),
            "onnx": lambda: engines["onnx"](tensor),
            "torchscript": lambda: engines["torchscript"](tensor),
        }
        order = ENGINES if k % 2 == 0 else ENGINES[::-1]
        outputs = {}
        for engine in order:
            seconds, outputs[engine] = common.timed(runs[engine])
            times[engine].append(seconds)
        reference = outputs["pytorch"]
        ref_seg = reference["segmentation_image"].numpy()
        ref_scores = reference["sem_seg"].numpy()
        total_pixels += ref_seg.size
        for engine in ENGINES:
            if engine == "pytorch":
                seg, scores = ref_seg, ref_scores
            else:
                scores, seg = outputs[engine][0][0], outputs[engine][1][0]
            differing[engine] += int((seg != ref_seg).sum())
            max_diff[engine] = max(max_diff[engine], float(np.abs(scores - ref_scores).max()))
            evaluators[engine].process([d], [{"segmentation_image": seg}])
    results = {}
    rows = []
    for engine in ENGINES:
        measures = evaluators[engine].evaluate()["sem_seg"]
        median = common.summary(times[engine])["median"]
        results[engine] = {
            "differing_pixels": differing[engine], "differing_share": differing[engine] / total_pixels,
            "max_abs_score_diff": max_diff[engine], "mean_iou": measures["mean_iou"],
            "pixel_accuracy": measures["pixel_accuracy"], "class_iou": measures["class_iou"],
            "median_s_per_image": median,
        }
        rows.append([engine, differing[engine], f"{100 * differing[engine] / total_pixels:.4f}", max_diff[engine],
                     measures["mean_iou"], measures["pixel_accuracy"], median,
                     common.ratio(median, common.summary(times["pytorch"])["median"])])
    common.print_table(rows, ["engine", "pixels differing", "% differing", "max |score diff|", "mean_iou",
                              "pixel_accuracy", "median s/image", "x pytorch"],
                       title=f"{len(dicts)} images of {args.dataset}, {threads} threads")
    same = all(results[e]["differing_pixels"] == 0 for e in ENGINES)
    print(f"no pixel differs from PyTorch: {common.verdict(same)}")
    common.write_results(args.output or common.default_output("exported_models", args.quick), "exported_models",
                         info, {"weights": args.weights, "dataset": args.dataset, "images": len(dicts),
                                "threads": threads}, results, {"differing_pixels": 0})


if __name__ == "__main__":
    main()
