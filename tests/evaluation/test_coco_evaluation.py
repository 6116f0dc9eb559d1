"""COCOEvaluator against pycocotools' COCOeval called directly on hand-built dicts."""
import contextlib
import copy
import io
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segdet.structures.boxes import BoxMode
from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.evaluation.coco_evaluation import COCOEvaluator
from segdet.structures.instances import Instances

# pycocotools' decode trips numpy 2's copy-keyword deprecation (harmless).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 100, 120
# 0 background (stuff), 1 car and 2 person (things), 3 void (ignore)
META = Metadata(["background", "car", "person", "void"], thing_class_ids=[1, 2], ignore_class_ids=[3])
# Ground truth boxes XYXY per image: (class id, box)
GT = {
    "im1": [(1, (5, 5, 20, 20)), (2, (30, 10, 75, 60))],  # the person is "medium" (45x50)
    "im2": [(2, (60, 60, 70, 90)), (1, (10, 40, 40, 60))],
}


def rect_polygon(box):
    x0, y0, x1, y1 = box
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def rect_mask(box):
    x0, y0, x1, y1 = box
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def dataset_dicts(rle_for_second=True):
    dicts = []
    for k, (image_id, objects) in enumerate(GT.items()):
        anns = []
        for j, (cls, box) in enumerate(objects):
            x0, y0, x1, y1 = box
            if rle_for_second and k == 1 and j == 1:
                rle = mask_util.encode(np.asfortranarray(rect_mask(box).astype(np.uint8)))
                seg = {"size": rle["size"], "counts": rle["counts"].decode()}
            else:
                seg = rect_polygon(box)
            anns.append({"bbox": [x0, y0, x1 - x0, y1 - y0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": cls,
                         "segmentation": seg, "iscrowd": 0})
        dicts.append({"file_name": f"/data/{image_id}.jpg", "image_id": image_id, "height": H, "width": W,
                      "annotations": anns})
    return dicts


def gt_masks_of(dicts):
    """Each annotation's mask as pycocotools draws it (polygon or RLE)."""
    out = {}
    for d in dicts:
        masks = []
        for a in d["annotations"]:
            seg = a["segmentation"]
            rle = mask_util.merge(mask_util.frPyObjects(seg, H, W)) if isinstance(seg, list) else seg
            masks.append(mask_util.decode(rle).astype(bool))
        out[d["image_id"]] = masks
    return out


def instances(boxes, scores, classes, masks):
    return Instances((H, W), pred_boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                     scores=torch.tensor(scores, dtype=torch.float32),
                     pred_classes=torch.tensor(classes, dtype=torch.int64),
                     pred_masks=torch.as_tensor(np.array(masks, dtype=bool).reshape(-1, H, W)))


def run(evaluator, predictions, dicts):
    """The evaluator on the predictions of some images; the inputs are their dataset dicts (as the
    mapper's outputs carry every key of them)."""
    by_id = {d["image_id"]: d for d in dicts}
    evaluator.reset()
    for image_id, inst in predictions.items():
        evaluator.process([by_id[image_id]], [{"instances": inst}])
    return evaluator.evaluate()


def test_perfect_predictions_give_ap_100_for_boxes_and_masks():
    dicts = dataset_dicts()
    masks = gt_masks_of(dicts)
    preds = {}
    for d in dicts:
        objs = GT[d["image_id"]]
        preds[d["image_id"]] = instances([b for _, b in objs], [0.9] * len(objs), [c for c, _ in objs],
                                         masks[d["image_id"]])
    res = run(COCOEvaluator(META), preds, dicts)
    for task in ("bbox", "segm"):
        assert res[task]["AP"] == pytest.approx(100.0)
        assert res[task]["AP50"] == pytest.approx(100.0)
        assert res[task]["AP75"] == pytest.approx(100.0)
        assert res[task]["AP-car"] == pytest.approx(100.0)
        assert res[task]["AP-person"] == pytest.approx(100.0)
        assert res[task]["APl"] == -1  # no large object: pycocotools cannot define it


def imperfect_predictions():
    p1 = [(1, (7, 7, 22, 22), 0.9), (1, (90, 70, 110, 95), 0.95), (2, (30, 10, 75, 60), 0.5)]
    p2 = [(1, (12, 42, 40, 62), 0.7), (2, (0, 0, 10, 10), 0.3)]  # person (60, 60, 70, 90) missed
    return {"im1": p1, "im2": p2}


def coco_eval_directly(iou_type, dicts, predictions, cat_ids=None):
    """The expected value: COCOeval on a ground truth and results written out by hand."""
    images, anns = [], []
    masks = gt_masks_of(dicts)
    for i, d in enumerate(dicts, start=1):
        images.append({"id": i, "height": H, "width": W, "file_name": d["file_name"]})
        for (cls, (x0, y0, x1, y1)), mask, a in zip(GT[d["image_id"]], masks[d["image_id"]], d["annotations"]):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cls, "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(mask.sum()),
                         "segmentation": a["segmentation"]})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
    results = []
    for i, d in enumerate(dicts, start=1):
        for cls, (x0, y0, x1, y1), score in predictions[d["image_id"]]:
            r = {"image_id": i, "category_id": cls, "score": score}
            if iou_type == "bbox":
                r["bbox"] = [x0, y0, x1 - x0, y1 - y0]
            else:
                r["segmentation"] = mask_util.encode(np.asfortranarray(rect_mask((x0, y0, x1, y1)).astype(np.uint8)))
            results.append(r)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        if cat_ids:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_imperfect_case_equals_cocoeval_called_directly(iou_type, tmp_path):
    dicts = dataset_dicts()
    preds = {k: instances([b for _, b, _ in v], [s for _, _, s in v], [c for c, _, _ in v],
                          [rect_mask(b) for _, b, _ in v]) for k, v in imperfect_predictions().items()}
    res = run(COCOEvaluator(META, str(tmp_path)), preds, dicts)[iou_type]
    stats = coco_eval_directly(iou_type, dicts, imperfect_predictions())
    for k, key in enumerate(["AP", "AP50", "AP75", "APs", "APm", "APl"]):
        expected = stats[k] * 100 if stats[k] >= 0 else -1
        assert res[key] == pytest.approx(expected, abs=1e-9), key
    assert 0 < res["AP"] < 100
    for cls, name in [(1, "car"), (2, "person")]:
        per_cat = coco_eval_directly(iou_type, dicts, imperfect_predictions(), cat_ids=[cls])[0]
        assert res[f"AP-{name}"] == pytest.approx(per_cat * 100, abs=1e-9)
    saved = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert len(saved) == 5 and {r["image_id"] for r in saved} == {1, 2}
    assert isinstance(saved[0]["segmentation"]["counts"], str)


