#!/usr/bin/env python
"""Draw ground truth, predictions, evaluation results and training curves as PNG files.

  # a dataset's ground truth (check the labels before training): image | classes + instances
  python tools/visualize.py dataset --dataset demo_fruit_val --output vis/gt --max-images 10
  python tools/visualize.py dataset --dataset my_parts --config-file cfg.yaml --output vis/gt

  # predictions of tools/predict.py: image | ground truth | prediction | error map
  python tools/visualize.py predictions --pred out/pred --dataset demo_fruit_test --output vis/pred
  python tools/visualize.py predictions --pred out/pred --gt data/gt --images data/images \\
      --classes data/classes.json --output vis/pred

  # an evaluation: IoU per class + confusion matrix heat map
  python tools/visualize.py evaluation --results output/inference/demo_fruit_val/results.json --output vis/eval

  # a training run: losses and validation measures over the iterations
  python tools/visualize.py metrics --metrics output/metrics.json --output vis/metrics.png

Ignore classes are hatched (stripes of their color and black) and listed as "(ignored)";
values that are not classes are a magenta/black checker board.

Exit status: 0 done, 2 bad input (one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import sys

from segdet.data.catalog import DatasetCatalog
from segdet.data.ground_truth import dataset_pairs, folder_pairs
from segdet.data.resolve import dataset_metadata
from segdet.errors import DataError
from segdet.utils.logger import setup_logger


def cmd_dataset(args: argparse.Namespace) -> None:
    from segdet.visualization.folders import draw_dataset

    metadata = dataset_metadata(args.dataset, args.config_file)
    count = draw_dataset(DatasetCatalog.get(args.dataset), metadata, args.output, args.max_images)
    print(f"wrote {count} ground-truth picture(s) of {args.dataset} to {args.output}")


def cmd_predictions(args: argparse.Namespace) -> None:
    from segdet.data.prediction_folder import prediction_codec, prediction_files
    from segdet.visualization.folders import draw_predictions

    if args.dataset:
        metadata, pairs = dataset_pairs(args.dataset, args.config_file)
    else:
        missing = [flag for flag, value in (("--gt", args.gt), ("--images", args.images),
                                            ("--classes", args.classes)) if not value]
        if missing:
            raise DataError(f"predictions: give --dataset, or all of --gt, --images and --classes "
                            f"(missing {', '.join(missing)})")
        # The ground truth is in the same label format as the predictions.
        metadata, pairs = folder_pairs(args.images, args.gt, args.classes, args.label_format)
    predictions = prediction_files(args.pred)
    count = draw_predictions(predictions, pairs, metadata, prediction_codec(args.pred, metadata, args.label_format),
                             args.output, args.max_images)
    print(f"wrote {count} prediction picture(s) to {args.output}")


def cmd_evaluation(args: argparse.Namespace) -> None:
    from segdet.visualization.plots import plot_evaluation

    paths = plot_evaluation(args.results, args.output)
    print("wrote " + ", ".join(paths))


def cmd_metrics(args: argparse.Namespace) -> None:
    from segdet.visualization.plots import plot_metrics

    print(f"wrote {plot_metrics(args.metrics, args.output)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def dataset_arguments(p: argparse.ArgumentParser, required: bool, what: str) -> None:
        p.add_argument("--dataset", required=required, help="a registered dataset, or one of the config's "
                                                             "DATASETS.CUSTOM (images and ground truth)")
        p.add_argument("--config-file", default=None, metavar="FILE", help="config declaring the dataset (optional)")
        p.add_argument("--output", required=True, metavar="DIR", help=f"folder for one PNG per {what}")
        p.add_argument("--max-images", type=int, default=None, metavar="N", help=f"draw only the first N {what}s")

    p = sub.add_parser("dataset", help="ground truth of a dataset: classes, ignore classes, instance outlines")
    dataset_arguments(p, required=True, what="image")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("predictions", help="image | ground truth | prediction | error map, per prediction file")
    p.add_argument("--pred", required=True, metavar="DIR",
                   help="folder of prediction label images (tools/predict.py), matched to images by file stem")
    dataset_arguments(p, required=False, what="prediction")
    p.add_argument("--gt", default=None, metavar="DIR", help="folder of ground-truth label images (without --dataset)")
    p.add_argument("--images", default=None, metavar="DIR", help="folder of the images (without --dataset)")
    p.add_argument("--classes", default=None, metavar="FILE", help="classes file, JSON or YAML (without --dataset)")
    p.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                   help="how the prediction files encode class ids, as tools/predict.py --label-format (with --gt "
                        "also the ground truth); default: the dataset's or the classes file's format")
    p.set_defaults(func=cmd_predictions)

    p = sub.add_parser("evaluation", help="IoU per class and the confusion matrix of a results JSON")
    p.add_argument("--results", required=True, metavar="FILE.json",
                   help="OUTPUT_DIR/inference/<dataset>/results.json or tools/eval_predictions.py output")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for class_iou.png, confusion_matrix.png")
    p.set_defaults(func=cmd_evaluation)

    p = sub.add_parser("metrics", help="loss curves and validation measures of a training run")
    p.add_argument("--metrics", required=True, metavar="FILE", help="OUTPUT_DIR/metrics.json")
    p.add_argument("--output", required=True, metavar="FILE.png", help="PNG file to write")
    p.set_defaults(func=cmd_metrics)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logger()
    if getattr(args, "dataset", None) and getattr(args, "gt", None):
        raise DataError("predictions: give either --dataset or --gt/--images/--classes, not both")
    args.func(args)
    return 0


if __name__ == "__main__":
    from segdet.utils.cli import run_cli

    sys.exit(run_cli(main))
