"""Evaluation: the evaluator protocol and inference loop, semantic, COCO and panoptic measures."""
from segdet.evaluation.coco_evaluation import COCOEvaluator
from segdet.evaluation.evaluator import DatasetEvaluator, DatasetEvaluators, inference_on_dataset
from segdet.evaluation.panoptic_evaluation import PanopticEvaluator
from segdet.evaluation.results import build_evaluator, evaluate_dataset, print_results, save_results
from segdet.evaluation.sem_seg_evaluation import SemSegEvaluator, evaluate_prediction_folders

__all__ = [
    "COCOEvaluator",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "PanopticEvaluator",
    "SemSegEvaluator",
    "build_evaluator",
    "evaluate_dataset",
    "evaluate_prediction_folders",
    "inference_on_dataset",
    "print_results",
    "save_results",
]
