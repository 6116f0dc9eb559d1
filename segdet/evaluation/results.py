"""Results: choose the evaluators for a dataset, print the results as tables, save them as JSON."""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence

import numpy as np
from tabulate import tabulate

from segdet.config.experiment import instances_enabled, panoptic_enabled
from segdet.data.build import gather_skipped
from segdet.structures.metadata import Metadata
from segdet.evaluation.evaluator import DatasetEvaluator, DatasetEvaluators, inference_on_dataset
from segdet.utils import comm
from segdet.utils.files import write_json

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


def inference_dir(output_dir: str, dataset_name: str) -> str:
    """`<output_dir>/inference/<dataset_name>`: where a dataset's evaluation files go."""
    return os.path.join(output_dir, "inference", dataset_name)


def build_evaluator(cfg, metadata: Metadata, output_dir: str) -> DatasetEvaluators:
    """The evaluators a dataset and model call for.

    Semantic segmentation always; COCO (bbox, segm) as well when the model predicts
    instance masks (MODEL.MASK_ON) and the dataset has thing classes, and panoptic quality
    when the model also fuses them (MODEL.PANOPTIC_FPN.COMBINE.ENABLED). They share one
    ground-truth reader, so each label file is decoded once.

    Args:
        cfg: the config (MODEL.*, TEST.PER_IMAGE_METRICS, TEST.BOUNDARY_IOU_WIDTH).
        metadata: the dataset's metadata with the config's overrides (`resolve_metadata`).
        output_dir: the run's output folder (cfg.OUTPUT_DIR); files go to
            `<output_dir>/inference/<dataset name>/`.
    """
    # Imported here: the evaluators use this module's JSON writer.
    from segdet.evaluation.coco_evaluation import COCOEvaluator
    from segdet.evaluation.ground_truth import GroundTruthLabels
    from segdet.evaluation.panoptic_evaluation import PanopticEvaluator
    from segdet.evaluation.sem_seg_evaluation import SemSegEvaluator

    folder = inference_dir(output_dir, metadata.name)
    labels = GroundTruthLabels(metadata)
    evaluators: list[DatasetEvaluator] = [SemSegEvaluator.from_config(cfg, metadata, folder, labels)]
    if instances_enabled(cfg) and metadata.thing_class_ids:
        evaluators.append(COCOEvaluator(metadata, folder))
        if panoptic_enabled(cfg):
            evaluators.append(PanopticEvaluator(metadata, folder, labels=labels))
    return DatasetEvaluators(evaluators)


def evaluate_dataset(cfg, model, data_loader, metadata: Metadata, output_dir: Optional[str] = None,
                     left_out: Sequence[str] = ()) -> dict:
    """Evaluate a model on one dataset: run it, print the tables, save the JSON.

    What `tools/train_net.py --eval-only` and the periodic evaluation during training call.

    Args:
        cfg: the config.
        model: the model (its train/eval mode is restored afterwards).
        data_loader: the dataset's test loader (lists of model input dicts).
        metadata: the dataset's metadata with the config's overrides (`resolve_metadata`).
        output_dir: the run's output folder; None = cfg.OUTPUT_DIR.
        left_out: image files left out of the loader beforehand (a dataset check found them bad).
    Returns:
        The results ({} on processes other than the main one); with `skipped_samples` and
        `skipped_files` when samples were left out or skipped while loading.
    """
    output_dir = output_dir or cfg.OUTPUT_DIR
    results = inference_on_dataset(model, data_loader, build_evaluator(cfg, metadata, output_dir))
    skipped = sorted(set(left_out) | set(gather_skipped(data_loader)))
    if results and skipped:
        results.update(skipped_samples=len(skipped), skipped_files=skipped)
        logger.warning("Evaluation on %s left out %d bad samples: %s", metadata.name, len(skipped), ", ".join(skipped))
    if results and comm.is_main_process():
        print_results(results, metadata.name, metadata.class_names, metadata.ignore_class_ids)
        save_results(results, output_dir, metadata.name)
    return results


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    return "-" if value < 0 else f"{value:.4f}"


# Keys like "IoU-<class>" are per-class values; the class table shows them.
_PER_CLASS_PREFIXES = ("IoU", "ACC", "BoundaryIoU", "AP", "PQ")


def format_results_table(results: dict) -> str:
    """One table per task with its scalar measures, then its per-class values (AP-<class>,
    PQ-<class>) as a second table; the semantic per-class values are `format_class_table`'s."""
    parts = []
    for task, measures in results.items():
        if not isinstance(measures, dict):
            continue
        rows, per_class = [], {}
        for key, value in measures.items():
            if not _is_scalar(value):
                continue
            prefix, _, name = key.partition("-")
            if name and prefix in _PER_CLASS_PREFIXES:
                per_class.setdefault(name, {})[prefix] = value
            else:
                rows.append((key, _fmt(float(value))))
        if rows:
            table = tabulate(rows, headers=["measure", "value"], tablefmt="pipe", disable_numparse=True)
            parts.append(f"{task}:\n{table}")
        if per_class and task != "sem_seg":
            columns = sorted({prefix for values in per_class.values() for prefix in values})
            class_rows = [[name] + [_fmt(float(values[c])) if c in values else "" for c in columns]
                          for name, values in per_class.items()]
            table = tabulate(class_rows, headers=["class"] + columns, tablefmt="pipe", disable_numparse=True)
            parts.append(f"{task} per class:\n{table}")
    return "\n\n".join(parts)


def format_class_table(sem_seg: dict, class_names: Sequence[str], ignore_class_ids: Sequence[int] = ()) -> str:
    """Per-class table of semantic measures: IoU, pixel accuracy, boundary IoU, gt and predicted pixels."""
    conf = np.asarray(sem_seg["pixel_confusion_matrix"], dtype=np.int64)
    has_boundary = "class_boundary_iou" in sem_seg
    rows = []
    for c, name in enumerate(class_names):
        row = [c, name + (" (ignore)" if c in ignore_class_ids else ""),
               _fmt(sem_seg["class_iou"][c]), _fmt(sem_seg["class_pixel_accuracy"][c])]
        if has_boundary:
            row.append(_fmt(sem_seg["class_boundary_iou"][c]))
        row += [int(conf[c].sum()), int(conf[:, c].sum())]
        rows.append(row)
    headers = ["id", "class", "IoU", "accuracy"] + (["boundary IoU"] if has_boundary else []) + \
              ["gt pixels", "predicted pixels"]
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True)


def print_results(results: dict, dataset_name: str = "", class_names: Optional[Sequence[str]] = None,
                  ignore_class_ids: Sequence[int] = ()) -> None:
    """Log the results tables (and the per-class table when class names are given)."""
    if not results:
        return
    text = format_results_table(results)
    if class_names is not None and "sem_seg" in results:
        text += "\n\nper class (-: class absent from the ground truth, or ignored):\n" + \
            format_class_table(results["sem_seg"], class_names, ignore_class_ids)
    logger.info("Evaluation results%s:\n%s", f" on {dataset_name}" if dataset_name else "", text)


def save_results(results: dict, output_dir: str, dataset_name: str, filename: str = RESULTS_FILE) -> Optional[str]:
    """Save results as `<output_dir>/inference/<dataset_name>/<filename>` (main process only).

    Returns:
        The path written, or None on other processes.
    """
    if not comm.is_main_process():
        return None
    path = write_json(results, os.path.join(inference_dir(output_dir, dataset_name), filename))
    logger.info("Evaluation results saved to %s", path)
    return path
