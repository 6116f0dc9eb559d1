"""Box modes of dataset dicts (detectron2's BoxMode values) and conversion."""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class BoxMode(IntEnum):
    """How a dataset dict's `bbox` is written. Values match detectron2's BoxMode."""

    XYXY_ABS = 0  # (x0, y0, x1, y1) in pixels
    XYWH_ABS = 1  # (x0, y0, width, height) in pixels, as COCO json


def convert_boxes(boxes, from_mode: int, to_mode: int) -> np.ndarray:
    """Boxes (N x 4, or one box of 4) from one BoxMode to another, as float64."""
    boxes = np.array(boxes, dtype=np.float64)
    flat = boxes.reshape(-1, 4)
    from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
    if from_mode == BoxMode.XYWH_ABS and to_mode == BoxMode.XYXY_ABS:
        flat[:, 2:] += flat[:, :2]
    elif from_mode == BoxMode.XYXY_ABS and to_mode == BoxMode.XYWH_ABS:
        flat[:, 2:] -= flat[:, :2]
    return boxes


def to_xyxy(bbox, mode: int) -> np.ndarray:
    """A dataset dict's box as float (x0, y0, x1, y1)."""
    return convert_boxes(np.asarray(bbox, dtype=np.float64).reshape(4), mode, BoxMode.XYXY_ABS)
