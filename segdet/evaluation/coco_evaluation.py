"""COCO instance evaluation (boxes and masks) with pycocotools' COCOeval."""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
from typing import Optional

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segdet.errors import DataError
from segdet.evaluation.evaluator import DatasetEvaluator
from segdet.utils.files import write_json
from segdet.structures.boxes import BoxMode, convert_boxes
from segdet.structures.coco import instances_to_coco_results
from segdet.structures.cropped_masks import has_instance_masks
from segdet.structures.masks import annotation_area, segmentation_to_rle, valid_polygons
from segdet.structures.metadata import Metadata
from segdet.utils import comm

logger = logging.getLogger(__name__)

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
RESULTS_FILE = "coco_instances_results.json"


@contextlib.contextmanager
def _pycocotools_to_log(level: int = logging.DEBUG):
    """pycocotools prints to stdout; send that text to the log instead."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        text = buffer.getvalue().strip()
        if text:
            logger.log(level, "pycocotools:\n%s", text)


def _annotation_to_coco(ann: dict, height: int, width: int, where: str) -> dict:
    """One dataset-dict annotation as a COCO annotation (without ids)."""
    try:
        x0, y0, w, h = convert_boxes(np.asarray(ann["bbox"]).reshape(4), ann.get("bbox_mode", 0), BoxMode.XYWH_ABS)
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{where}: annotation without a valid bbox/bbox_mode ({e})") from None
    coco_ann = {"bbox": [x0, y0, w, h], "iscrowd": int(ann.get("iscrowd", 0))}
    seg = ann.get("segmentation")
    if seg is None or (isinstance(seg, list) and not seg):
        coco_ann["area"] = float(w * h)
        return coco_ann
    rle = segmentation_to_rle(seg, height, width, where)
    # Polygons stay polygons (as in a COCO json); RLE is stored compressed.
    coco_ann["segmentation"] = valid_polygons(seg) if isinstance(seg, list) else rle
    coco_ann["area"] = annotation_area(rle)
    return coco_ann


def convert_to_coco_dict(dataset_dicts: list[dict], metadata: Metadata) -> tuple[dict, dict[str, int]]:
    """COCO ground truth (a json-like dict) from dataset dicts.

    Categories are the thing classes, with category id = class id. Image ids are
    1..K in the order of the dicts; area is the mask area (from pycocotools) or,
    without a mask, the box area.

    Returns:
        (coco dict, {dataset image_id: COCO image id}).
    """
    images, annotations, id_map = [], [], {}
    things = set(metadata.thing_class_ids)
    for d in dataset_dicts:
        image_key = str(d.get("image_id", d["file_name"]))
        if image_key in id_map:
            continue
        coco_id = len(id_map) + 1
        id_map[image_key] = coco_id
        height, width = int(d["height"]), int(d["width"])
        images.append({"id": coco_id, "file_name": d["file_name"], "height": height, "width": width})
        for ann in d.get("annotations", []):
            where = f"image {d['file_name']}"
            category = int(ann.get("category_id", -1))
            if category not in things:
                raise DataError(f"{where}: annotation category_id {category} is not a thing class "
                                f"(thing class ids: {sorted(things)})")
            coco_ann = _annotation_to_coco(ann, height, width, where)
            # COCOeval uses annotation id 0 for "unmatched": ids start at 1.
            coco_ann.update(id=len(annotations) + 1, image_id=coco_id, category_id=category)
            annotations.append(coco_ann)
    categories = [{"id": c, "name": metadata.class_names[c]} for c in metadata.thing_class_ids]
    coco = {"info": {"description": f"segdet ground truth of '{metadata.name}'"}, "images": images,
            "annotations": annotations, "categories": categories}
    return coco, id_map


def coco_from_dict(coco_dict: dict) -> COCO:
    """A pycocotools COCO object built from an in-memory dict."""
    coco = COCO()
    coco.dataset = coco_dict
    with _pycocotools_to_log():
        coco.createIndex()
    return coco


def _all_have_masks(coco: COCO) -> bool:
    return all(a.get("segmentation") for a in coco.dataset.get("annotations", []))


def _zero_results(category_names: list[str]) -> dict:
    results = {m: 0.0 for m in METRICS}
    results.update({f"AP-{name}": 0.0 for name in category_names})
    return results


def evaluate_coco_task(coco_gt: COCO, coco_results: list[dict], iou_type: str, image_ids: list[int],
                       category_names: dict[int, str]) -> dict:
    """COCOeval of one task ("bbox" or "segm"); percentages as detectron2 reports them.

    Returns AP, AP50, AP75, APs, APm, APl and AP-<class name>. Without any prediction
    every value is 0. A value pycocotools cannot define (no ground truth of that size
    or category) is -1.
    """
    names = [category_names[c] for c in sorted(category_names)]
    if not coco_results:
        logger.warning("no %s predictions: %s AP is 0", iou_type, iou_type)
        return _zero_results(names)
    results = copy.deepcopy(coco_results)  # loadRes writes ids and areas into the dicts
    if iou_type == "segm":
        # Without a box, loadRes takes the area from the mask (used for APs/APm/APl).
        for r in results:
            r.pop("bbox", None)
    with _pycocotools_to_log():
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.params.imgIds = list(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    with _pycocotools_to_log(logging.INFO):
        coco_eval.summarize()
    out = {m: float(v * 100) if v >= 0 else -1.0 for m, v in zip(METRICS, coco_eval.stats[: len(METRICS)])}
    # precision: [IoU thresholds, recall points, categories, area ranges, max detections]
    precision = coco_eval.eval["precision"]
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out[f"AP-{category_names[cat_id]}"] = float(p.mean() * 100) if p.size else -1.0
    return out


class COCOEvaluator(DatasetEvaluator):
    """COCO AP of predicted instances, for boxes (`bbox`) and masks (`segm`).

    Ground truth is the dataset's COCO json (`metadata.json_file`) when it has one;
    otherwise the `annotations` of the input dicts (the mapper keeps the dataset dict's
    keys), converted in memory. Only the images that were processed are evaluated.
    """

    def __init__(self, metadata: Metadata, output_dir: Optional[str] = None):
        """
        Args:
            metadata: the dataset's classes (thing classes are the COCO categories) and json file.
            output_dir: where the main process writes `coco_instances_results.json`; None = nowhere.
        """
        self.metadata = metadata
        self.dataset_name = metadata.name
        self.output_dir = output_dir
        if not self.metadata.thing_class_ids:
            raise DataError(f"dataset '{self.dataset_name}' has no thing classes: nothing for COCO evaluation")
        self.reset()

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def _uses_json(self) -> bool:
        return bool(self.metadata.json_file) and os.path.isfile(self.metadata.json_file)

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        things = set(self.metadata.thing_class_ids)
        for inp, out in zip(inputs, outputs):
            image_id = str(inp.get("image_id", inp.get("file_name")))
            name = inp.get("file_name", image_id)
            if "instances" not in out:
                raise DataError(f"image {name}: the model output has no 'instances' (is MODEL.MASK_ON off?)")
            results = instances_to_coco_results(out["instances"], image_id)
            bad = sorted({r["category_id"] for r in results} - things)
            if bad:
                raise DataError(f"image {name}: predicted instance classes {bad} are not thing class ids "
                                f"{sorted(things)}")
            prediction = {
                "image_id": image_id,
                "file_name": inp.get("file_name", ""),
                "coco_image_id": inp.get("coco_image_id"),
                "has_masks": has_instance_masks(out["instances"]),
                "results": results,
            }
            if not self._uses_json():
                if "height" not in inp or "width" not in inp:
                    raise DataError(f"image {name}: the input dict has no 'height' and 'width' for the ground truth")
                prediction["ground_truth"] = {key: inp.get(key) for key in ("file_name", "height", "width")}
                prediction["ground_truth"].update(image_id=image_id, annotations=inp.get("annotations") or [])
            self._predictions.append(prediction)

    def _ground_truth(self, predictions: list[dict]) -> tuple[COCO, dict[str, int], dict[int, int], bool]:
        """(COCO gt, dataset image_id -> COCO image id, class id -> COCO category id, gt has masks)."""
        if self._uses_json():
            json_file = self.metadata.json_file
            with _pycocotools_to_log():
                coco_gt = COCO(json_file)
            return (coco_gt, self._json_image_ids(coco_gt, predictions, json_file),
                    self._json_category_ids(coco_gt, json_file), _all_have_masks(coco_gt))
        coco_dict, id_map = convert_to_coco_dict([p["ground_truth"] for p in predictions], self.metadata)
        coco_gt = coco_from_dict(coco_dict)
        return coco_gt, id_map, {c: c for c in self.metadata.thing_class_ids}, _all_have_masks(coco_gt)

    def _json_category_ids(self, coco_gt: COCO, json_file: str) -> dict[int, int]:
        by_name = {c["name"]: c["id"] for c in coco_gt.dataset.get("categories", [])}
        names = self.metadata.class_names
        things = self.metadata.thing_class_ids
        if all(names[c] in by_name for c in things):
            return {c: by_name[names[c]] for c in things}
        if all(c in by_name.values() for c in things):
            return {c: c for c in things}
        raise DataError(f"COCO json {json_file}: its categories {sorted(by_name)} do not match the thing "
                        f"classes {[names[c] for c in things]} (by name or by id)")

    def _json_image_ids(self, coco_gt: COCO, predictions: list[dict], json_file: str) -> dict[str, int]:
        by_file = {os.path.basename(img["file_name"]): img["id"] for img in coco_gt.dataset.get("images", [])}
        id_map, unknown = {}, []
        for p in predictions:
            coco_id = p["coco_image_id"]
            if coco_id is None:
                coco_id = by_file.get(os.path.basename(p["file_name"]))
            if coco_id is None or coco_id not in coco_gt.imgs:
                unknown.append(p["file_name"] or p["image_id"])
            else:
                id_map[p["image_id"]] = int(coco_id)
        if unknown:
            raise DataError(f"COCO json {json_file} has no image for evaluated image(s) {unknown[:10]} "
                            "(matched by the dict's coco_image_id, else by file name)")
        return id_map

    def evaluate(self) -> dict:
        predictions = [p for part in comm.all_gather(self._predictions) for p in part]
        if not comm.is_main_process():
            return {}
        # An image seen twice (e.g. a padded distributed sampler) counts once.
        unique: dict[str, dict] = {}
        for p in predictions:
            unique.setdefault(p["image_id"], p)
        predictions = list(unique.values())
        if not predictions:
            logger.warning("COCO evaluation of '%s': no image was processed", self.dataset_name)
            return {}

        coco_gt, image_ids, category_ids, gt_masks = self._ground_truth(predictions)
        names = {category_ids[c]: self.metadata.class_names[c] for c in self.metadata.thing_class_ids}
        coco_results = []
        for p in predictions:
            for r in p["results"]:
                coco_results.append(dict(r, image_id=image_ids[p["image_id"]],
                                         category_id=category_ids[r["category_id"]]))
        if self.output_dir:
            path = write_json(coco_results, os.path.join(self.output_dir, RESULTS_FILE), indent=None)
            logger.info("COCO results written to %s", path)

        evaluated = sorted({image_ids[p["image_id"]] for p in predictions})
        tasks = ["bbox"]
        if all(p["has_masks"] for p in predictions):
            if gt_masks:
                tasks.append("segm")
            else:
                logger.warning("COCO evaluation of '%s': some ground-truth instances have no mask; "
                               "segm AP is not computed", self.dataset_name)
        return {task: evaluate_coco_task(coco_gt, coco_results, task, evaluated, names) for task in tasks}
