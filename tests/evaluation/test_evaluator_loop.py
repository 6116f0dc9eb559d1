"""inference_on_dataset, DatasetEvaluators, build_evaluator and saving/printing results."""
import json
import logging

import numpy as np
import pytest
import torch

from segdet.config import get_cfg
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.data.resolve import resolve_metadata
from segdet.evaluation import (
    COCOEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    PanopticEvaluator,
    SemSegEvaluator,
    build_evaluator,
    evaluate_dataset,
    inference_on_dataset,
    print_results,
    save_results,
)
from segdet.evaluation.results import format_class_table, format_results_table

META = Metadata(["bg", "fg"])


class FixedModel(torch.nn.Module):
    """Returns a stored segmentation_image per image id; records how it was called."""

    def __init__(self, predictions):
        super().__init__()
        self.predictions = predictions
        self.layer = torch.nn.Linear(1, 1)  # so that train()/eval() have something to switch
        self.calls = []

    def forward(self, inputs):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return [{"segmentation_image": torch.as_tensor(self.predictions[x["image_id"]])} for x in inputs]


class CountingEvaluator(DatasetEvaluator):
    def reset(self):
        self.images = 0

    def process(self, inputs, outputs):
        assert len(inputs) == len(outputs)
        self.images += len(inputs)

    def evaluate(self):
        return {"count": {"images": self.images}}


def make_loader(tmp_path):
    gts = {"a": np.array([[0, 1], [1, 1]]), "b": np.array([[0, 0], [0, 1]]), "c": np.array([[1, 1], [1, 1]])}
    codec = LabelCodec(META)
    inputs = []
    for name, ids in gts.items():
        path = str(tmp_path / f"{name}.png")
        codec.write(path, ids)
        inputs.append({"image_id": name, "file_name": f"{name}.jpg", "sem_seg_file_name": path})
    preds = {"a": np.array([[0, 1], [1, 0]]), "b": np.array([[0, 0], [0, 1]]), "c": np.array([[1, 1], [1, 1]])}
    return [inputs[:2], inputs[2:]], preds  # two batches


def test_inference_on_dataset_with_two_evaluators(tmp_path):
    loader, preds = make_loader(tmp_path)
    model = FixedModel(preds)
    model.train()
    counting = CountingEvaluator()
    counting.images = 99  # reset() must clear it
    evaluators = DatasetEvaluators([SemSegEvaluator(META), counting])
    results = inference_on_dataset(model, loader, evaluators)
    assert model.calls == [(False, False), (False, False)]  # eval mode, no gradients
    assert model.training  # mode restored
    assert results["count"] == {"images": 3}
    # 12 pixels: bg 4 (all right, pred 5), fg 8 (7 right, pred 7).
    assert results["sem_seg"]["pixel_accuracy"] == pytest.approx(11 / 12)
    assert results["sem_seg"]["class_iou"] == pytest.approx([4 / 5, 7 / 8])

    model.eval()
    inference_on_dataset(model, loader, [CountingEvaluator()])  # a plain list works too
    assert not model.training


def test_model_mode_is_restored_when_evaluation_fails(tmp_path):
    loader, preds = make_loader(tmp_path)
    del preds["c"]
    model = FixedModel(preds)
    model.train()
    with pytest.raises(KeyError):
        inference_on_dataset(model, loader, None)
    assert model.training


def test_two_evaluators_with_the_same_task_are_an_error():
    evaluators = DatasetEvaluators([CountingEvaluator(), CountingEvaluator()])
    evaluators.reset()
    with pytest.raises(ValueError, match="'count'"):
        evaluators.evaluate()


@pytest.fixture
def fruit_dataset():
    meta = Metadata(["background", "orange", "lemon", "border"], thing_class_ids=[1, 2], ignore_class_ids=[3])
    register_dataset("eval_loop_fruit", lambda: [{"file_name": "x.jpg", "image_id": "x"}], meta)
    yield meta
    DatasetCatalog.remove("eval_loop_fruit")
    MetadataCatalog.remove("eval_loop_fruit")


