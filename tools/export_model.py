#!/usr/bin/env python
"""Export a trained model's semantic path (RGB image -> class probabilities) to ONNX or TorchScript.

    python tools/export_model.py --config-file configs/demo/quickstart.yaml --format onnx \\
        --output export/demo.onnx MODEL.WEIGHTS output/demo/model_final.pth
    python tools/export_model.py --config-file CFG --format torchscript --output model.ts \\
        --weights output/model_final.pth

The exported model takes `image`: float32 N x 3 x H x W, RGB 0..255 (normalized and padded to a
multiple of 32 inside), and returns `sem_seg` (N x C x H x W probabilities, 0 for ignore classes),
`segmentation_image` (N x H x W int64 class ids) and `segmentation_confidence`. For a PanopticFPN
only the semantic path is exported. OUTPUT.json gets the classes, colors and input format.
The tool checks the file against PyTorch on a random image and prints the largest difference.

Exit status: 0 done, 1 the export differs from the PyTorch model, 2 bad input or config (one line).
"""
from __future__ import annotations

import argparse
import math
import sys

from segdet.config import load_config
from segdet.export import FORMATS, MAX_ABS_DIFF, export_model
from segdet.utils.cli import run_cli
from segdet.utils.logger import setup_logger

DEFAULT_SIZE = 512


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="the model's config")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    parser.add_argument("--output", required=True, metavar="FILE", help="the model file to write")
    parser.add_argument("--weights", default=None, metavar="FILE", help="the checkpoint (default MODEL.WEIGHTS)")
    parser.add_argument("--height", type=int, default=None,
                        help=f"height of the random check image (default INPUT.MIN_SIZE_TEST, else {DEFAULT_SIZE})")
    parser.add_argument("--width", type=int, default=None, help="width of the random check image (as --height)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--no-segmentation", action="store_true",
                        help="output sem_seg only (no segmentation_image, segmentation_confidence)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model_final.pth")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    cfg = load_config(args.config_file, args.opts)
    default = cfg.INPUT.MIN_SIZE_TEST or DEFAULT_SIZE
    size = (default if args.height is None else args.height, default if args.width is None else args.width)
    if min(size) <= 0:
        print(f"error: --height and --width must be > 0, got {size}", file=sys.stderr)
        return 2
    result = export_model(cfg, args.output, args.format, weights=args.weights, check_size=size,
                          with_segmentation=not args.no_segmentation, opset=args.opset)
    opset = f", opset {result.info['opset']}" if "opset" in result.info else ""
    print(f"wrote {result.path} ({args.format}{opset})")
    print(f"wrote {result.info_path} (classes, colors, input format, outputs)")
    line = f"check on a random {size[0]}x{size[1]} image: max abs difference of sem_seg {result.max_abs_diff:.3g}"
    if not math.isnan(result.segmentation_mismatch):
        line += f", segmentation_image differs at {100 * result.segmentation_mismatch:.4f}% of pixels"
    print(line)
    if not result.max_abs_diff <= MAX_ABS_DIFF:
        print(f"error: the exported model differs from PyTorch by more than {MAX_ABS_DIFF}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
