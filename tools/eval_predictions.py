#!/usr/bin/env python
"""Evaluate a folder of prediction label images against ground truth, no model needed.

Files are matched by file stem (the extension may differ), so predictions of any tool can be
scored. The ground truth is a folder (--gt) or a registered dataset (--dataset). The classes
come from --dataset, a classes file (--classes-file), --num-classes (with --ignore-class-ids,
--class-names), or, for a folder written by tools/predict.py, from its manifest (the model's
classes and the label format of its PNGs): then nothing needs typing. Writes the measures to
FILE.json, a confusion-matrix picture to FILE_confusion.png, and prints a per-class table.

Examples:
    python tools/predict.py --weights model.pth --input data/val/images --output pred/
    python tools/eval_predictions.py --pred pred/ --dataset demo_fruit_test --output eval.json
    python tools/eval_predictions.py --pred pred/ --gt data/val/labels --output eval.json
    python tools/eval_predictions.py --gt data/val/gt --pred other_tool/ --num-classes 5 \\
        --ignore-class-ids 4 --class-names background orange lemon apple border --output eval.json

Exit status: 0 done, 2 bad input (one line naming the files and the problems).
"""
from __future__ import annotations

import argparse
import os
import sys

from segdet.errors import ConfigError
from segdet.structures.metadata import Metadata
from segdet.utils.cli import run_cli
from segdet.utils.logger import setup_logger


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, help="folder of prediction label images (e.g. tools/predict.py's)")
    parser.add_argument("--gt", default=None, help="folder of ground-truth label images (same stems)")
    parser.add_argument("--dataset", default=None, help="a registered dataset holding the ground truth (instead of --gt)")
    parser.add_argument("--config-file", default=None, metavar="FILE", help="config declaring --dataset (optional)")
    parser.add_argument("--classes-file", default=None, metavar="FILE", help="classes file (JSON or YAML)")
    parser.add_argument("--num-classes", type=int, default=None, help="number of classes, ignore classes included")
    parser.add_argument("--ignore-class-ids", type=int, nargs="*", default=[],
                        help="with --num-classes: classes whose ground-truth pixels take no part in the measures")
    parser.add_argument("--class-names", nargs="*", default=None,
                        help="with --num-classes: one name per class id (default class_0 ...)")
    parser.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                        help="how the label images encode class ids (with --gt: both folders); default: the "
                             "classes' own format, and for predictions the one their manifest records")
    parser.add_argument("--output", required=True, help="JSON file for the results")
    parser.add_argument("--per-image", action="store_true", help="also rank the images, worst first")
    parser.add_argument("--boundary-width", type=int, default=0, help="also compute boundary IoU with this band (px)")
    return parser.parse_args(argv)


def given_classes(args: argparse.Namespace) -> Metadata | None:
    """The classes typed on the command line (--num-classes ...), or None."""
    if args.num_classes is None:
        if args.class_names or args.ignore_class_ids:
            raise ConfigError("--class-names and --ignore-class-ids go with --num-classes")
        return None
    names = args.class_names or [f"class_{i}" for i in range(args.num_classes)]
    if len(names) != args.num_classes:
        raise ConfigError(f"--class-names gives {len(names)} names for --num-classes {args.num_classes}")
    return Metadata(names, ignore_class_ids=args.ignore_class_ids, label_format=args.label_format or "gray")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    from segdet.evaluation.prediction_inputs import prediction_evaluation_inputs
    from segdet.evaluation.results import format_class_table, format_results_table
    from segdet.evaluation.sem_seg_evaluation import evaluate_prediction_files
    from segdet.utils.files import write_json
    from segdet.visualization.confusion import plot_confusion_matrix

    inputs = prediction_evaluation_inputs(args.pred, gt_dir=args.gt, dataset=args.dataset,
                                          config_file=args.config_file, classes_file=args.classes_file,
                                          metadata=given_classes(args), label_format=args.label_format)
    metadata = inputs.metadata
    results, _ = evaluate_prediction_files(inputs.ground_truth, inputs.predictions, metadata, inputs.prediction_codec,
                                           per_image=args.per_image, boundary_width=args.boundary_width,
                                           gt_source=inputs.gt_source, pred_source=inputs.pred_source)
    write_json(results, args.output)
    names = metadata.class_names
    picture = os.path.splitext(args.output)[0] + "_confusion.png"
    plot_confusion_matrix(results["sem_seg"]["pixel_confusion_matrix"], names, picture, metadata.ignore_class_ids,
                          title="Pixel confusion matrix")
    print(format_class_table(results["sem_seg"], names, metadata.ignore_class_ids))
    print()
    print(format_results_table({"sem_seg": results["sem_seg"]}))
    if args.per_image:
        worst = results["sem_seg_per_image"][:5]
        print("\nworst images: " + ", ".join(f"{r['image_id']} (mIoU {r['mean_iou']:.3f})" for r in worst))
    print(f"\nresults: {args.output}\nconfusion matrix: {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
