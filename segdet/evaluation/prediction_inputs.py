"""What an evaluation of prediction files compares: the ground-truth files, the prediction files,
the classes, and how each side is decoded (tools/eval_predictions.py, tools/report.py).

The classes come from, in this order: classes given outright, a classes file, the registered
dataset the ground truth belongs to, or the prediction folder's manifest (the model's own
classes, written by tools/predict.py). Predictions are decoded in the label format asked for,
else in the one their manifest records, else as tools/predict.py writes them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from segdet.data.catalog import DatasetCatalog
from segdet.data.label_codec import LabelCodec
from segdet.data.prediction_folder import prediction_codec, prediction_files, read_manifest
from segdet.data.resolve import dataset_metadata
from segdet.errors import DataError
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import IMAGE_EXTENSIONS


@dataclasses.dataclass
class PredictionEvaluationInputs:
    ground_truth: dict[str, str]
    predictions: dict[str, str]
    metadata: Metadata
    prediction_codec: LabelCodec
    gt_source: str
    pred_source: str


def dataset_label_files(name: str) -> dict[str, str]:
    """A registered dataset's label files by the file stem of their images (the names
    tools/predict.py gives its outputs)."""
    files: dict[str, str] = {}
    for d in DatasetCatalog.get(name):
        if d.get("sem_seg_file_name"):
            files[os.path.splitext(os.path.basename(d["file_name"]))[0]] = d["sem_seg_file_name"]
    if not files:
        raise DataError(f"dataset '{name}' has no ground-truth label files (sem_seg_file_name)")
    return files


def prediction_evaluation_inputs(pred_dir: str, *, gt_dir: Optional[str] = None, dataset: Optional[str] = None,
                                 config_file: Optional[str] = None, classes_file: Optional[str] = None,
                                 metadata: Optional[Metadata] = None,
                                 label_format: Optional[str] = None) -> PredictionEvaluationInputs:
    """Gather the files and classes of an evaluation of a prediction folder.

    Args:
        pred_dir: the prediction folder (tools/predict.py's, or label images of any tool).
        gt_dir: a folder of ground-truth label images (matched by file stem), or
        dataset: a registered dataset (its label files; `config_file` declares it if it is one of
            a config's DATASETS.CUSTOM).
        classes_file, metadata: the classes, when the dataset or the manifest should not give them.
        label_format: how the label images encode class ids: with `gt_dir` both folders, with
            `dataset` the predictions only.
    """
    if (gt_dir is None) == (dataset is None):
        raise DataError("give the ground truth as a folder (--gt) or as a registered dataset (--dataset), one of them")
    manifest = read_manifest(pred_dir)
    if metadata is None and classes_file:
        metadata = load_classes_file(classes_file)
    if metadata is None and dataset:
        metadata = dataset_metadata(dataset, config_file)
    if metadata is None and manifest is not None:
        metadata = manifest.metadata
    if metadata is None:
        raise DataError(f"prediction folder {pred_dir} has no manifest (it was not written by tools/predict.py): "
                        "give the classes with --classes-file, --dataset or --num-classes")
    if dataset:
        ground_truth, gt_source = dataset_label_files(dataset), f"dataset '{dataset}'"
        gt_metadata = dataset_metadata(dataset, config_file)
        if gt_metadata.class_names != metadata.class_names:
            raise DataError(f"dataset '{dataset}' has the classes {gt_metadata.class_names}, the predictions "
                            f"{metadata.class_names}")
        metadata = dataclasses.replace(metadata, label_format=gt_metadata.label_format,
                                       label_values=gt_metadata.label_values, label_map=gt_metadata.label_map)
    else:
        ground_truth, gt_source = files_by_stem(gt_dir, IMAGE_EXTENSIONS, "ground-truth"), gt_dir
        if not ground_truth:
            raise DataError(f"ground-truth folder {gt_dir} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        if label_format:
            metadata = dataclasses.replace(metadata, label_format=label_format)
    return PredictionEvaluationInputs(ground_truth, prediction_files(pred_dir), metadata,
                                      prediction_codec(pred_dir, metadata, label_format), gt_source, pred_dir)
