"""tools/train_net_d2.py on the tiny demo dataset: 20 iterations, --eval-only, --resume, and
tools/predict.py --engine detectron2 on the model it wrote."""
import json
import os
import shutil

import pytest
import torch

from tests.d2.conftest import SKIP_REASON, run_tool, write_tiny_config

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from segdet.data.catalog import DatasetCatalog, MetadataCatalog  # noqa: E402
from segdet.data.class_weights import median_frequency_weights  # noqa: E402
from segdet.data.formats import register_from_config  # noqa: E402
from segdet.d2 import load_config  # noqa: E402
from segdet.errors import CheckpointError  # noqa: E402
from segdet.evaluation.sem_seg_evaluation import evaluate_prediction_folders  # noqa: E402
from segdet.modeling.load import load_model  # noqa: E402


def _check(result):
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return result


def _metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _results(output_dir):
    with open(os.path.join(output_dir, "inference", "tiny_val", "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trained(tiny_fruit_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_net_d2")
    config = write_tiny_config(folder / "cfg.yaml", tiny_fruit_root, str(folder / "out"))
    _check(run_tool("train_net_d2.py", "--config-file", config))
    return folder, config


@pytest.fixture
def tiny_train_metadata(trained):
    cfg = load_config(trained[1])
    names = register_from_config(cfg)
    yield MetadataCatalog.get("tiny_train")
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_twenty_iterations_write_checkpoints_metrics_and_evaluation(trained, tiny_train_metadata):
    out = str(trained[0] / "out")
    assert [m["iteration"] for m in _metrics(out) if "total_loss" in m][-1] == 19
    for name in ("model_0000009.pth", "model_0000019.pth", "model_final.pth", "last_checkpoint", "config.yaml"):
        assert os.path.isfile(os.path.join(out, name)), name
    checkpoint = torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=True)
    assert checkpoint["engine"] == "detectron2" and checkpoint["iteration"] == 19
    assert checkpoint["metadata"]["class_names"] == ["background", "orange", "lemon", "apple", "border"]
    assert "SegdetPanopticFPN" in checkpoint["config"]
    # The class weights of training ("auto") travel in the model file, for the class weight correction.
    expected = median_frequency_weights(DatasetCatalog.get("tiny_train"), tiny_train_metadata, [4])
    torch.testing.assert_close(checkpoint["model"]["training_class_weights"], torch.tensor(expected))
    results = _results(out)
    assert 0.0 <= results["sem_seg"]["mean_iou"] <= 1.0 and results["sem_seg"]["mIoU"] == pytest.approx(
        100 * results["sem_seg"]["mean_iou"])
    assert {"bbox", "segm", "panoptic_seg"} <= set(results) and "AP" in results["segm"] and "PQ" in results[
        "panoptic_seg"]
    assert os.path.isfile(os.path.join(out, "inference", "tiny_val", "sem_seg_measures.json"))


def test_segdet_standalone_loader_names_the_engine(trained):
    with pytest.raises(CheckpointError, match="--engine detectron2"):
        load_model(str(trained[0] / "out" / "model_final.pth"))


def test_eval_only_reproduces_the_final_evaluation(trained):
    folder, config = trained
    weights = str(folder / "out" / "model_final.pth")
    _check(run_tool("train_net_d2.py", "--config-file", config, "--eval-only", "MODEL.WEIGHTS", weights,
                    "OUTPUT_DIR", str(folder / "eval")))
    again, first = _results(str(folder / "eval")), _results(str(folder / "out"))
    assert again["sem_seg"] == pytest.approx(first["sem_seg"], nan_ok=True)
    assert again["segm"] == pytest.approx(first["segm"], nan_ok=True)
    assert again["panoptic_seg"] == pytest.approx(first["panoptic_seg"], nan_ok=True)


def test_predict_writes_segdets_outputs_that_score_what_the_evaluator_scored(trained, tiny_fruit_root,
                                                                          tiny_train_metadata):
    folder, _ = trained
    pred = str(folder / "pred")
    _check(run_tool("predict.py", "--engine", "detectron2", "--weights", str(folder / "out" / "model_final.pth"),
                    "--input", os.path.join(tiny_fruit_root, "images", "val"), "--output", pred))
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(tiny_fruit_root, "images", "val")))
    for stem in stems:
        for suffix in (".png", "_confidence.png", "_overlay.jpg"):
            assert os.path.isfile(os.path.join(pred, stem + suffix)), stem + suffix
    with open(os.path.join(pred, "coco_instances_results.json")) as f:
        coco = json.load(f)
    assert coco and {r["category_id"] for r in coco} <= {1, 2, 3}  # class ids, not detectron2's thing indices
    # The written segmentation_images score exactly what the evaluation of the training run scored.
    segmentations = folder / "segmentations"
    segmentations.mkdir()
    for stem in stems:
        shutil.copy(os.path.join(pred, stem + ".png"), segmentations)
    results, _ = evaluate_prediction_folders(os.path.join(tiny_fruit_root, "segmentation", "val"),
                                             str(segmentations), tiny_train_metadata)
    with open(os.path.join(folder, "out", "inference", "tiny_val", "sem_seg_measures.json")) as f:
        evaluated = json.load(f)
    assert results["sem_seg"]["pixel_confusion_matrix"] == evaluated["pixel_confusion_matrix"]
    assert results["sem_seg"]["mean_iou"] == pytest.approx(_results(str(folder / "out"))["sem_seg"]["mean_iou"])

def test_resume_continues_from_the_last_checkpoint(trained):
    folder, config = trained
    resumed = str(folder / "resumed")
    shutil.copytree(str(folder / "out"), resumed)
    result = _check(run_tool("train_net_d2.py", "--config-file", config, "--resume", "SOLVER.MAX_ITER", "24",
                             "OUTPUT_DIR", resumed))
    assert "Starting training from iteration 20" in result.stdout + result.stderr
    assert [m["iteration"] for m in _metrics(resumed) if "total_loss" in m][-1] == 23
    checkpoint = torch.load(os.path.join(resumed, "model_final.pth"), map_location="cpu", weights_only=True)
    assert checkpoint["iteration"] == 23
