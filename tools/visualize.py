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
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.errors import DataError
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import IMAGE_EXTENSIONS, read_image, write_image
from segdet.utils.logger import setup_logger
from segdet.utils.progress import Progress

logger = logging.getLogger("segdet.visualize")


def dataset_metadata(dataset: str, config_file: str | None) -> Metadata:
    """A registered dataset's metadata; with a config, its DATASETS.CUSTOM are registered first
    and its MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS apply."""
    if not config_file:
        return MetadataCatalog.get(dataset)
    from segdet.config import load_config
    from segdet.config.experiment import metadata_for_config
    from segdet.data.formats import register_from_config

    cfg = load_config(config_file)
    register_from_config(cfg)
    return metadata_for_config(cfg, MetadataCatalog.get(dataset))


def _output_file(out_dir: str, image_id: object) -> str:
    name = str(image_id).replace(os.sep, "_").replace("/", "_")
    return os.path.join(out_dir, f"{name}.png")


def cmd_dataset(args: argparse.Namespace) -> None:
    from segdet.utils.visualizer import ground_truth_panel

    metadata = dataset_metadata(args.dataset, args.config_file)
    dicts = DatasetCatalog.get(args.dataset)
    if args.max_images is not None:
        dicts = dicts[: max(0, args.max_images)]
    codec = LabelCodec(metadata)
    progress = Progress(len(dicts), f"Drawing the ground truth of {args.dataset}", logger=logger)
    for d in dicts:
        image = read_image(d["file_name"])
        seg = codec.read(d["sem_seg_file_name"]) if d.get("sem_seg_file_name") else None
        image_id = d.get("image_id", os.path.splitext(os.path.basename(d["file_name"]))[0])
        picture = ground_truth_panel(image, seg, metadata, d.get("annotations"), title=str(image_id))
        write_image(_output_file(args.output, image_id), picture)
        progress.step()
    progress.done()
    print(f"wrote {len(dicts)} ground-truth picture(s) of {args.dataset} to {args.output}")


# Files tools/predict.py writes next to each segmentation_image <stem>.png.
_PREDICT_EXTRAS = ("_confidence", "_overlay")


def _prediction_files(folder: str) -> dict[str, str]:
    """stem -> segmentation_image file; tools/predict.py's confidence and overlay pictures are left out."""
    files = files_by_stem(folder, IMAGE_EXTENSIONS, "prediction")
    return {stem: path for stem, path in files.items()
            if not any(stem.endswith(extra) and stem[: -len(extra)] in files for extra in _PREDICT_EXTRAS)}


def _prediction_codec(metadata: Metadata, label_format: str | None) -> LabelCodec:
    """Codec of the prediction files: the given format, else the dataset's ("gray" for
    "instance_ids", which cannot hold a segmentation_image; tools/predict.py writes gray then)."""
    fmt = label_format or ("gray" if metadata.label_format == "instance_ids" else metadata.label_format)
    if fmt != metadata.label_format:
        metadata = dataclasses.replace(metadata, label_format=fmt)
    return LabelCodec(metadata)


def _ground_truth_pairs(args: argparse.Namespace) -> tuple[Metadata, dict[str, tuple[str, str]]]:
    """(metadata, stem -> (image file, ground-truth file)) from a dataset or from folders."""
    if args.dataset:
        metadata = dataset_metadata(args.dataset, args.config_file)
        pairs = {}
        for d in DatasetCatalog.get(args.dataset):
            if not d.get("sem_seg_file_name"):
                continue
            pair = (d["file_name"], d["sem_seg_file_name"])
            pairs[os.path.splitext(os.path.basename(d["file_name"]))[0]] = pair
            if "image_id" in d:
                pairs[str(d["image_id"])] = pair
        if not pairs:
            raise DataError(f"dataset '{args.dataset}' has no ground-truth label files (sem_seg_file_name)")
        return metadata, pairs
    missing = [flag for flag, value in (("--gt", args.gt), ("--images", args.images), ("--classes", args.classes))
               if not value]
    if missing:
        raise DataError(f"predictions: give --dataset, or all of --gt, --images and --classes "
                        f"(missing {', '.join(missing)})")
    overrides = {"label_format": args.label_format} if args.label_format else {}
    metadata = load_classes_file(args.classes, **overrides)  # the ground truth is in the same format
    images = files_by_stem(args.images, IMAGE_EXTENSIONS, "image")
    gts = files_by_stem(args.gt, IMAGE_EXTENSIONS, "ground-truth")
    return metadata, {stem: (images[stem], gts[stem]) for stem in gts if stem in images}


