#!/usr/bin/env python
"""Evaluate a folder of prediction label images against a folder of ground truth.

Files are matched by file stem (the extension may differ), so predictions of any
tool can be scored: both folders use the same label format, e.g. `blue` for
DeepDIVA's blue-channel files. Writes the measures to FILE.json, a confusion-matrix
picture to FILE_confusion.png, and prints a per-class table.

Example:
    python tools/eval_predictions.py --gt data/val/gt --pred out/pred --num-classes 5 \\
        --ignore-class-ids 4 --class-names background orange lemon apple border --output eval.json
"""
from __future__ import annotations

import argparse
import os
import sys

from segdet.structures.metadata import Metadata
from segdet.errors import SegdetError
from segdet.evaluation.confusion_plot import plot_confusion_matrix
from segdet.evaluation.results import format_class_table, format_results_table
from segdet.utils.files import write_json
from segdet.evaluation.sem_seg_evaluation import evaluate_prediction_folders
from segdet.utils.logger import setup_logger


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="folder of ground-truth label images")
    parser.add_argument("--pred", required=True, help="folder of prediction label images (same stems)")
    parser.add_argument("--num-classes", type=int, required=True, help="number of classes, ignore classes included")
    parser.add_argument("--ignore-class-ids", type=int, nargs="*", default=[],
                        help="classes whose ground-truth pixels take no part in the measures")
    parser.add_argument("--class-names", nargs="*", default=None, help="one name per class id (default class_0 ...)")
    parser.add_argument("--label-format", choices=("gray", "blue", "palette"), default="gray",
                        help="how both folders encode class ids: pixel value, blue channel, or palette index")
    parser.add_argument("--output", required=True, help="JSON file for the results")
    parser.add_argument("--per-image", action="store_true", help="also rank the images, worst first")
    parser.add_argument("--boundary-width", type=int, default=0, help="also compute boundary IoU with this band (px)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    names = args.class_names or [f"class_{i}" for i in range(args.num_classes)]
    if len(names) != args.num_classes:
        print(f"error: --class-names gives {len(names)} names for --num-classes {args.num_classes}", file=sys.stderr)
        return 2
    try:
        metadata = Metadata(names, ignore_class_ids=args.ignore_class_ids, label_format=args.label_format)
        results, _ = evaluate_prediction_folders(args.gt, args.pred, metadata, per_image=args.per_image,
                                                 boundary_width=args.boundary_width)
    except SegdetError as e:
        # Bad input: status 2. A heading and a single problem read as one line.
        head, *problems = str(e).splitlines()
        print(f"error: {head} {problems[0]}" if len(problems) == 1 else f"error: {e}", file=sys.stderr)
        return 2

    write_json(results, args.output)
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
    sys.exit(main())
