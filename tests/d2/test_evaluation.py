"""SegdetSemSegEvaluator against detectron2's SemSegEvaluator, and with several ignore classes;
SegdetPanopticEvaluator on predictions in detectron2's convention."""
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from tests.d2.conftest import SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.data import MetadataCatalog as D2MetadataCatalog  # noqa: E402
from detectron2.evaluation import SemSegEvaluator as D2SemSegEvaluator  # noqa: E402

from segdet.d2 import SegdetPanopticEvaluator, SegdetSemSegEvaluator, register_segdet_datasets  # noqa: E402
from segdet.d2.convert import ThingIds  # noqa: E402
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset  # noqa: E402
from segdet.evaluation.panoptic_evaluation import panoptic_ground_truth  # noqa: E402
from segdet.structures.metadata import Metadata  # noqa: E402


@pytest.fixture
def gray_dataset(tmp_path):
    """register(name, class_names, ignore ids, gt arrays) -> input dicts; removed from both catalogs after."""
    names = []

    def register(name, class_names, ignore, gts):
        dicts = []
        for i, gt in enumerate(gts):
            path = str(tmp_path / f"{name}_{i}.png")
            Image.fromarray(gt.astype(np.uint8)).save(path)
            dicts.append({"file_name": f"image_{i}.jpg", "image_id": i, "height": gt.shape[0], "width": gt.shape[1],
                          "sem_seg_file_name": path})
        register_dataset(name, lambda: [dict(d) for d in dicts], Metadata(class_names, ignore_class_ids=ignore))
        register_segdet_datasets()
        names.append(name)
        return dicts

    yield register
    for name in names:
        for catalog in (DatasetCatalog, MetadataCatalog, D2DatasetCatalog, D2MetadataCatalog):
            catalog.remove(name)


def _outputs(preds, num_classes):
    """Outputs with both detectron2's `sem_seg` (scores whose argmax is the prediction) and segdet's key."""
    outs = []
    for pred in preds:
        scores = torch.nn.functional.one_hot(torch.from_numpy(pred), num_classes).permute(2, 0, 1).float()
        outs.append({"sem_seg": scores, "segmentation_image": torch.from_numpy(pred)})
    return outs


def _run(evaluator, inputs, outputs):
    evaluator.reset()
    for x, out in zip(inputs, outputs):
        evaluator.process([x], [out])
    return evaluator.evaluate()["sem_seg"]


def test_equal_to_detectron2s_evaluator_with_one_ignore_label(gray_dataset, tmp_path):
    rng = np.random.default_rng(0)
    names = ["road", "car", "tree", "void"]
    gts = [rng.integers(0, 4, (12, 17)) for _ in range(3)]
    preds = [rng.integers(0, 3, (12, 17)) for _ in range(3)]  # never the ignore class
    inputs = gray_dataset("one_ignore", names, [3], gts)
    assert D2MetadataCatalog.get("one_ignore").ignore_label == 3
    outputs = _outputs(preds, 4)
    theirs = _run(D2SemSegEvaluator("one_ignore", distributed=False), inputs, outputs)
    ours = _run(SegdetSemSegEvaluator("one_ignore", str(tmp_path / "eval")), inputs, outputs)
    shared = [k for k in theirs if k in ours]
    assert {"mIoU", "fwIoU", "mACC", "pACC", "IoU-road", "ACC-tree", "IoU-void"} <= set(shared)
    for key in shared:
        expected = -1.0 if math.isnan(theirs[key]) else theirs[key]  # segdet writes -1 where detectron2 writes NaN
        assert ours[key] == pytest.approx(expected, abs=1e-9), key
    assert ours["mean_iou"] == pytest.approx(theirs["mIoU"] / 100)
    assert all(isinstance(v, float) for v in ours.values())  # what detectron2's EvalHook takes
    with open(tmp_path / "eval" / "sem_seg_measures.json") as f:
        stored = json.load(f)
    assert np.asarray(stored["pixel_confusion_matrix"]).sum() == sum(int((g != 3).sum()) for g in gts)
    assert os.path.isfile(tmp_path / "eval" / "sem_seg_confusion.png")


def test_several_ignore_classes_by_hand(gray_dataset):
    gt = np.array([[0, 0, 1, 2], [1, 3, 0, 1]])
    pred = np.array([[0, 1, 1, 0], [1, 0, 0, 0]])
    inputs = gray_dataset("two_ignore", ["a", "b", "void1", "void2"], [2, 3], [gt])
    # Evaluated pixels (gt not 2 or 3): 6, of which 4 right; class a: 3 gt, 3 predicted, 2 right.
    ours = _run(SegdetSemSegEvaluator("two_ignore"), inputs, _outputs([pred], 4))
    assert ours["pixel_accuracy"] == pytest.approx(4 / 6)
    assert ours["mean_iou"] == pytest.approx(0.5) and ours["IoU-a"] == pytest.approx(50.0)
    assert ours["mean_accuracy"] == pytest.approx(2 / 3)
    assert ours["IoU-void1"] == -1.0 and ours["IoU-void2"] == -1.0


def test_an_output_with_scores_only_is_segmented_without_the_ignore_classes(gray_dataset):
    gt = np.array([[0, 1], [1, 2]])
    inputs = gray_dataset("scores_only", ["a", "b", "void"], [2], [gt])
    scores = torch.tensor([[[0.3, 0.1], [0.4, 0.0]], [[0.2, 0.5], [0.3, 0.0]], [[0.5, 0.4], [0.5, 1.0]]])
    # Without the ignore channel the prediction is [[a, b], [b, a]]: 2 of the 3 evaluated pixels right.
    ours = _run(SegdetSemSegEvaluator("scores_only"), inputs, [{"sem_seg": scores}])
    assert ours["pixel_accuracy"] == pytest.approx(2 / 3)


def test_panoptic_evaluator_takes_detectron2s_convention(tiny_cfg_factory):
    tiny_cfg_factory()
    metadata = Metadata.from_dict(D2MetadataCatalog.get("tiny_val").segdet_metadata)
    things = ThingIds(metadata.thing_class_ids)
    evaluator = SegdetPanopticEvaluator("tiny_val")
    evaluator.reset()
    for d, segdet_dict in zip(D2DatasetCatalog.get("tiny_val"), DatasetCatalog.get("tiny_val")):
        sem = np.asarray(Image.open(d["sem_seg_file_name"]))
        seg, segments = panoptic_ground_truth(sem, segdet_dict["annotations"], metadata.thing_class_ids,
                                              metadata.ignore_class_ids)
        info = [{"id": i, "isthing": s["category_id"] in metadata.thing_class_ids,
                 "category_id": things.index(s["category_id"]) if s["category_id"] in metadata.thing_class_ids
                 else s["category_id"]} for i, s in segments.items()]
        evaluator.process([d], [{"panoptic_seg": (torch.from_numpy(seg), info)}])
    results = evaluator.evaluate()["panoptic_seg"]
    assert results["PQ"] == pytest.approx(100.0) and results["PQ_th"] == pytest.approx(100.0)
