"""Panels: titled pictures side by side, for a dataset's ground truth and for predictions."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from segdet.errors import DataError
from segdet.structures.metadata import Metadata
from segdet.visualization.primitives import (
    PANEL_BG,
    WRONG_COLOR,
    check_image,
    check_same_size,
    check_segmentation,
    display_scale,
    enlarge,
    put_text,
    text_size,
)
from segdet.visualization.legend import legend_image, present_legend_entries
from segdet.visualization.overlays import draw_ground_truth, draw_overlay, error_map, error_rate


def side_by_side(panels: Sequence[tuple[str, np.ndarray]], gap: int = 6) -> np.ndarray:
    """Titled panels in one row, all scaled to the height of the tallest.

    Args:
        panels: (title, HxWx3 RGB or HxW gray image) pairs.
        gap: dark pixels between panels.
    Returns:
        One RGB uint8 picture: a title bar above each panel.
    """
    if not panels:
        raise DataError("side_by_side needs at least one panel")
    images = [check_image(img, f"panel '{title}'") for title, img in panels]
    height = max(img.shape[0] for img in images)
    resized = []
    for img in images:
        h, w = img.shape[:2]
        if h != height:
            new_w = max(1, int(round(w * height / h)))
            interp = cv2.INTER_AREA if h > height else cv2.INTER_NEAREST
            img = cv2.resize(img, (new_w, height), interpolation=interp)
        resized.append(img)
    scale = float(np.clip(height / 600.0, 0.5, 1.6))
    _, text_h, baseline = text_size("Ag", scale)
    bar = text_h + baseline + 2 * max(4, text_h // 2)
    total_w = sum(img.shape[1] for img in resized) + gap * (len(resized) + 1)
    canvas = np.empty((bar + height + gap, total_w, 3), dtype=np.uint8)
    canvas[:] = PANEL_BG
    x = gap
    for (title, _), img in zip(panels, resized):
        w = img.shape[1]
        canvas[bar:bar + height, x:x + w] = img
        s = scale
        while s > 0.3 and text_size(title, s)[0] > w:
            s *= 0.9
        tw, th, _ = text_size(title, s)
        put_text(canvas, title, (x + max(0, (w - tw) // 2), (bar + th) // 2), s)
        x += w + gap
    return canvas


# ----------------------------------------------------------------------------- whole pictures

def ground_truth_panel(
    image: np.ndarray,
    segmentation_image: Optional[np.ndarray],
    metadata: Metadata,
    annotations: Optional[Sequence[dict]] = None,
    title: str = "image",
) -> np.ndarray:
    """image | ground truth (classes, ignore hatched, instance outlines) | legend; small images enlarged.

    Args:
        image: HxWx3 RGB.
        segmentation_image: HxW class ids, or None (instances only).
        metadata: classes, colors, ignore classes.
        annotations: the dataset dict's annotations, or None.
        title: title of the image panel (e.g. the image id).
    """
    img = check_image(image)
    scale = display_scale(*img.shape[:2])
    gt = draw_ground_truth(img, segmentation_image, metadata, annotations, draw_legend=False, scale=scale)
    seg = None if segmentation_image is None else check_segmentation(segmentation_image)
    entries = present_legend_entries(seg, metadata, [int(a["category_id"]) for a in annotations or []])
    n = len(annotations or [])
    gt_title = f"ground truth, {n} instance{'s' if n != 1 else ''}" if annotations is not None else "ground truth"
    return side_by_side([(title, enlarge(img, scale, smooth=True)), (gt_title, gt),
                         ("classes", legend_image(entries, gt.shape[0]))])


def prediction_panel(
    image: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    metadata: Metadata,
    title: str = "image",
) -> np.ndarray:
    """image | ground truth | prediction | error map | legend; small images enlarged.

    Args:
        image: HxWx3 RGB.
        gt, pred: HxW class ids (decoded label files).
        metadata: classes, colors, and the ignore classes left out of the error map.
        title: title of the image panel (e.g. the image id).
    """
    img = check_image(image)
    gt = check_segmentation(gt, "ground truth")
    pred = check_segmentation(pred, "prediction")
    check_same_size(img, gt, "ground truth")
    check_same_size(img, pred, "prediction")
    rate = error_rate(gt, pred, metadata.ignore_class_ids)
    errors = error_map(gt, pred, metadata.ignore_class_ids, img)
    entries = present_legend_entries(np.concatenate([gt.ravel(), pred.ravel()])[None, :], metadata)
    entries.append(("wrong", WRONG_COLOR, "solid"))
    scale = display_scale(*img.shape[:2])
    img, gt, pred = enlarge(img, scale, smooth=True), enlarge(gt, scale), enlarge(pred, scale)
    return side_by_side([
        (title, img),
        # Stronger colors than the default: side by side, the classes must be told apart at a glance.
        ("ground truth", draw_overlay(img, gt, metadata, alpha=0.65, draw_legend=False)),
        ("prediction", draw_overlay(img, pred, metadata, alpha=0.65, draw_legend=False)),
        (f"errors: {100 * rate:.1f}% wrong", enlarge(errors, scale)),
        ("classes", legend_image(entries, img.shape[0])),
    ])
