"""SemSegEvaluator: ground truth from label files, predictions from output dicts."""
import json
import os

import numpy as np
import pytest
import torch

from segdet.config import get_cfg
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.data.resolve import resolve_metadata
from segdet.errors import ConfigError, DataError
from segdet.evaluation.sem_seg_evaluation import CONFUSION_FILE, PER_IMAGE_FILE, SemSegEvaluator
from tests.evaluation.test_sem_seg_measures import HALCON_GT, HALCON_PRED, NAMES


def write_gt(tmp_path, name, ids, metadata):
    path = str(tmp_path / f"{name}.png")
    LabelCodec(metadata).write(path, ids)
    return path


def test_process_and_evaluate_halcon_case_with_both_key_sets(tmp_path):
    meta = Metadata(NAMES, ignore_class_ids=[4])
    gt_file = write_gt(tmp_path, "a", HALCON_GT, meta)
    ev = SemSegEvaluator(meta)
    ev.reset()
    ev.process([{"sem_seg_file_name": gt_file, "file_name": "a.jpg", "image_id": "a"}],
               [{"segmentation_image": torch.as_tensor(HALCON_PRED, dtype=torch.int64)}])
    res = ev.evaluate()["sem_seg"]
    assert res["pixel_accuracy"] == pytest.approx(21 / 24)
    assert res["class_iou"] == pytest.approx([16 / 19, 3 / 4, 2 / 3, -1, -1])
    assert res["mIoU"] == pytest.approx(100 * (16 / 19 + 3 / 4 + 2 / 3) / 3)
    assert res["IoU-border"] == -1
    assert res["pixel_confusion_matrix"][0] == [16, 0, 0, 1, 0]
    assert "boundary_iou" not in res


def test_several_images_accumulate_and_per_image_ranking_is_worst_first(tmp_path):
    meta = Metadata(["bg", "fg"])
    gts = {"good": np.zeros((4, 4), np.uint8), "bad": np.zeros((4, 4), np.uint8), "mid": np.zeros((4, 4), np.uint8)}
    for g in gts.values():
        g[1:3, 1:3] = 1
    preds = {"good": gts["good"].copy(), "bad": np.zeros((4, 4), np.int64), "mid": gts["mid"].copy()}
    preds["mid"][1, 1] = 0
    out_dir = str(tmp_path / "out")
    ev = SemSegEvaluator(meta, out_dir, per_image=True)
    for name in ["good", "bad", "mid"]:
        gt_file = write_gt(tmp_path, name, gts[name], meta)
        ev.process([{"sem_seg_file_name": gt_file, "file_name": f"{name}.png", "image_id": name}],
                   [{"segmentation_image": preds[name]}])
    res = ev.evaluate()["sem_seg"]
    # Over the 48 pixels: bg 36 all right; fg 12, of which 4 (good) + 3 (mid) right.
    assert res["pixel_accuracy"] == pytest.approx(43 / 48)
    assert res["class_iou"] == pytest.approx([36 / 41, 7 / 12])

    ranked = ev.per_image_results
    assert [r["image_id"] for r in ranked] == ["bad", "mid", "good"]
    # bad: all background -> bg IoU 12/16, fg IoU 0; mid: bg 12/13, fg 3/4.
    assert ranked[0]["mean_iou"] == pytest.approx((12 / 16 + 0) / 2)
    assert ranked[0]["pixel_accuracy"] == pytest.approx(12 / 16)
    assert ranked[1]["mean_iou"] == pytest.approx((12 / 13 + 3 / 4) / 2)
    assert ranked[2]["mean_iou"] == 1.0
    with open(os.path.join(out_dir, PER_IMAGE_FILE)) as f:
        saved = json.load(f)
    assert [r["image_id"] for r in saved] == ["bad", "mid", "good"]
    assert saved[0]["file_name"] == "bad.png"
    assert os.path.getsize(os.path.join(out_dir, CONFUSION_FILE)) > 0

    ev.reset()
    assert ev.confusion.sum() == 0


def test_boundary_iou_reported_when_asked(tmp_path):
    meta = Metadata(["bg", "fg"])
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 1
    pred = np.zeros_like(gt)
    pred[2:6, 3:7] = 1
    ev = SemSegEvaluator(meta, boundary_width=1)
    ev.process([{"sem_seg_file_name": write_gt(tmp_path, "b", gt, meta)}], [{"segmentation_image": pred}])
    res = ev.evaluate()["sem_seg"]
    assert res["class_boundary_iou"] == pytest.approx([1 / 3, 1 / 3])  # see the measures test
    assert res["boundary_iou"] == pytest.approx(1 / 3)
    assert res["BoundaryIoU"] == pytest.approx(100 / 3)
    assert res["BoundaryIoU-fg"] == pytest.approx(100 / 3)


def test_predicted_ignore_class_and_bad_outputs_are_errors(tmp_path):
    meta = Metadata(NAMES, ignore_class_ids=[4])
    gt_file = write_gt(tmp_path, "a", HALCON_GT, meta)
    ev = SemSegEvaluator(meta)
    inp = [{"sem_seg_file_name": gt_file, "file_name": "img_a.jpg"}]
    with pytest.raises(DataError, match=r"img_a.jpg.*ignore class id\(s\) \[4\]"):
        ev.process(inp, [{"segmentation_image": np.full((6, 6), 4)}])
    with pytest.raises(DataError, match=r"img_a.jpg.*\[9\]"):
        ev.process(inp, [{"segmentation_image": np.full((6, 6), 9)}])
    with pytest.raises(DataError, match=r"img_a.jpg.*size \(5, 6\).*original image size"):
        ev.process(inp, [{"segmentation_image": np.zeros((5, 6), np.int64)}])
    with pytest.raises(DataError, match="integer class ids"):
        ev.process(inp, [{"segmentation_image": np.zeros((6, 6), np.float32)}])
    with pytest.raises(ConfigError, match="boundary IoU width"):
        SemSegEvaluator(meta, boundary_width=-1)


def test_from_config_uses_metadata_ignore_ids_unless_config_sets_them(tmp_path):
    meta = Metadata(NAMES, ignore_class_ids=[4], label_format="blue")
    register_dataset("eval_test_fruit", lambda: [], meta)
    try:
        cfg = get_cfg()
        cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 5
        cfg.MODEL.MASK_ON = False
        cfg.TEST.PER_IMAGE_METRICS = True
        ev = SemSegEvaluator.from_config(cfg, resolve_metadata(cfg, ["eval_test_fruit"]), str(tmp_path))
        assert ev.ignore_class_ids == [4] and ev.per_image and ev.labels.codec.label_format == "blue"
        cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = [3, 4]
        assert SemSegEvaluator.from_config(cfg, resolve_metadata(cfg, ["eval_test_fruit"])).ignore_class_ids == [3, 4]
        cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = []
        assert SemSegEvaluator.from_config(cfg, resolve_metadata(cfg, ["eval_test_fruit"])).ignore_class_ids == []
        cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 6
        with pytest.raises(ConfigError, match="NUM_CLASSES"):
            resolve_metadata(cfg, ["eval_test_fruit"])
    finally:
        DatasetCatalog.remove("eval_test_fruit")
        MetadataCatalog.remove("eval_test_fruit")
