#!/usr/bin/env python
"""Write one self-contained HTML page of an evaluation (open it in a browser, or mail it).

  # the measures, per-class IoU bars and the confusion matrix of an evaluation
  python tools/report.py --results output/demo/inference/demo_fruit_test/results.json --output report.html

  # plus the training curves, and the worst images of tools/predict.py's predictions
  python tools/report.py --results output/demo/inference/demo_fruit_test/results.json \\
      --metrics output/demo/metrics.json --pred output/demo/predictions --dataset demo_fruit_test \\
      --output output/demo/report.html

--dataset gives the class names, colors and ignore classes (and, with --pred, the images and
ground truth the worst predictions are drawn against); --config-file declares it when it is
one of a config's DATASETS.CUSTOM. Exit status: 0 done, 2 bad input (one line naming the file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from segdet.errors import DataError
from segdet.utils.cli import positive_int, run_cli
from segdet.utils.logger import setup_logger


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, metavar="FILE.json",
                        help="OUTPUT_DIR/inference/<dataset>/results.json or tools/eval_predictions.py output")
    parser.add_argument("--output", required=True, metavar="FILE.html", help="the page to write")
    parser.add_argument("--metrics", default=None, metavar="FILE", help="a training run's metrics.json (curves)")
    parser.add_argument("--dataset", default=None, help="the evaluated dataset (classes; images and ground truth)")
    parser.add_argument("--config-file", default=None, metavar="FILE", help="config declaring the dataset")
    parser.add_argument("--pred", default=None, metavar="DIR",
                        help="tools/predict.py's output folder: its worst images are shown (needs --dataset)")
    parser.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                        help="how the prediction files encode class ids (default: what the folder's manifest says)")
    parser.add_argument("--worst", type=positive_int, default=6, help="how many of the worst images to show")
    parser.add_argument("--title", default=None, help="page title (default: the dataset, or the results file)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    from segdet.evaluation.report import evaluation_report, worst_images, write_report

    if not os.path.isfile(args.results):
        raise DataError(f"results file not found: {args.results}")
    try:
        with open(args.results) as f:
            results = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"results file {args.results} is not valid JSON: {e}") from None
    if args.pred and not args.dataset:
        raise DataError("--pred needs --dataset: the images and ground truth the predictions are drawn against")
    metadata, worst = None, []
    if args.dataset:
        from segdet.data.ground_truth import dataset_pairs

        metadata, pairs = dataset_pairs(args.dataset, args.config_file)
        if args.pred:
            from segdet.data.prediction_folder import prediction_codec, prediction_files

            worst = worst_images(pairs, prediction_files(args.pred), metadata,
                                 prediction_codec(args.pred, metadata, args.label_format), args.worst)
    page = evaluation_report(results, metadata, title=args.title or args.dataset or args.results,
                             metrics_path=args.metrics, worst=worst, source=os.path.abspath(args.results))
    print(f"wrote {write_report(page, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