def cmd_predictions(args: argparse.Namespace) -> None:
    from segdet.utils.visualizer import prediction_panel

    metadata, pairs = _ground_truth_pairs(args)
    preds = _prediction_files(args.pred)
    if not preds:
        raise DataError(f"prediction folder {args.pred} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    matched = [stem for stem in preds if stem in pairs]
    unmatched = [stem for stem in preds if stem not in pairs]
    if not matched:
        raise DataError(f"no prediction in {args.pred} matches an image with ground truth by file name "
                        f"(predictions: {', '.join(sorted(preds)[:5])}...)")
    if unmatched:
        logger.warning("%d prediction(s) without ground truth skipped: %s", len(unmatched), ", ".join(unmatched[:10]))
    if args.max_images is not None:
        matched = matched[: max(0, args.max_images)]
    gt_codec, pred_codec = LabelCodec(metadata), _prediction_codec(metadata, args.label_format)
    progress = Progress(len(matched), "Drawing predictions", logger=logger)
    for stem in matched:
        image_file, gt_file = pairs[stem]
        image, gt, pred = read_image(image_file), gt_codec.read(gt_file), pred_codec.read(preds[stem])
        for what, path, array in (("ground truth", gt_file, gt), ("prediction", preds[stem], pred)):
            if array.shape != image.shape[:2]:
                raise DataError(f"{what} {path} has size {array.shape[1]}x{array.shape[0]} (WxH) but the image "
                                f"{image_file} has size {image.shape[1]}x{image.shape[0]}")
        write_image(_output_file(args.output, stem), prediction_panel(image, gt, pred, metadata, title=stem))
        progress.step()
    progress.done()
    print(f"wrote {len(matched)} prediction picture(s) to {args.output}")


def cmd_evaluation(args: argparse.Namespace) -> None:
    from segdet.utils.plots import plot_evaluation

    paths = plot_evaluation(args.results, args.output)
    print("wrote " + ", ".join(paths))


def cmd_metrics(args: argparse.Namespace) -> None:
    from segdet.utils.plots import plot_metrics

    print(f"wrote {plot_metrics(args.metrics, args.output)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("dataset", help="ground truth of a dataset: classes, ignore classes, instance outlines")
    p.add_argument("--dataset", required=True, help="a registered dataset, or one of the config's DATASETS.CUSTOM")
    p.add_argument("--config-file", default=None, metavar="FILE", help="config declaring the dataset (optional)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for one PNG per image")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="draw only the first N images")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("predictions", help="image | ground truth | prediction | error map, per prediction file")
    p.add_argument("--pred", required=True, metavar="DIR",
                   help="folder of prediction label images (tools/predict.py), matched to images by file stem")
    p.add_argument("--dataset", default=None, help="a registered dataset holding the images and ground truth")
    p.add_argument("--config-file", default=None, metavar="FILE", help="config declaring the dataset (optional)")
    p.add_argument("--gt", default=None, metavar="DIR", help="folder of ground-truth label images (without --dataset)")
    p.add_argument("--images", default=None, metavar="DIR", help="folder of the images (without --dataset)")
    p.add_argument("--classes", default=None, metavar="FILE", help="classes file, JSON or YAML (without --dataset)")
    p.add_argument("--label-format", choices=("gray", "blue", "palette", "rgb"), default=None,
                   help="how the prediction files encode class ids, as tools/predict.py --label-format (with --gt "
                        "also the ground truth); default: the dataset's or the classes file's format")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for one PNG per prediction")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="draw only the first N predictions")
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
