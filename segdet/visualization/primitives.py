"""Drawing primitives of segdet's pictures: checks of the arrays, class colors and patterns
(the conventions are in `segdet.visualization`), text with an outline, blending and enlarging.

All arrays are RGB uint8 (HxWx3); OpenCV draws (text with cv2.putText, scaled to the image,
with a dark outline); work is vectorized, so a 2000x2000 overlay takes a fraction of a second.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

from segdet.errors import DataError
from segdet.structures.metadata import Metadata
from segdet.utils.arrays import to_numpy


Color = tuple[int, int, int]

NOT_A_CLASS_COLOR: Color = (255, 0, 255)
WRONG_COLOR: Color = (255, 0, 0)
_BLACK: Color = (0, 0, 0)
_WHITE: Color = (255, 255, 255)
# Stripes of a dark ignore class alternate with this instead of black, so they stay visible.
_LIGHT_STRIPE: Color = (200, 200, 200)
NEUTRAL_STRIPES: tuple[Color, Color] = ((75, 75, 75), (165, 165, 165))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_BG: Color = (30, 30, 30)

# Pixel kinds in the lookup tables.
_CLASS, _IGNORE, _NOT_CLASS = 0, 1, 2
# Class ids are < 255 (Metadata.MAX_CLASSES), so 255 is free to mark every other value.
_OTHER = 255



# ----------------------------------------------------------------------------- helpers

def luma(color: Sequence[int]) -> float:
    r, g, b = (float(v) for v in color)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _stripe_partner(color: Sequence[int]) -> Color:
    """The second color of an ignore class's stripes: black, or light gray for a dark class."""
    return _LIGHT_STRIPE if luma(color) < 60 else _BLACK


def pattern_size(height: int, width: int) -> int:
    """Stripe / checker cell size in pixels: visible at any image size."""
    return max(2, int(round(min(height, width) / 128)))


def check_image(image: Any, what: str = "image") -> np.ndarray:
    image = to_numpy(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f"{what} has shape {image.shape}; expected HxW or HxWx3 RGB")
    if image.dtype != np.uint8:
        if image.dtype.kind == "f" and image.size and float(image.max()) <= 1.0:
            image = image * 255.0
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, :3])


def check_segmentation(segmentation_image: Any, what: str = "segmentation_image") -> np.ndarray:
    seg = to_numpy(segmentation_image)
    if seg.ndim != 2:
        raise DataError(f"{what} has shape {seg.shape}; expected HxW class ids")
    if seg.dtype.kind not in "iub":
        raise DataError(f"{what} has type {seg.dtype}; expected integer class ids")
    return seg


def check_same_size(image: np.ndarray, seg: np.ndarray, what: str = "segmentation_image") -> None:
    if image.shape[:2] != seg.shape:
        raise DataError(f"{what} has size {seg.shape[1]}x{seg.shape[0]} (WxH) but the image has size "
                        f"{image.shape[1]}x{image.shape[0]}")


def index_map(seg: np.ndarray, num_classes: int) -> np.ndarray:
    """uint8 index into the 256-entry lookup tables: the value itself where it is in 0..255
    (entries >= num_classes are "not a class"), 255 for any other value."""
    if seg.dtype == np.uint8:
        return seg
    if seg.size and int(seg.min()) >= 0 and int(seg.max()) <= _OTHER:
        return seg.astype(np.uint8)
    seg64 = seg.astype(np.int64, copy=False)
    valid = (seg64 >= 0) & (seg64 < num_classes)
    return np.where(valid, seg64, _OTHER).astype(np.uint8)


