"""Box modes of dataset dicts (detectron2's BoxMode values) and conversion."""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class BoxMode(IntEnum):
    """How a dataset dict's `bbox` is written. Values match detectron2's BoxMode."""

    XYXY_ABS = 0  # (x0, y0, x1, y1) in pixels
    XYWH_ABS = 1  # (x0, y0, width, height) in pixels, as COCO json


def to_xyxy(bbox, mode: int) -> np.ndarray:
    """A box as float (x0, y0, x1, y1)."""
    box = np.asarray(bbox, dtype=np.float64).reshape(4)
    if BoxMode(mode) == BoxMode.XYWH_ABS:
        box = box.copy()
        box[2:] += box[:2]
    return box
