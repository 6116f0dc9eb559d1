"""Predicted instances as COCO results (what COCOeval and a COCO results json take)."""
from __future__ import annotations

from typing import Any

import numpy as np

from segdet.errors import DataError
from segdet.structures.boxes import BoxMode, convert_boxes
from segdet.structures.cropped_masks import instance_mask_crops
from segdet.structures.instances import Instances


def instances_to_coco_results(instances: Instances, image_id: Any) -> list[dict]:
    """COCO result dicts of one image's predicted instances.

    Args:
        instances: `pred_boxes` Nx4 XYXY, `scores` N, `pred_classes` N (class ids), and optionally
            `pred_masks` NxHxW or `pred_mask_crops` (RLEs at image coordinates either way).
        image_id: stored as each result's `image_id`.
    Returns:
        [{image_id, category_id (the class id), bbox XYWH, score, segmentation (RLE, counts str)?}].
    """
    instances = instances.numpy()
    boxes = convert_boxes(instances.pred_boxes.reshape(-1, 4), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    scores = instances.scores.astype(np.float64).reshape(-1)
    classes = instances.pred_classes.astype(np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(classes):
        raise DataError(f"image {image_id}: predicted instances have {len(boxes)} boxes, {len(scores)} scores "
                        f"and {len(classes)} classes")
    crops = instance_mask_crops(instances) if len(boxes) else None
    rles = crops.rles() if crops is not None else None
    results = []
    for k in range(len(boxes)):
        result = {
            "image_id": image_id,
            "category_id": int(classes[k]),
            "bbox": [float(v) for v in boxes[k]],
            "score": float(scores[k]),
        }
        if rles is not None:
            result["segmentation"] = rles[k]
        results.append(result)
    return results
