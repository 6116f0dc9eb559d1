"""Predicting image files into a folder: what `tools/predict.py` runs, callable from Python.

    summary = predict_files(Predictor.from_checkpoint("model.pth"), ["photos/"], "pred/")

For every input image the output folder gets
    <stem>.png               segmentation_image, class ids in a label format
    <stem>_confidence.png    segmentation_confidence (or .tiff / .npy, float32)
    <stem>_overlay.jpg       the image with the classes colored and the instances outlined
and, for models with instance masks, one `coco_instances_results.json` for all images, and
`segdet_predictions.json`, the folder's manifest (model file, classes, label format, inputs;
see `segdet.data.prediction_folder`), so that evaluation and pictures need no class list.

The next images are decoded and the outputs written in `io_workers` threads while the model runs
(`segdet.inference.background_io`): the same files, in the same order, as with `io_workers=0`
(all in the calling thread). An unreadable image is skipped with a warning either way; a
writer's error is raised as it is; Ctrl-C lets the writes under way end (files are written
atomically) and drops the rest.
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from segdet.data.label_codec import segmentation_format
from segdet.data.prediction_folder import SIDE_FILE_SUFFIXES, PredictionManifest
from segdet.errors import ConfigError, DataError
from segdet.inference.background_io import DEFAULT_IO_WORKERS, OrderedReader, OrderedWriter
from segdet.inference.writers import (
    CONFIDENCE_EXTENSIONS,
    CocoResultsWriter,
    write_confidence,
    write_overlay,
    write_segmentation,
)
from segdet.structures.coco import instances_to_coco_results
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


class _OutputWriter:
    """Writes one image's files (the job `predict_files` runs in its writer threads); returns its
    COCO results, or None for a model without instances."""

    def __init__(self, output_dir: str, metadata, label_format: str, confidence_format: str, overlay: bool,
                 instances_on: bool):
        self.output_dir = output_dir
        self.metadata = metadata
        self.label_format = label_format
        self.confidence_format = confidence_format
        self.overlay = overlay
        self.instances_on = instances_on

    def __call__(self, stem: str, image, output: dict) -> Optional[list[dict]]:
        out = os.path.join(self.output_dir, stem)
        write_segmentation(out + ".png", output["segmentation_image"], self.metadata, self.label_format)
        confidence_suffix, overlay_suffix = SIDE_FILE_SUFFIXES
        write_confidence(out + confidence_suffix + CONFIDENCE_EXTENSIONS[self.confidence_format],
                         output["segmentation_confidence"], self.confidence_format)
        if self.overlay:
            write_overlay(out + overlay_suffix + ".jpg", image, output, self.metadata)
        return instances_to_coco_results(output["instances"], stem) if self.instances_on else None


def predict_files(predictor, inputs: Sequence[str], output_dir: str, *, label_format: Optional[str] = None,
                  confidence_format: str = "png", overlay: bool = True, batch_size: int = 1,
                  tile_size: Optional[int] = None, tile_overlap: Optional[float] = None,
                  tile_merge: Optional[str] = None, io_workers: int = DEFAULT_IO_WORKERS) -> PredictionSummary:
    """Predict image files and write the outputs (see the module docstring).

    Args:
        predictor: a `segdet.Predictor`.
        inputs: image files, folders (their images, not recursive) or globs.
        output_dir: the folder for the outputs (created).
        label_format: segmentation PNG encoding; None = the training data's ("gray" if it has none).
        confidence_format: "png", "tiff" or "npy".
        overlay: write `<stem>_overlay.jpg`.
        batch_size: images per forward pass: up to this many consecutive inputs are predicted
            together, those of the same size in one pass (`Predictor.predict_batch`).
        tile_size, tile_overlap, tile_merge: tiled inference (default TEST.TILE_*).
        io_workers: threads that decode the next images and write the outputs while the model
            runs (`background_io`; the same files, in the same order); 0 = all in this thread.
    Returns:
        A PredictionSummary; an unreadable image is skipped with a warning and listed there.
    """
    if io_workers < 0:
        raise ConfigError(f"io workers {io_workers}; must be >= 0 (0 = decode and write in the main thread)")
    paths = collect_inputs(inputs)
    stems = output_stems(paths)
    os.makedirs(output_dir, exist_ok=True)
    metadata = predictor.metadata
    label_format = segmentation_format(metadata, label_format)
    tiler = predictor.tiled_segmenter(tile_size, tile_overlap, tile_merge)
    coco = CocoResultsWriter(os.path.join(output_dir, COCO_RESULTS_FILE)) if predictor.instances_on else None
    logger.info("Predicting %d images with %s on %s (engine %s): classes %s; %s; segmentation as '%s' PNG; "
                "batches of %d, %s", len(paths), predictor.weights, predictor.device,
                predictor.engine, metadata.class_names,
                f"tiles of {tiler.tile_h} px, overlap {tiler.overlap}, merge '{tiler.merge}'" if tiler
                else "whole images", label_format, batch_size,
                f"{io_workers} threads decoding ahead and writing behind" if io_workers else "serial I/O")
    summary = PredictionSummary(len(paths), os.path.abspath(output_dir))
    progress = Progress(len(paths), "Predicting")

    def written(results: Optional[list[dict]]) -> None:
        if coco is not None:
            coco.add_results(results)
        progress.step()

    write = _OutputWriter(output_dir, metadata, label_format, confidence_format, overlay, coco is not None)
    reader = OrderedReader(lambda item: read_image(item[0]), zip(paths, stems), io_workers, ahead=2 * batch_size)
    writer = OrderedWriter(written, io_workers, limit=batch_size + io_workers)

    def predict_chunk(chunk: list) -> None:
        batch = []
        for (path, stem), image in chunk:
            try:
                batch.append((stem, image.result()))
            except DataError as e:
                logger.warning("Skipping %s: %s", path, e)
                summary.skipped.append((path, str(e)))
                progress.step()
        if not batch:
            return
        outputs = predictor.predict_batch([image for _, image in batch], tile_size, tile_overlap, tile_merge,
                                          return_scores=False)
        for (stem, image), output in zip(batch, outputs):
            writer.submit(write, stem, image, output)

    try:
        chunk = []  # batch_size consecutive inputs, the unreadable ones included
        for item in reader:
            chunk.append(item)
            if len(chunk) == batch_size:
                predict_chunk(chunk)
                chunk = []
        if chunk:
            predict_chunk(chunk)
        writer.finish()
    finally:
        # After an error or Ctrl-C: nothing new starts, running writes end (atomically).
        reader.close()
        writer.close()
    progress.done()
    if coco is not None:
        summary.coco_file = coco.write()
        summary.coco_images = coco.num_images
    skipped = {p for p, _ in summary.skipped}
    predicted = {stem: os.path.abspath(path) for path, stem in zip(paths, stems) if path not in skipped}
    PredictionManifest(os.path.abspath(predictor.weights), metadata, label_format, predicted).write(output_dir)
    return summary
