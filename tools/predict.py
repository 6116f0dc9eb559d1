#!/usr/bin/env python
"""Predict new images with a trained model; each output is at the image's own size.

For every input image, in --output:
  <stem>.png             segmentation_image, class ids in the training data's label format
                         (or --label-format gray|blue|palette|rgb)
  <stem>_confidence.png  segmentation_confidence (0-255; --confidence-format tiff|npy for float32)
  <stem>_overlay.jpg     the image with the classes colored and the instances outlined
  coco_instances_results.json   all instances (models with instance masks)

Test-time augmentation: --tta (or TEST.AUG.* overrides) averages the class scores over the
short sides TEST.AUG.MIN_SIZES, each also mirrored (TEST.AUG.FLIP); instances from the plain pass.

Large images: --tile-size S predicts images larger than S x S network pixels tile by tile
(--tile-overlap, default 0.5; --tile-merge max|mean), instances included: stitched across
the tiles, the same files as for a small image.

Speed on a CPU (BENCHMARKS.md, "Fast inference on a CPU"): files are decoded ahead and written
behind in --io-workers threads while the model runs (default 1; 0 = serial, the same files);
--engine onnxruntime runs a semantic model's network in ONNX Runtime (the same segmentation,
0 pixels differ on CamVid; converted at start-up, seconds); --batch-size N predicts up to N
consecutive images together, same-size ones in one forward pass (for a GPU: on a 2-core CPU
batch 4 was no faster than 1).

Examples:
  python tools/predict.py --weights output/model_final.pth --input photos/ --output pred/
  python tools/predict.py --config-file cfg.yaml --weights model.pth --input 'scans/*.tif' \\
      --output pred/ --tile-size 512 --label-format blue MODEL.DEVICE cpu
  python tools/predict.py --weights model.pth --input photos/ --output pred/ --tta TEST.AUG.MIN_SIZES "(288, 360, 432)"
  python tools/predict.py --weights model.pth --input photos/ --output pred/ --engine onnxruntime
  python tools/predict.py --engine detectron2 --weights output/d2_demo/model_final.pth --input photos/ --output pred/

Exit status: 0 done, 1 done with unreadable inputs skipped (named in the log), 2 bad input or
config (one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from segdet.errors import ConfigError
from segdet.inference.background_io import DEFAULT_IO_WORKERS  # stdlib only: --help stays fast
from segdet.utils.logger import setup_logger

logger = logging.getLogger("segdet.predict")

_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE",
                        help="the model's config; without it, the config stored in --weights is used")
    parser.add_argument("--weights", default="", metavar="FILE",
                        help="model file (overrides MODEL.WEIGHTS of --config-file)")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="images, folders (their images, not recursive) or quoted globs")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the outputs")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="up to N consecutive images predicted together, same-size ones in one forward pass "
                             "(default 1)")
    parser.add_argument("--io-workers", type=int, default=DEFAULT_IO_WORKERS, metavar="N",
                        help="threads decoding the next images and writing the outputs while the model runs "
                             f"(default {DEFAULT_IO_WORKERS}; 0 = serial, in the main thread; the same files either way)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="tile side in network pixels; 0 = whole image (default TEST.TILE_SIZE)")
    parser.add_argument("--tile-overlap", type=float, default=None, help="default TEST.TILE_OVERLAP (0.5)")
    parser.add_argument("--tile-merge", choices=("max", "mean"), default=None, help="default TEST.TILE_MERGE (max)")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation (TEST.AUG.ENABLED True): scores averaged over the short "
                             "sides TEST.AUG.MIN_SIZES, each also flipped (TEST.AUG.FLIP); one forward pass each")
    parser.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                        help="segmentation PNG encoding (default: the training data's, gray if it has none)")
    parser.add_argument("--confidence-format", choices=("png", "tiff", "npy"), default="png")
    parser.add_argument("--no-overlay", action="store_true", help="do not write <stem>_overlay.jpg")
    parser.add_argument("--engine", choices=("segdet", "onnxruntime", "detectron2"), default="segdet",
                        help="what runs --weights: segdet (a model of segdet's trainer in PyTorch, or as its "
                             "TEST.ENGINE says), onnxruntime (a segdet semantic model's network in ONNX Runtime on "
                             "the CPU, = TEST.ENGINE onnxruntime; needs onnxruntime), detectron2 (a model trained "
                             "with detectron2 and segdet's parts, tools/train_net_d2.py; needs detectron2)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.DEVICE cpu")
    args = parser.parse_args(argv)
    # `--input a.png b.png MODEL.DEVICE cpu`: nargs="+" swallowed the overrides; split them off.
    if not args.opts:
        for i, item in enumerate(args.input):
            if i > 0 and _CONFIG_KEY.match(item) and not os.path.exists(item):
                args.input, args.opts = args.input[:i], args.input[i:]
                break
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size}: must be >= 1")
    if args.io_workers < 0:
        parser.error(f"--io-workers {args.io_workers}: must be >= 0 (0 = serial)")
    return args


def build_predictor(args: argparse.Namespace):
    from segdet.inference.predictor import Predictor

    opts = [*args.opts, "TEST.AUG.ENABLED", "True"] if args.tta else args.opts
    engine = "onnxruntime" if args.engine == "onnxruntime" else None  # None: the config's TEST.ENGINE
    if args.engine == "detectron2":
        if args.tta:
            raise ConfigError("--tta: segdet.d2's models have no test-time augmentation; leave out --tta")
        if not args.weights:
            raise ConfigError("--engine detectron2 needs --weights FILE (a model file of tools/train_net_d2.py)")
        try:
            from segdet.d2 import load_detectron2_model
        except ImportError as e:  # no detectron2: the one line that says how to install it
            raise ConfigError(f"--engine detectron2: {e}") from None
        return Predictor.from_loaded(load_detectron2_model(args.weights, args.config_file or None, args.opts))
    if args.config_file:
        from segdet.config import load_config

        return Predictor(load_config(args.config_file, opts), args.weights or None, engine=engine)
    if not args.weights:
        raise ConfigError("give --weights FILE (a segdet checkpoint), or --config-file FILE with MODEL.WEIGHTS")
    return Predictor(None, args.weights, opts, engine=engine)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    setup_logger(args.output)
    from segdet.inference.predict_files import collect_inputs, predict_files

    inputs = collect_inputs(args.input)  # before the model is loaded: a wrong path fails at once
    summary = predict_files(build_predictor(args), inputs, args.output, label_format=args.label_format,
                            confidence_format=args.confidence_format, overlay=not args.no_overlay,
                            batch_size=args.batch_size, tile_size=args.tile_size, tile_overlap=args.tile_overlap,
                            tile_merge=args.tile_merge, io_workers=args.io_workers)
    for line in summary.lines():
        logger.info(line)
    if summary.skipped:
        # One line naming the file and the problem. Status 1 when the other images were predicted
        # (done, with skipped inputs), 2 when none could be (bad input).
        problem = summary.skipped[0][1]
        more = f" ({len(summary.skipped) - 1} more unreadable images are listed above)" if len(summary.skipped) > 1 else ""
        print(f"error: {problem}{more}", file=sys.stderr)
        return 1 if summary.num_predicted else 2
    return 0


if __name__ == "__main__":
    from segdet.utils.cli import run_cli

    sys.exit(run_cli(main))
