"""tools/predict.py's output folder scored by tools/eval_predictions.py as it is: no copying of
files, no class list typed (the folder's manifest has the model's classes)."""
import json

import cv2
import numpy as np
import pytest
import torch

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.image_folder import register_image_folder
from segdet.inference.predictor import Predictor
from segdet.utils.cli import run_cli
from tests.inference.common import random_image, save_tiny_checkpoint
from tests.modeling.test_meta_arch import METADATA
from tests.tools.tool_loader import tool_main

H, W = 40, 56
NUM_CLASSES, IGNORE = METADATA.num_classes, METADATA.ignore_class_ids[0]


def tool(name, *args):
    """A tool's exit status as a user sees it (errors through run_cli: one line, status 2)."""
    try:
        return run_cli(lambda: tool_main(name, *args))
    except SystemExit as stop:
        return stop.code


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """Three images, their ground truth (gray class ids, an ignore band), a tiny model, and its
    predictions written by tools/predict.py."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("compose")
    weights, _, _ = save_tiny_checkpoint(root / "model", mask_on=False, seed=3)
    rng = np.random.default_rng(7)
    for sub in ("images", "labels"):
        (root / sub).mkdir()
    for k in range(3):
        image = random_image(H, W, seed=20 + k)
        cv2.imwrite(str(root / "images" / f"im{k}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        gt = rng.integers(0, NUM_CLASSES - 1, (H, W), dtype=np.uint8)
        gt[:, 0] = IGNORE
        cv2.imwrite(str(root / "labels" / f"im{k}.png"), gt)
    assert tool("predict", "--weights", weights, "--input", root / "images", "--output", root / "pred") == 0
    yield root, weights
    torch.set_num_threads(before)


def expected_confusion(root, weights):
    """The confusion matrix of the model's own outputs against the ground truth, by numpy."""
    predictor = Predictor.from_checkpoint(weights, ["MODEL.DEVICE", "cpu"])
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for k in range(3):
        image = cv2.cvtColor(cv2.imread(str(root / "images" / f"im{k}.png")), cv2.COLOR_BGR2RGB)
        pred = predictor(image)["segmentation_image"].numpy()
        gt = cv2.imread(str(root / "labels" / f"im{k}.png"), cv2.IMREAD_UNCHANGED).astype(np.int64)
        keep = gt != IGNORE
        conf += np.bincount(gt[keep] * NUM_CLASSES + pred[keep], minlength=NUM_CLASSES ** 2).reshape(
            NUM_CLASSES, NUM_CLASSES)
    return conf


def test_predict_folder_scored_against_a_label_folder_without_typing_classes(predicted):
    root, weights = predicted
    out = root / "eval_folder.json"
    assert tool("eval_predictions", "--pred", root / "pred", "--gt", root / "labels", "--output", out) == 0
    res = json.loads(out.read_text())["sem_seg"]
    assert np.array_equal(np.asarray(res["pixel_confusion_matrix"]), expected_confusion(root, weights))
    assert f"IoU-{METADATA.class_names[1]}" in res  # the model's class names, from the manifest
    assert res["class_iou"][IGNORE] == -1  # and its ignore class


def test_predict_folder_scored_against_a_registered_dataset(predicted):
    root, weights = predicted
    (root / "classes.json").write_text(json.dumps({"classes": [
        {"id": i, "name": n, "ignore": i == IGNORE} for i, n in enumerate(METADATA.class_names)]}))
    register_image_folder("compose_test", str(root / "images"), str(root / "labels"),
                          classes_file=str(root / "classes.json"))
    try:
        out = root / "eval_dataset.json"
        assert tool("eval_predictions", "--pred", root / "pred", "--dataset", "compose_test", "--output", out) == 0
        res = json.loads(out.read_text())["sem_seg"]
        assert np.array_equal(np.asarray(res["pixel_confusion_matrix"]), expected_confusion(root, weights))
        out = root / "eval_classes_file.json"
        assert tool("eval_predictions", "--pred", root / "pred", "--gt", root / "labels",
                    "--classes-file", root / "classes.json", "--output", out) == 0
        assert json.loads(out.read_text())["sem_seg"]["pixel_confusion_matrix"] == res["pixel_confusion_matrix"]
    finally:
        DatasetCatalog.remove("compose_test")
        MetadataCatalog.remove("compose_test")


def test_a_folder_of_another_tool_needs_the_classes(predicted, tmp_path, capsys):
    root, _ = predicted
    other = tmp_path / "other"
    other.mkdir()
    for k in range(3):
        cv2.imwrite(str(other / f"im{k}.png"), np.zeros((H, W), np.uint8))
    assert tool("eval_predictions", "--pred", other, "--gt", root / "labels", "--output", tmp_path / "x.json") == 2
    assert "has no manifest" in capsys.readouterr().err
    assert tool("eval_predictions", "--pred", other, "--gt", root / "labels", "--num-classes", NUM_CLASSES,
                "--ignore-class-ids", IGNORE, "--output", tmp_path / "x.json") == 0
