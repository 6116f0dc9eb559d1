"""Instances in pictures: outlines in a shade of the class color, labels at the top of the box,
and the masks of dataset-dict annotations."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from segdet.errors import DataError
from segdet.structures.boxes import BoxMode, to_xyxy
from segdet.structures.cropped_masks import CroppedMasks
from segdet.structures.masks import mask_boxes, segmentation_to_mask
from segdet.structures.metadata import Metadata
from segdet.utils.arrays import to_numpy
from segdet.visualization.primitives import (
    NOT_A_CLASS_COLOR,
    check_image,
    Color,
    line_thickness,
    luma,
    outline_color,
    put_text,
    text_scale,
    text_size,
)


def _mask_outline(image: np.ndarray, masks: CroppedMasks, k: int, color: Color, thickness: int) -> None:
    """Draw the contours of mask k (outer and hole boundaries) in place, from its crop: cheap for
    small instances on big images, and no full-image mask."""
    crop = masks.crop(k)
    if not crop.size:
        return
    top, left = masks.region(k)[:2]
    contours, _ = cv2.findContours(np.ascontiguousarray(crop, dtype=np.uint8), cv2.RETR_LIST,
                                   cv2.CHAIN_APPROX_NONE, offset=(left, top))
    cv2.drawContours(image, contours, -1, color, thickness, cv2.LINE_8)


def _box_label(image: np.ndarray, text: str, box: Sequence[float], color: Sequence[int]) -> None:
    """A label at the top of a box, above it where there is room, else just inside it: white
    text on a dark shade of the class color, readable on any image."""
    h, w = image.shape[:2]
    scale = text_scale(h, w) * 0.85
    tw, th, baseline = text_size(text, scale)
    x = int(np.clip(math.floor(box[0]), 0, max(0, w - tw)))
    y_top = int(math.floor(box[1]))
    y = y_top - baseline if y_top - baseline - th >= 0 else min(h - baseline, y_top + th)
    cv2.rectangle(image, (x, y - th), (x + tw - 1, y + baseline - 1), _dark_shade(color), -1)
    put_text(image, text, (x, y), scale)


def _dark_shade(color: Sequence[int]) -> Color:
    """The class color darkened until white text reads on it."""
    c = np.asarray(color, dtype=np.float64)
    while luma(c) > 90:
        c = c * 0.8
    return tuple(int(round(v)) for v in c)


def draw_instances(
    image: np.ndarray,
    masks: Any,
    class_ids: Sequence[int],
    metadata: Metadata,
    boxes: Optional[Any] = None,
    labels: Optional[Sequence[str]] = None,
) -> np.ndarray:
    """Outline instance masks in a shade of their class color and label them at the top of their box.

    Args:
        image: HxWx3 RGB uint8 (not modified).
        masks: NxHxW masks (bool or 0/1), or a CroppedMasks of the image's size.
        class_ids: N class ids.
        metadata: class names and colors.
        boxes: Nx4 XYXY boxes (label positions); None = the masks' bounding boxes.
        labels: N texts; None = the class names.
    Returns:
        A copy of the image with the outlines and labels.
    """
    out = check_image(image).copy()
    class_ids = [int(c) for c in to_numpy(class_ids).reshape(-1)]
    if not isinstance(masks, CroppedMasks):
        masks = to_numpy(masks)
        if masks.size == 0 or not class_ids:
            return out
        if masks.ndim != 3 or masks.shape[1:] != out.shape[:2]:
            raise DataError(f"instance masks have shape {masks.shape}; expected Nx{out.shape[0]}x{out.shape[1]}")
        masks = CroppedMasks.from_masks(masks)
    if not len(masks) or not class_ids:
        return out
    if masks.image_size != out.shape[:2]:
        raise DataError(f"instance masks are of a {masks.image_size[0]}x{masks.image_size[1]} image; the picture is "
                        f"{out.shape[0]}x{out.shape[1]}")
    boxes_np = to_numpy(boxes).reshape(-1, 4) if boxes is not None else masks.boxes()
    thickness = line_thickness(*out.shape[:2])
    placed = []
    for i, c in enumerate(class_ids):
        known = 0 <= c < metadata.num_classes
        color = metadata.class_colors[c] if known else NOT_A_CLASS_COLOR
        _mask_outline(out, masks, i, outline_color(color), thickness)
        box = boxes_np[i]
        if not masks.crop(i).size and boxes is None:
            continue
        name = metadata.class_names[c] if known else f"class {c}?"
        placed.append((labels[i] if labels is not None else name, box, color))
    # Labels last, so that no outline crosses a label.
    for text, box, color in placed:
        _box_label(out, text, box, color)
    return out



def annotation_masks(annotations: Sequence[dict], height: int, width: int,
                     where: str = "image") -> tuple[np.ndarray, list[int], np.ndarray, list[bool]]:
    """Decode dataset-dict annotations (polygons or COCO RLE) into masks.

    Args:
        annotations: dataset-dict annotations (`segmentation`, `category_id`, `bbox`, `bbox_mode`, `iscrowd`).
        height, width: the image size.
        where: names the image in error messages.
    Returns:
        (masks NxHxW bool, class ids, boxes Nx4 XYXY, crowd flags). An annotation without a
        `segmentation` gets an empty mask (its box is still drawn by `draw_ground_truth`).
    Raises:
        DataError: a malformed segmentation, naming the image and the annotation.
    """
    masks = np.zeros((len(annotations), height, width), dtype=bool)
    classes, boxes, crowd = [], np.zeros((len(annotations), 4)), []
    for k, ann in enumerate(annotations):
        what = f"{where}: annotation {k}"
        if "category_id" not in ann:
            raise DataError(f"{what} has no 'category_id'")
        classes.append(int(ann["category_id"]))
        crowd.append(bool(ann.get("iscrowd", 0)))
        segm = ann.get("segmentation")
        if segm is not None and not (isinstance(segm, list) and not segm):
            masks[k] = segmentation_to_mask(segm, height, width, what)
        if "bbox" in ann:
            try:
                boxes[k] = to_xyxy(ann["bbox"], ann.get("bbox_mode", BoxMode.XYWH_ABS))
            except (ValueError, TypeError) as e:
                raise DataError(f"{what}: bad 'bbox' {ann['bbox']!r}: {e}") from None
        else:
            boxes[k] = mask_boxes(masks[k:k + 1])[0]
    return masks, classes, boxes, crowd

