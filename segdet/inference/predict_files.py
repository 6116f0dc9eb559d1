"""Predicting image files into a folder: what `tools/predict.py` runs, callable from Python.

    summary = predict_files(Predictor.from_checkpoint("model.pth"), ["photos/"], "pred/")

For every input image the output folder gets
    <stem>.png               segmentation_image, class ids in a label format
    <stem>_confidence.png    segmentation_confidence (or .tiff / .npy, float32)
    <stem>_overlay.jpg       the image with the classes colored and the instances outlined
and, for models with instance masks, one `coco_instances_results.json` for all images, and
`segdet_predictions.json`, the folder's manifest (model file, classes, label format, inputs;
see `segdet.data.prediction_folder`), so that evaluation and pictures need no class list.
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from segdet.data.label_codec import segmentation_format
from segdet.data.prediction_folder import SIDE_FILE_SUFFIXES, PredictionManifest
from segdet.errors import DataError
from segdet.inference.writers import (
    CONFIDENCE_EXTENSIONS,
    CocoResultsWriter,
    write_confidence,
    write_overlay,
    write_segmentation,
)
from segdet.utils.image_io import IMAGE_EXTENSIONS, read_image
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

COCO_RESULTS_FILE = "coco_instances_results.json"


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def collect_inputs(paths: Sequence[str]) -> list[str]:
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


def output_stems(paths: Sequence[str]) -> list[str]:
    """The file stems the outputs are named by. Two inputs with the same stem (a/x.png, b/x.jpg)
    are a DataError naming both: their outputs would collide, and evaluating them against ground
    truth matched by name could not tell them apart."""
    stems: dict[str, str] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise DataError(f"two inputs have the same name '{stem}': {stems[stem]} and {path}; their outputs "
                            "would overwrite each other: predict them into separate output folders")
        stems[stem] = path
    return list(stems)


@dataclass
class PredictionSummary:
    """What `predict_files` did."""

    num_inputs: int
    output_dir: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    coco_file: Optional[str] = None
    coco_images: int = 0

    @property
    def num_predicted(self) -> int:
        return self.num_inputs - len(self.skipped)

    def lines(self) -> list[str]:
        lines = [f"{self.num_predicted} of {self.num_inputs} images predicted; outputs in {self.output_dir}"]
        if self.coco_file:
            lines.append(f"instances of {self.coco_images} images in {self.coco_file}")
        if self.skipped:
            lines.append(f"{len(self.skipped)} skipped (unreadable): " + ", ".join(p for p, _ in self.skipped))
        return lines


def predict_files(predictor, inputs: Sequence[str], output_dir: str, *, label_format: Optional[str] = None,
                  confidence_format: str = "png", overlay: bool = True, batch_size: int = 1,
                  tile_size: Optional[int] = None, tile_overlap: Optional[float] = None,
                  tile_merge: Optional[str] = None) -> PredictionSummary:
    """Predict image files and write the outputs (see the module docstring).

    Args:
        predictor: a `segdet.Predictor`.
        inputs: image files, folders (their images, not recursive) or globs.
        output_dir: the folder for the outputs (created).
        label_format: segmentation PNG encoding; None = the training data's ("gray" if it has none).
        confidence_format: "png", "tiff" or "npy".
        overlay: write `<stem>_overlay.jpg`.
        batch_size: images per forward pass (same-size images are batched).
        tile_size, tile_overlap, tile_merge: tiled inference (default TEST.TILE_*).
    Returns:
        A PredictionSummary; an unreadable image is skipped with a warning and listed there.
    """
    paths = collect_inputs(inputs)
    stems = output_stems(paths)
    os.makedirs(output_dir, exist_ok=True)
    metadata = predictor.metadata
    label_format = segmentation_format(metadata, label_format)
    tiler = predictor.tiled_segmenter(tile_size, tile_overlap, tile_merge)
    coco = CocoResultsWriter(os.path.join(output_dir, COCO_RESULTS_FILE)) if predictor.instances_on else None
    logger.info("Predicting %d images with %s on %s: classes %s; %s; segmentation as '%s' PNG", len(paths),
                predictor.weights, predictor.device, metadata.class_names,
                f"tiles of {tiler.tile_h} px, overlap {tiler.overlap}, merge '{tiler.merge}'" if tiler
                else "whole images", label_format)
    summary = PredictionSummary(len(paths), os.path.abspath(output_dir))
    progress = Progress(len(paths), "Predicting")
    for start in range(0, len(paths), batch_size):
        batch = []
        for path, stem in zip(paths[start:start + batch_size], stems[start:start + batch_size]):
            try:
                batch.append((stem, read_image(path)))
            except DataError as e:
                logger.warning("Skipping %s: %s", path, e)
                summary.skipped.append((path, str(e)))
                progress.step()
        if not batch:
            continue
        outputs = predictor.predict_batch([image for _, image in batch], tile_size, tile_overlap, tile_merge,
                                          return_scores=False)
        for (stem, image), output in zip(batch, outputs):
            out = os.path.join(output_dir, stem)
            write_segmentation(out + ".png", output["segmentation_image"], metadata, label_format)
            confidence_suffix, overlay_suffix = SIDE_FILE_SUFFIXES
            write_confidence(out + confidence_suffix + CONFIDENCE_EXTENSIONS[confidence_format],
                             output["segmentation_confidence"], confidence_format)
            if overlay:
                write_overlay(out + overlay_suffix + ".jpg", image, output, metadata)
            if coco is not None:
                coco.add(stem, output["instances"])
            progress.step()
    progress.done()
    if coco is not None:
        summary.coco_file = coco.write()
        summary.coco_images = coco.num_images
    predicted = {stem: os.path.abspath(path) for path, stem in zip(paths, stems)
                 if path not in {p for p, _ in summary.skipped}}
    PredictionManifest(os.path.abspath(predictor.weights), metadata, label_format, predicted).write(output_dir)
    return summary