def _lookup_tables(metadata: Metadata) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colors 256x3, stripe partner colors 256x3, pixel kind 256) indexed by index_map values."""
    ignore = set(metadata.ignore_class_ids)
    colors = np.zeros((256, 3), dtype=np.uint8)
    partners = np.zeros((256, 3), dtype=np.uint8)
    kinds = np.full(256, _NOT_CLASS, dtype=np.uint8)
    colors[:] = NOT_A_CLASS_COLOR
    for c, color in enumerate(metadata.class_colors):
        colors[c] = color
        partners[c] = _stripe_partner(color)
        kinds[c] = _IGNORE if c in ignore else _CLASS
    return colors, partners, kinds


def text_scale(height: int, width: int) -> float:
    """cv2 font scale for labels: legible on small images, proportionate on big ones."""
    return float(np.clip(min(height, width) / 750.0, 0.4, 2.0))


def _text_thickness(scale: float) -> int:
    return max(1, int(round(scale * 1.6)))


def line_thickness(height: int, width: int) -> int:
    return max(1, int(round(min(height, width) / 400)))


def put_text(image: np.ndarray, text: str, org: tuple[int, int], scale: float,
              color: Color = _WHITE) -> None:
    """Text with a dark outline, readable on any background; `org` is the bottom-left corner."""
    thickness = _text_thickness(scale)
    # The outline is the same text shifted around it: a thicker stroke would also widen the
    # letter spacing (cv2 advances by the thickness) and misalign the two.
    r = max(1, thickness // 2 + 1)
    x, y = int(org[0]) + r, int(org[1])
    for dx, dy in ((-r, -r), (0, -r), (r, -r), (-r, 0), (r, 0), (-r, r), (0, r), (r, r)):
        cv2.putText(image, text, (x + dx, y + dy), _FONT, scale, _BLACK, thickness, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), _FONT, scale, tuple(int(v) for v in color), thickness, cv2.LINE_AA)


def text_size(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height above baseline, baseline) of a text, outline included."""
    thickness = _text_thickness(scale)
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    r = max(1, thickness // 2 + 1)
    return w + 2 * r, h + r, baseline + r


def outline_color(color: Sequence[int]) -> Color:
    """A shade of a class color that stands out on that color: darker for light colors, lighter for dark."""
    c = np.asarray(color, dtype=np.float64)
    shade = c * 0.45 if luma(color) >= 110 else c + (255.0 - c) * 0.6
    return tuple(int(round(v)) for v in shade)


def fill_pattern(patch: np.ndarray, color: Sequence[int], style: str, cell: int) -> None:
    """Fill a small RGB patch in place: "solid", "hatched" (stripes) or "checker"."""
    h, w = patch.shape[:2]
    patch[:] = color
    rows, cols = np.mgrid[0:h, 0:w]
    if style == "hatched":
        patch[((rows + cols) // cell) % 2 == 1] = _stripe_partner(color)
    elif style == "checker":
        patch[((rows // cell) + (cols // cell)) % 2 == 1] = _BLACK


# ----------------------------------------------------------------------------- colors

def colorize(segmentation_image: np.ndarray, metadata: Metadata) -> np.ndarray:
    """Color a class-id map with the metadata's class colors.

    Ignore classes are hatched: diagonal stripes of the class color and black (light gray
    for a dark class color). Values that are not class ids (e.g. 255, or ids >= the number of
    classes) are drawn as a magenta/black checker board.

    Args:
        segmentation_image: HxW integer class ids (numpy array or torch tensor).
        metadata: classes, colors and ignore classes.
    Returns:
        HxWx3 uint8 RGB.
    """
    seg = check_segmentation(segmentation_image)
    return _colorize(seg, metadata, index_map(seg, metadata.num_classes))


def _colorize(seg: np.ndarray, metadata: Metadata, index: np.ndarray) -> np.ndarray:
    colors, partners, kinds = _lookup_tables(metadata)
    # cv2.LUT is several times faster than numpy fancy indexing on big images.
    out = cv2.LUT(cv2.merge([index, index, index]), colors.reshape(256, 1, 3))
    kind = cv2.LUT(index, kinds)
    cell = pattern_size(*seg.shape)
    rows, cols = np.nonzero(kind == _IGNORE)
    if rows.size:
        dark = ((rows + cols) // cell) % 2 == 1
        out[rows[dark], cols[dark]] = partners[index[rows[dark], cols[dark]]]
    rows, cols = np.nonzero(kind == _NOT_CLASS)
    if rows.size:
        dark = ((rows // cell) + (cols // cell)) % 2 == 1
        out[rows[dark], cols[dark]] = _BLACK
    return out



def blend(image: np.ndarray, colored: np.ndarray, alpha: float) -> np.ndarray:
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha must be in [0, 1], got {alpha}")
    return cv2.addWeighted(image, 1.0 - alpha, colored, alpha, 0.0)



def repeat_pixels(array: np.ndarray, factor: int, axes: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(array, factor, axis=axes[0]), factor, axis=axes[1])


def enlarge(array: np.ndarray, factor: int, smooth: bool = False) -> np.ndarray:
    """Scale an image or label map up by an integer factor (for display of small images).

    Args:
        array: HxW or HxWxC.
        factor: >= 1.
        smooth: bilinear (photos) instead of nearest neighbour (labels, masks).
    """
    factor = int(factor)
    if factor <= 1:
        return array
    if smooth and array.dtype == np.uint8:
        h, w = array.shape[:2]
        return cv2.resize(array, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR)
    return repeat_pixels(array, factor, (0, 1))


def display_scale(height: int, width: int, min_side: int = 480, max_factor: int = 4) -> int:
    """Integer factor that brings a small image's short side to about `min_side` pixels (1 for big images)."""
    short = max(1, min(int(height), int(width)))
    return int(min(max_factor, max(1, math.ceil(min_side / short))))

