"""Whole pictures of one image: overlays of a segmentation, the ground truth, error maps."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from segdet.errors import DataError
from segdet.structures.cropped_masks import instance_mask_crops
from segdet.structures.instances import Instances
from segdet.structures.metadata import Metadata
from segdet.utils.arrays import to_numpy
from segdet.visualization.primitives import (
    NEUTRAL_STRIPES,
    WRONG_COLOR,
    blend,
    check_image,
    check_same_size,
    check_segmentation,
    colorize,
    enlarge,
    pattern_size,
    repeat_pixels,
)
from segdet.visualization.legend import draw_legend, present_legend_entries
from segdet.visualization.instances import annotation_masks, draw_instances


def draw_overlay(
    image: np.ndarray,
    segmentation_image: np.ndarray,
    metadata: Metadata,
    instances: Instances | None = None,
    alpha: float = 0.5,
    score_threshold: float = 0.5,
    draw_legend: bool = True,
) -> np.ndarray:
    """An image blended with its colored segmentation, with instance outlines and a legend.

    Args:
        image: HxWx3 RGB uint8 (or HxW gray).
        segmentation_image: HxW class ids (a model's `segmentation_image` or a decoded label file).
        metadata: classes, colors, ignore classes.
        instances: a model output's `Instances` (`pred_masks` NxHxW bool or `pred_mask_crops`,
            `pred_classes` class ids, `scores`, `pred_boxes` Nx4 XYXY); each instance with score >=
            `score_threshold` is outlined and labeled "<class> 0.93".
        alpha: weight of the class colors (0 = image only, 1 = colors only).
        score_threshold: instances below this score are not drawn.
        draw_legend: add a legend of the classes present (top-right corner).
    Returns:
        HxWx3 RGB uint8, the size of the image.
    """
    img = check_image(image)
    seg = check_segmentation(segmentation_image)
    check_same_size(img, seg)
    out = blend(img, colorize(seg, metadata), alpha)
    drawn_classes: list[int] = []
    masks = instance_mask_crops(instances) if instances else None
    if masks is not None and len(masks):
        classes = to_numpy(instances.get("pred_classes", np.zeros(0, dtype=np.int64))).reshape(-1)
        scores = to_numpy(instances.get("scores", np.ones(len(classes)))).reshape(-1).astype(np.float64)
        boxes = instances.get("pred_boxes")
        keep = np.flatnonzero(scores >= score_threshold)
        if keep.size:
            boxes_np = to_numpy(boxes).reshape(-1, 4)[keep] if boxes is not None else None
            kept_classes = [int(c) for c in classes[keep]]
            labels = []
            for c, s in zip(kept_classes, scores[keep]):
                name = metadata.class_names[c] if 0 <= c < metadata.num_classes else f"class {c}?"
                labels.append(f"{name} {s:.2f}")
            out = draw_instances(out, masks[keep], kept_classes, metadata, boxes_np, labels)
            drawn_classes = kept_classes
    if draw_legend:
        out = _legend(out, present_legend_entries(seg, metadata, drawn_classes))
    return out


# The parameter `draw_legend` of draw_overlay hides the function of that name inside it.
_legend = draw_legend


def draw_ground_truth(
    image: np.ndarray,
    segmentation_image: Optional[np.ndarray],
    metadata: Metadata,
    annotations: Optional[Sequence[dict]] = None,
    alpha: float = 0.5,
    draw_legend: bool = True,
    scale: int = 1,
) -> np.ndarray:
    """A dataset's ground truth on its image: classes colored, ignore classes hatched, instances outlined.

    Args:
        image: HxWx3 RGB uint8.
        segmentation_image: HxW class ids (the decoded label file); None = instances only.
        metadata: classes, colors, ignore classes.
        annotations: the dataset dict's annotations; each is outlined (from its polygons or
            RLE) and labeled with its class (", crowd" for crowd regions).
        alpha: weight of the class colors.
        draw_legend: add a legend of the classes present.
        scale: integer factor to enlarge the picture by (small images get legible labels).
    Returns:
        (scale*H)x(scale*W)x3 RGB uint8.
    """
    img = check_image(image)
    h, w = img.shape[:2]
    seg = None
    if segmentation_image is not None:
        seg = check_segmentation(segmentation_image, "ground-truth segmentation")
        check_same_size(img, seg, "ground-truth segmentation")
    masks, classes, boxes, crowd = annotation_masks(annotations or [], h, w)
    if scale > 1:
        img = enlarge(img, scale, smooth=True)
        seg = enlarge(seg, scale) if seg is not None else None
        masks = repeat_pixels(masks, scale, (1, 2))
        boxes = boxes * scale
    out = blend(img, colorize(seg, metadata), alpha) if seg is not None else img.copy()
    if classes:
        labels = []
        for c, is_crowd in zip(classes, crowd):
            name = metadata.class_names[c] if 0 <= c < metadata.num_classes else f"class {c}?"
            labels.append(name + (", crowd" if is_crowd else ""))
        out = draw_instances(out, masks, classes, metadata, boxes, labels)
    if draw_legend:
        out = _legend(out, present_legend_entries(seg, metadata, classes))
    return out



def error_map(
    gt: np.ndarray,
    pred: np.ndarray,
    ignore_class_ids: Iterable[int] = (),
    image: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Where a prediction is wrong: wrong pixels red, correct pixels a dimmed gray picture,
    pixels whose ground truth is an ignore class hatched in neutral grays.

    Args:
        gt: HxW ground-truth class ids.
        pred: HxW predicted class ids.
        ignore_class_ids: ground-truth classes that are not evaluated.
        image: HxWx3 RGB; its dimmed gray version shows under correct pixels (None = plain gray).
    Returns:
        HxWx3 RGB uint8.
    """
    gt = check_segmentation(gt, "ground truth")
    pred = check_segmentation(pred, "prediction")
    if gt.shape != pred.shape:
        raise DataError(f"prediction has size {pred.shape[1]}x{pred.shape[0]} (WxH) but the ground truth "
                        f"has size {gt.shape[1]}x{gt.shape[0]}")
    h, w = gt.shape
    if image is not None:
        img = check_image(image)
        check_same_size(img, gt, "ground truth")
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        # Dimmed into 40..160: clearly darker than the red, still showing the scene.
        dimmed = (gray.astype(np.uint16) * 120 // 255 + 40).astype(np.uint8)
        out = np.repeat(dimmed[:, :, None], 3, axis=2)
    else:
        out = np.full((h, w, 3), 110, dtype=np.uint8)
    ignore_ids = sorted(set(int(i) for i in ignore_class_ids))
    ignored = np.isin(gt, ignore_ids) if ignore_ids else np.zeros(gt.shape, dtype=bool)
    wrong = (gt != pred) & ~ignored
    out[wrong] = WRONG_COLOR
    rows, cols = np.nonzero(ignored)
    if rows.size:
        cell = pattern_size(h, w)
        stripe = ((rows + cols) // cell) % 2
        out[rows, cols] = np.asarray(NEUTRAL_STRIPES, dtype=np.uint8)[stripe]
    return out


def error_rate(gt: np.ndarray, pred: np.ndarray, ignore_class_ids: Iterable[int] = ()) -> float:
    """Share of the evaluated (not ignored) pixels that are wrong; 0 when none is evaluated."""
    gt, pred = to_numpy(gt), to_numpy(pred)
    ignore_ids = sorted(set(int(i) for i in ignore_class_ids))
    evaluated = ~np.isin(gt, ignore_ids) if ignore_ids else np.ones(gt.shape, dtype=bool)
    n = int(evaluated.sum())
    return float(((gt != pred) & evaluated).sum() / n) if n else 0.0


