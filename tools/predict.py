#!/usr/bin/env python
"""Predict new images with a trained model; each output is at the image's own size.

For every input image, in --output:
  <stem>.png             segmentation_image, class ids in the training data's label format
                         (or --label-format gray|blue|palette|rgb)
  <stem>_confidence.png  segmentation_confidence (0-255; --confidence-format tiff|npy for float32)
  <stem>_overlay.jpg     the image with the classes colored and the instances outlined
  coco_instances_results.json   all instances (models with instance masks)

Large images: --tile-size S segments images larger than S x S network pixels tile by tile
(--tile-overlap, default 0.5; --tile-merge max|mean). Tiled images get semantic outputs only.

Examples:
  python tools/predict.py --weights output/model_final.pth --input photos/ --output pred/
  python tools/predict.py --config-file cfg.yaml --weights model.pth --input 'scans/*.tif' \\
      --output pred/ --tile-size 512 --label-format blue MODEL.DEVICE cpu
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import re
import sys

from segdet.errors import ConfigError, DataError
from segdet.utils.image_io import IMAGE_EXTENSIONS, read_image
from segdet.utils.logger import setup_logger
from segdet.utils.progress import Progress

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
                        help="images per forward pass (same-size images are batched)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="tile side in network pixels; 0 = whole image (default TEST.TILE_SIZE)")
    parser.add_argument("--tile-overlap", type=float, default=None, help="default TEST.TILE_OVERLAP (0.5)")
    parser.add_argument("--tile-merge", choices=("max", "mean"), default=None, help="default TEST.TILE_MERGE (max)")
    parser.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                        help="segmentation PNG encoding (default: the training data's, gray if it has none)")
    parser.add_argument("--confidence-format", choices=("png", "tiff", "npy"), default="png")
    parser.add_argument("--no-overlay", action="store_true", help="do not write <stem>_overlay.jpg")
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
    return args


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def collect_inputs(paths: list[str]) -> list[str]:
    """Image files from files, folders (non-recursive) and globs, in order, without repeats.

    A named file is kept whatever it is (reading it reports the problem); folders and globs
    contribute files with image extensions.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(path, f) for f in os.listdir(path)
                            if _is_image(f) and os.path.isfile(os.path.join(path, f)))
        elif glob.has_magic(path):
            found += sorted(p for p in glob.glob(path) if os.path.isfile(p) and _is_image(p))
        else:
            found.append(path)
    unique, seen = [], set()
    for path in found:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    if not unique:
        raise DataError(f"no images found in --input {' '.join(paths)} (extensions: {' '.join(IMAGE_EXTENSIONS)})")
    return unique


def output_stems(paths: list[str]) -> list[str]:
    """File stems as output names; repeated stems (a/x.png, b/x.png) get _2, _3, ..."""
    stems, used = [], set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}_{k}"
        if name != stem:
            logger.warning("%s: another input has the stem '%s'; its outputs are named '%s'", path, stem, name)
        used.add(name)
        stems.append(name)
    return stems


def build_predictor(args: argparse.Namespace):
    from segdet.inference.predictor import Predictor

    if args.config_file:
        from segdet.config import load_config

        opts = list(args.opts) + (["MODEL.WEIGHTS", args.weights] if args.weights else [])
        return Predictor(load_config(args.config_file, opts))
    if not args.weights:
        raise ConfigError("give --weights FILE (a segdet checkpoint), or --config-file FILE with MODEL.WEIGHTS")
    return Predictor.from_checkpoint(args.weights, args.opts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    setup_logger(args.output)
    from segdet.inference.writers import (
        CONFIDENCE_EXTENSIONS,
        CocoResultsWriter,
        segmentation_format,
        write_confidence,
        write_overlay,
        write_segmentation,
    )

    paths = collect_inputs(args.input)
    predictor = build_predictor(args)
    metadata = predictor.metadata
    label_format = segmentation_format(metadata, args.label_format)
    tiler = predictor.tiled_segmenter(args.tile_size, args.tile_overlap, args.tile_merge)
    coco = CocoResultsWriter(os.path.join(args.output, "coco_instances_results.json")) \
        if predictor.instances_on else None
    logger.info("Predicting %d images with %s on %s: classes %s; %s; segmentation as '%s' PNG", len(paths),
                predictor.weights, predictor.device, metadata.class_names,
                f"tiles of {tiler.tile_h} px, overlap {tiler.overlap}, merge '{tiler.merge}'" if tiler
                else "whole images", label_format)

    stems = output_stems(paths)
    skipped: list[tuple[str, str]] = []
    tiled_without_instances = 0
    progress = Progress(len(paths), "Predicting")
    for start in range(0, len(paths), args.batch_size):
        batch = []
        for path, stem in zip(paths[start:start + args.batch_size], stems[start:start + args.batch_size]):
            try:
                batch.append((path, stem, read_image(path)))
            except DataError as e:
                logger.warning("Skipping %s: %s", path, e)
                skipped.append((path, str(e)))
                progress.step()
        if not batch:
            continue
        outputs = predictor.predict_batch([image for _, _, image in batch], args.tile_size, args.tile_overlap,
                                          args.tile_merge, return_scores=False)
        for (path, stem, image), output in zip(batch, outputs):
            out = os.path.join(args.output, stem)
            write_segmentation(out + ".png", output["segmentation_image"], metadata, label_format)
            write_confidence(out + "_confidence" + CONFIDENCE_EXTENSIONS[args.confidence_format],
                             output["segmentation_confidence"], args.confidence_format)
            if not args.no_overlay:
                write_overlay(out + "_overlay.jpg", image, output, metadata)
            if coco is not None:
                if "instances" in output:
                    coco.add(stem, output["instances"])
                else:
                    tiled_without_instances += 1
            progress.step()
    progress.done()

    done = len(paths) - len(skipped)
    lines = [f"{done} of {len(paths)} images predicted; outputs in {os.path.abspath(args.output)}"]
    if coco is not None:
        lines.append(f"instances of {coco.num_images} images in {coco.write()}")
        if tiled_without_instances:
            lines.append(f"{tiled_without_instances} image(s) larger than one tile: semantic outputs only, "
                         "no instances")
    if skipped:
        lines.append(f"{len(skipped)} skipped (unreadable): " + ", ".join(p for p, _ in skipped))
    for line in lines:
        logger.info(line)
    return 1 if skipped else 0


if __name__ == "__main__":
    from segdet.utils.cli import run_cli

    sys.exit(run_cli(main))
