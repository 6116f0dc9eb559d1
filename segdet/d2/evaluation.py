"""segdet's evaluators as detectron2 DatasetEvaluators, and the evaluators of a dataset.

    SegdetSemSegEvaluator   HALCON's measures and detectron2's keys (mIoU, fwIoU, IoU-<class>, ...),
                            several ignore classes, memory flat in the dataset size
    SegdetPanopticEvaluator PQ / SQ / RQ from the dataset's own labels (no COCO panoptic files)

They run in detectron2's `inference_on_dataset`, next to its COCOEvaluator (and, for data with
COCO panoptic files, its COCOPanopticEvaluator: the models' `panoptic_seg` is in detectron2's
convention).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
from detectron2.data import MetadataCatalog as D2MetadataCatalog
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, DatasetEvaluators

from segdet.config.experiment import instances_enabled, panoptic_enabled
from segdet.d2.convert import ThingIds, dict_with_class_ids
from segdet.d2.datasets import segdet_metadata
from segdet.errors import DataError
from segdet.evaluation.ground_truth import GroundTruthLabels
from segdet.evaluation.panoptic_evaluation import PanopticEvaluator
from segdet.evaluation.results import inference_dir
from segdet.evaluation.sem_seg_evaluation import SemSegEvaluator
from segdet.modeling.postprocess import segmentation_from_scores
from segdet.structures.metadata import Metadata
from segdet.utils import comm
from segdet.utils.files import write_json

MEASURES_FILE = "sem_seg_measures.json"


def dataset_metadata(dataset_name: str) -> Metadata:
    """The segdet Metadata of a dataset segdet registered in detectron2's catalog."""
    stored = D2MetadataCatalog.get(dataset_name).get("segdet_metadata")
    if stored is None:
        raise DataError(f"dataset '{dataset_name}' was not registered by segdet (it has no segdet metadata); "
                        "register it with a segdet format (DATASETS.CUSTOM) and segdet.d2.register_segdet_datasets")
    metadata = Metadata.from_dict(stored)
    metadata.name = dataset_name
    return metadata


class SegdetSemSegEvaluator(DatasetEvaluator):
    """segdet's SemSegEvaluator in detectron2's inference loop.

    The prediction is each output's `segmentation_image`; an output with only `sem_seg` (one of
    detectron2's own models) is segmented from it without the ignore classes. `evaluate()` returns
    {"sem_seg": {...}} with the scalar measures (detectron2's trainer wants numbers); with an
    `output_dir`, all of them (per-class lists, the confusion matrix) go to `sem_seg_measures.json`
    there, next to the confusion-matrix picture.
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *, metadata: Optional[Metadata] = None,
                 labels: Optional[GroundTruthLabels] = None, per_image: bool = False, boundary_width: int = 0):
        """
        Args:
            dataset_name: a dataset segdet registered in detectron2's catalog.
            output_dir: where the files go; None = none.
            metadata: the experiment's metadata (`segdet_metadata(cfg, [dataset_name])`, with the config's
                ignore ids); None = the dataset's own.
            labels, per_image, boundary_width: as segdet's SemSegEvaluator.
        """
        self.metadata = metadata if metadata is not None else dataset_metadata(dataset_name)
        self.output_dir = output_dir
        self._evaluator = SemSegEvaluator(self.metadata, output_dir, labels=labels, per_image=per_image,
                                          boundary_width=boundary_width)

    def reset(self) -> None:
        self._evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        outputs = [out if "segmentation_image" in out else
                   {"segmentation_image": segmentation_from_scores(out["sem_seg"], self.metadata.ignore_class_ids)[0]}
                   for out in outputs]
        self._evaluator.process(inputs, outputs)

    def evaluate(self) -> Optional[dict]:
        results = self._evaluator.evaluate()
        if not comm.is_main_process():
            return None
        measures = results["sem_seg"]
        if self.output_dir:
            write_json(measures, os.path.join(self.output_dir, MEASURES_FILE))
        return {"sem_seg": {k: float(v) for k, v in measures.items() if isinstance(v, (int, float, np.number))}}


class SegdetPanopticEvaluator(DatasetEvaluator):
    """segdet's PanopticEvaluator (PQ from the dataset's semantic labels and instance annotations)
    on outputs whose `panoptic_seg` follows detectron2's convention."""

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, *, metadata: Optional[Metadata] = None,
                 labels: Optional[GroundTruthLabels] = None):
        self.metadata = metadata if metadata is not None else dataset_metadata(dataset_name)
        self.things = ThingIds(self.metadata.thing_class_ids)
        self._evaluator = PanopticEvaluator(self.metadata, output_dir, labels=labels)

    def reset(self) -> None:
        self._evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        segdet_outputs = []
        for out in outputs:
            seg, segments = out["panoptic_seg"]
            segdet_outputs.append({"panoptic_seg": (seg, self.things.segments_with_class_ids(segments))})
        self._evaluator.process([dict_with_class_ids(x, self.things) for x in inputs], segdet_outputs)

    def evaluate(self) -> Optional[dict]:
        results = self._evaluator.evaluate()
        return results if comm.is_main_process() else None


def build_evaluator(cfg, dataset_name: str, output_dir: Optional[str] = None) -> DatasetEvaluators:
    """The evaluators of one dataset, as segdet's standalone trainer chooses them: semantic always;
    detectron2's COCOEvaluator (bbox, segm) when the model has instance masks and the dataset thing
    classes; PQ when the model also fuses them. Files go to `<output_dir or OUTPUT_DIR>/inference/<dataset>/`;
    the segdet evaluators share one label reader (each label file decoded once)."""
    metadata = segdet_metadata(cfg, [dataset_name])
    folder = inference_dir(output_dir or cfg.OUTPUT_DIR, dataset_name)
    labels = GroundTruthLabels(metadata)
    evaluators: list[DatasetEvaluator] = [SegdetSemSegEvaluator(
        dataset_name, folder, metadata=metadata, labels=labels, per_image=bool(cfg.TEST.PER_IMAGE_METRICS),
        boundary_width=int(cfg.TEST.BOUNDARY_IOU_WIDTH))]
    if instances_enabled(cfg) and metadata.thing_class_ids:
        evaluators.append(COCOEvaluator(dataset_name, tasks=("bbox", "segm"), output_dir=folder,
                                        allow_cached_coco=False))
        if panoptic_enabled(cfg):
            evaluators.append(SegdetPanopticEvaluator(dataset_name, folder, metadata=metadata, labels=labels))
    return DatasetEvaluators(evaluators)