def test_empty_predictions_give_zero_without_crashing():
    dicts = dataset_dicts()
    empty = instances([], [], [], np.zeros((0, H, W), dtype=bool))
    res = run(COCOEvaluator(META), {"im1": empty, "im2": empty}, dicts)
    for task in ("bbox", "segm"):
        assert res[task]["AP"] == 0.0 and res[task]["AP50"] == 0.0 and res[task]["AP-car"] == 0.0


def test_json_ground_truth_with_other_ids_gives_the_same_values(tmp_path):
    dicts = dataset_dicts(rle_for_second=False)
    # A COCO json whose image and category ids differ from ours: matched by file name
    # and by category name.
    cat_ids = {1: 17, 2: 5}
    coco = {"images": [], "annotations": [],
            "categories": [{"id": 17, "name": "car"}, {"id": 5, "name": "person"}]}
    for i, d in enumerate(dicts):
        image_id = 100 + i
        coco["images"].append({"id": image_id, "file_name": f"{d['image_id']}.jpg", "height": H, "width": W})
        for a in d["annotations"]:
            mask = mask_util.merge(mask_util.frPyObjects(a["segmentation"], H, W))
            coco["annotations"].append(dict(copy.deepcopy(a), id=len(coco["annotations"]) + 1, image_id=image_id,
                                            category_id=cat_ids[a["category_id"]],
                                            area=float(mask_util.area(mask))))
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps(coco))
    meta = Metadata(META.class_names, thing_class_ids=[1, 2], ignore_class_ids=[3], json_file=str(json_file))
    preds = {k: instances([b for _, b, _ in v], [s for _, _, s in v], [c for c, _, _ in v],
                          [rect_mask(b) for _, b, _ in v]) for k, v in imperfect_predictions().items()}
    from_json = run(COCOEvaluator(meta), preds, dicts)
    in_memory = run(COCOEvaluator(META), preds, dicts)
    for task in ("bbox", "segm"):
        for key, value in in_memory[task].items():
            assert from_json[task][key] == pytest.approx(value, abs=1e-9), (task, key)


def test_prediction_of_a_non_thing_class_is_an_error():
    ev = COCOEvaluator(META)
    with pytest.raises(DataError, match=r"classes \[0\] are not thing class ids"):
        ev.process([{"image_id": "im1", "file_name": "/data/im1.jpg"}],
                   [{"instances": instances([(0, 0, 5, 5)], [0.5], [0], np.zeros((1, H, W), bool))}])
