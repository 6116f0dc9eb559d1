"""Semantic segmentation evaluation: a confusion matrix accumulated over the dataset.

Memory does not grow with the dataset: only the NxN confusion matrix (plus, on
request, per-class boundary counts and two numbers per image) is kept.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import numpy as np

from segdet.data.label_codec import LabelCodec
from segdet.data.prediction_folder import prediction_files
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError, DataError
from segdet.evaluation.evaluator import DatasetEvaluator
from segdet.evaluation.ground_truth import GroundTruthLabels
from segdet.utils.files import files_by_stem, write_json
from segdet.evaluation.sem_seg_measures import (
    boundary_counts,
    boundary_iou_measures,
    confusion_matrix,
    detectron2_keys,
    image_summary,
    segmentation_measures,
)
from segdet.utils import comm
from segdet.utils.arrays import to_numpy
from segdet.utils.image_io import IMAGE_EXTENSIONS
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

PER_IMAGE_FILE = "sem_seg_per_image.json"
CONFUSION_FILE = "sem_seg_confusion.png"


def _class_ids(array: Any, what: str) -> np.ndarray:
    array = to_numpy(array)
    if array.dtype.kind not in "iub":
        raise DataError(f"{what} has type {array.dtype}; expected integer class ids")
    return array


def rank_images(per_image: list[dict]) -> list[dict]:
    """Per-image entries sorted worst first (lowest mean IoU, then pixel accuracy).

    Images without any evaluated pixel (measures -1) come last.
    """
    return sorted(per_image, key=lambda r: (r["mean_iou"] < 0, r["mean_iou"], r["pixel_accuracy"], str(r["image_id"])))


class SemSegEvaluator(DatasetEvaluator):
    """HALCON's segmentation measures, plus detectron2's keys, over a whole dataset.

    Ground truth comes from each input dict's `sem_seg_file_name` (decoded by the
    dataset's LabelCodec, at the original size); the prediction is the output dict's
    `segmentation_image`. `evaluate()` returns {"sem_seg": {...}} with the measures of
    `sem_seg_measures.segmentation_measures` (fractions; -1 = not defined), the same
    under detectron2's percentage keys, and, when `boundary_width` > 0, `boundary_iou`
    and `class_boundary_iou`.
    """

    def __init__(
        self,
        metadata: Metadata,
        output_dir: Optional[str] = None,
        *,
        labels: Optional[GroundTruthLabels] = None,
        per_image: bool = False,
        boundary_width: int = 0,
    ):
        """
        Args:
            metadata: the dataset's classes, ignore classes (their ground-truth pixels take
                no part in the measures) and label format.
            output_dir: where the main process writes the confusion-matrix picture and,
                with `per_image`, `sem_seg_per_image.json`; None = write nothing.
            labels: the ground-truth reader shared with the other evaluators of the run;
                None = one of its own for the metadata.
            per_image: also rank images by their own pixel accuracy and mean IoU.
            boundary_width: band width (px) of boundary IoU; 0 = not computed.
        """
        if boundary_width < 0:
            raise ConfigError(f"boundary IoU width must be >= 0 px, got {boundary_width}")
        self.metadata = metadata
        self.class_names = list(metadata.class_names)
        self.num_classes = metadata.num_classes
        self.ignore_class_ids = list(metadata.ignore_class_ids)
        self.output_dir = output_dir
        self.dataset_name = metadata.name
        self.labels = labels or GroundTruthLabels(metadata)
        self.per_image = per_image
        self.boundary_width = int(boundary_width)
        self.per_image_results: list[dict] = []
        self.reset()

    @classmethod
    def from_config(cls, cfg, metadata: Metadata, output_dir: Optional[str] = None,
                    labels: Optional[GroundTruthLabels] = None) -> "SemSegEvaluator":
        """An evaluator with TEST.PER_IMAGE_METRICS and TEST.BOUNDARY_IOU_WIDTH."""
        return cls(metadata, output_dir, labels=labels, per_image=bool(cfg.TEST.PER_IMAGE_METRICS),
                   boundary_width=int(cfg.TEST.BOUNDARY_IOU_WIDTH))

    def reset(self) -> None:
        n = self.num_classes
        self._conf = np.zeros((n, n), dtype=np.int64)
        self._boundary_inter = np.zeros(n, dtype=np.int64)
        self._boundary_union = np.zeros(n, dtype=np.int64)
        self._per_image: list[dict] = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            gt_file = inp.get("sem_seg_file_name")
            name = inp.get("file_name", inp.get("image_id", "?"))
            if not gt_file:
                raise DataError(f"image {name}: the input dict has no 'sem_seg_file_name' to evaluate against")
            gt = self.labels.read(gt_file)
            pred = _class_ids(out["segmentation_image"], f"image {name}: segmentation_image")
            if pred.shape != gt.shape:
                raise DataError(
                    f"image {name}: segmentation_image has size {tuple(pred.shape)} but the ground truth "
                    f"{gt_file} has size {tuple(gt.shape)}; outputs must be at the original image size"
                )
            self.add(gt, pred, image_id=inp.get("image_id", name), file_name=name, where=f"image {name}")

    def add(
        self,
        gt: np.ndarray,
        pred: np.ndarray,
        image_id: Any = "",
        file_name: str = "",
        where: str = "",
        allow_predicted_ignore: bool = False,
    ) -> np.ndarray:
        """Accumulate one image given as class-id arrays; returns its own confusion matrix.

        Args:
            gt, pred: HxW class ids.
            image_id, file_name: recorded with the per-image measures.
            where: prefix of error messages (which image).
            allow_predicted_ignore: count a predicted ignore class as wrong instead of
                raising (for predictions made by other tools).
        """
        try:
            conf = confusion_matrix(gt, pred, self.num_classes, self.ignore_class_ids, allow_predicted_ignore)
        except DataError as e:
            raise DataError(f"{where or 'image'}: {e}") from None
        self._conf += conf
        if self.boundary_width > 0:
            inter, union = boundary_counts(gt, pred, self.num_classes, self.ignore_class_ids, self.boundary_width)
            self._boundary_inter += inter
            self._boundary_union += union
        if self.per_image:
            entry = {"image_id": image_id, "file_name": file_name}
            entry.update(image_summary(conf, self.ignore_class_ids))
            self._per_image.append(entry)
        return conf

    @property
    def confusion(self) -> np.ndarray:
        """The confusion matrix accumulated in this process so far."""
        return self._conf.copy()

    def evaluate(self) -> dict:
        conf = np.sum(comm.all_gather(self._conf), axis=0)
        per_image = [e for part in comm.all_gather(self._per_image) for e in part]
        if self.boundary_width > 0:
            inter = np.sum(comm.all_gather(self._boundary_inter), axis=0)
            union = np.sum(comm.all_gather(self._boundary_union), axis=0)
        if not comm.is_main_process():
            return {}

        if conf.sum() == 0:
            logger.warning("semantic segmentation of '%s': no evaluated pixel (only ignore classes, or no image)",
                           self.dataset_name)
        measures = segmentation_measures(conf, self.ignore_class_ids)
        if self.boundary_width > 0:
            measures.update(boundary_iou_measures(inter, union, conf.sum(axis=1) > 0))
        results = dict(measures)
        results.update(detectron2_keys(measures, self.class_names))

        self.per_image_results = rank_images(per_image) if self.per_image else []
        if self.output_dir:
            self._write_files(conf)
        return {"sem_seg": results}

    def _write_files(self, conf: np.ndarray) -> None:
        # Imported here: matplotlib is only needed when a picture is written.
        from segdet.visualization.confusion import plot_confusion_matrix

        os.makedirs(self.output_dir, exist_ok=True)
        picture = os.path.join(self.output_dir, CONFUSION_FILE)
        plot_confusion_matrix(conf, self.class_names, picture, self.ignore_class_ids,
                              title=f"Pixel confusion matrix {self.dataset_name}".strip())
        logger.info("confusion matrix picture: %s", picture)
        if self.per_image:
            path = os.path.join(self.output_dir, PER_IMAGE_FILE)
            write_json(self.per_image_results, path)
            logger.info("per-image measures (worst first): %s", path)


def _list_names(paths: list[str], limit: int = 20) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" ... and {len(paths) - limit} more" if len(paths) > limit else "")


def evaluate_prediction_folders(
    gt_dir: str,
    pred_dir: str,
    metadata: Metadata,
    per_image: bool = False,
    boundary_width: int = 0,
) -> tuple[dict, SemSegEvaluator]:
    """Evaluate prediction label files against ground-truth files matched by file stem
    (`evaluate_prediction_files` on two folders; both in the metadata's label format).

    Args:
        gt_dir, pred_dir: folders of label images (not searched recursively); in a folder of
            tools/predict.py, its confidence and overlay pictures are not predictions.
        metadata: classes, ignore ids and label format.
        per_image, boundary_width: as for SemSegEvaluator.
    """
    gts = files_by_stem(gt_dir, IMAGE_EXTENSIONS, "ground-truth")
    if not gts:
        raise DataError(f"ground-truth folder {gt_dir} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return evaluate_prediction_files(gts, prediction_files(pred_dir), metadata, per_image=per_image,
                                     boundary_width=boundary_width, gt_source=gt_dir, pred_source=pred_dir)


def evaluate_prediction_files(
    ground_truth: dict[str, str],
    predictions: dict[str, str],
    metadata: Metadata,
    prediction_codec: Optional[LabelCodec] = None,
    per_image: bool = False,
    boundary_width: int = 0,
    gt_source: str = "the ground truth",
    pred_source: str = "the predictions",
) -> tuple[dict, SemSegEvaluator]:
    """Evaluate prediction label files against ground-truth label files with the same names.

    Every problem is collected and reported together, naming the files: a ground truth
    without prediction or the reverse, an unreadable file, differing sizes, a value that
    is not a class. A predicted ignore class is counted as a wrong prediction (other tools
    may predict one) with a warning.

    Args:
        ground_truth, predictions: name -> label file.
        metadata: classes, ignore ids; its label format decodes the ground truth.
        prediction_codec: decodes the predictions; None = the metadata's codec.
        per_image, boundary_width: as for SemSegEvaluator.
        gt_source, pred_source: where the files come from, for messages.
    Returns:
        ({"sem_seg": ..., and with per_image "sem_seg_per_image": [...]}, the evaluator).
    Raises:
        DataError: listing every problem found.
    """
    problems = []
    no_pred = [os.path.basename(ground_truth[s]) for s in ground_truth if s not in predictions]
    no_gt = [os.path.basename(predictions[s]) for s in predictions if s not in ground_truth]
    if no_pred:
        problems.append(f"no prediction in {pred_source} for ground-truth file(s): {_list_names(no_pred)}")
    if no_gt:
        problems.append(f"no ground truth in {gt_source} for prediction file(s): {_list_names(no_gt)}")
    if problems:
        raise DataError("\n".join(problems))

    gt_codec = LabelCodec(metadata)
    pred_codec = prediction_codec or gt_codec
    evaluator = SemSegEvaluator(metadata, per_image=per_image, boundary_width=boundary_width)
    ignore = set(metadata.ignore_class_ids)
    progress = Progress(len(ground_truth), "Evaluating predictions", logger=logger)
    for name in sorted(ground_truth):
        gt_file, pred_file = ground_truth[name], predictions[name]
        try:
            gt = gt_codec.read(gt_file)
            pred = pred_codec.read(pred_file)
            if gt.shape != pred.shape:
                raise DataError(
                    f"prediction {pred_file} has size {pred.shape[1]}x{pred.shape[0]} (WxH) but ground truth "
                    f"{gt_file} has size {gt.shape[1]}x{gt.shape[0]}"
                )
            conf = evaluator.add(gt, pred, image_id=name, file_name=pred_file, where=f"prediction {pred_file}",
                                 allow_predicted_ignore=True)
        except DataError as e:
            problems.append(str(e))
            continue
        predicted_ignore = [i for i in ignore if conf[:, i].any()]
        if predicted_ignore:
            logger.warning("prediction %s holds ignore class id(s) %s; counted as wrong predictions",
                           pred_file, predicted_ignore)
        progress.step()
    progress.done()
    if len(problems) == 1:  # one problem reads as one line
        raise DataError(problems[0])
    if problems:
        raise DataError(f"{len(problems)} file problem(s):\n" + "\n".join(problems))

    results = evaluator.evaluate()
    if per_image:
        results["sem_seg_per_image"] = evaluator.per_image_results
    return results, evaluator