def test_build_evaluator_chooses_from_config_and_metadata(fruit_dataset, tmp_path):
    cfg = get_cfg()
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 4
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2

    def kinds(cfg):
        evaluators = build_evaluator(cfg, resolve_metadata(cfg, ["eval_loop_fruit"]), str(tmp_path)).evaluators
        return [type(e) for e in evaluators], evaluators

    found, ev = kinds(cfg)
    assert found == [SemSegEvaluator, COCOEvaluator, PanopticEvaluator]
    assert ev[0].output_dir == str(tmp_path / "inference" / "eval_loop_fruit")
    # One ground-truth reader for the evaluators that decode label files.
    assert ev[0].labels is ev[2].labels
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = [0, 3]
    assert kinds(cfg)[1][2].ignore_class_ids == [0, 3]
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = None
    # Fusion off: no panoptic_seg output, so no panoptic evaluator.
    cfg.MODEL.PANOPTIC_FPN.COMBINE.ENABLED = False
    assert kinds(cfg)[0] == [SemSegEvaluator, COCOEvaluator]
    cfg.MODEL.PANOPTIC_FPN.COMBINE.ENABLED = True
    cfg.MODEL.MASK_ON = False
    assert kinds(cfg)[0] == [SemSegEvaluator]


def test_save_and_print_results(tmp_path, caplog):
    results = {"sem_seg": {"mean_iou": 0.5, "mIoU": 50.0, "IoU-fg": 25.0, "class_iou": [0.75, 0.25],
                           "class_pixel_accuracy": [1.0, -1.0], "pixel_confusion_matrix": [[3, 1], [0, 0]],
                           "nan_value": float("nan"), "count": np.int64(4)}}
    path = save_results(results, str(tmp_path), "toy")
    assert path == str(tmp_path / "inference" / "toy" / "results.json")
    saved = json.loads((tmp_path / "inference" / "toy" / "results.json").read_text())
    assert saved["sem_seg"]["mean_iou"] == 0.5 and saved["sem_seg"]["nan_value"] is None
    assert saved["sem_seg"]["count"] == 4

    table = format_results_table(results)
    assert "mean_iou" in table and "mIoU" in table and "IoU-fg" not in table
    coco_table = format_results_table({"bbox": {"AP": 40.0, "AP-fg": 55.5, "AP-bg": -1.0}})
    assert "| AP        | 40.0000 |" in coco_table
    class_lines = coco_table.split("per class:")[1].splitlines()[3:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in class_lines]
    assert rows == [["fg", "55.5000"], ["bg", "-"]]
    classes = format_class_table(results["sem_seg"], ["bg", "fg"], [])
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in classes.splitlines()[2:]]
    assert rows[0] == ["0", "bg", "0.7500", "1.0000", "4", "3"]
    assert rows[1] == ["1", "fg", "0.2500", "-", "0", "1"]
    with caplog.at_level(logging.INFO, logger="segdet.evaluation.results"):
        print_results(results, "toy", ["bg", "fg"])
    assert "Evaluation results on toy" in caplog.text and "per class" in caplog.text


def test_evaluate_dataset_runs_prints_and_saves(tmp_path, caplog):
    register_dataset("eval_loop_toy", lambda: [], META)
    try:
        loader, preds = make_loader(tmp_path)
        cfg = get_cfg()
        cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 2
        cfg.MODEL.MASK_ON = False
        cfg.OUTPUT_DIR = str(tmp_path / "run")
        with caplog.at_level(logging.INFO, logger="segdet.evaluation"):
            results = evaluate_dataset(cfg, FixedModel(preds), loader, resolve_metadata(cfg, ["eval_loop_toy"]))
        assert results["sem_seg"]["class_iou"] == pytest.approx([4 / 5, 7 / 8])
        folder = tmp_path / "run" / "inference" / "eval_loop_toy"
        saved = json.loads((folder / "results.json").read_text())
        assert saved["sem_seg"]["mIoU"] == pytest.approx(100 * (4 / 5 + 7 / 8) / 2)
        assert (folder / "sem_seg_confusion.png").exists()
        assert "Evaluation results on eval_loop_toy" in caplog.text
    finally:
        DatasetCatalog.remove("eval_loop_toy")
        MetadataCatalog.remove("eval_loop_toy")
