"""Pictures of segmentations a person can look at: class colors, overlays, instance outlines,
legends, error maps and titled panels.

Conventions, so that a picture never hides a labeling problem:
- every class has the color its metadata gives (`Metadata.class_colors`), also in the legend;
- ignore classes are hatched (diagonal stripes of their color and black) and listed as
  "(ignored)" in the legend, so they cannot be mistaken for a class that is learned;
- values that are not class ids (>= num_classes, negative, or the ignore value 255) are a
  magenta/black checker board, listed as "not a class".

All arrays are RGB uint8 (HxWx3); OpenCV draws (text with cv2.putText, scaled to the image,
with a dark outline); work is vectorized, so a 2000x2000 overlay takes a fraction of a second.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np

from segdet.structures.boxes import BoxMode, to_xyxy
from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes, segmentation_to_mask
from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.utils.arrays import to_numpy

Color = tuple[int, int, int]

NOT_A_CLASS_COLOR: Color = (255, 0, 255)
WRONG_COLOR: Color = (255, 0, 0)
_BLACK: Color = (0, 0, 0)
_WHITE: Color = (255, 255, 255)
# Stripes of a dark ignore class alternate with this instead of black, so they stay visible.
_LIGHT_STRIPE: Color = (200, 200, 200)
_NEUTRAL_STRIPES: tuple[Color, Color] = ((75, 75, 75), (165, 165, 165))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PANEL_BG: Color = (30, 30, 30)

# Pixel kinds in the lookup tables.
_CLASS, _IGNORE, _NOT_CLASS = 0, 1, 2
# Class ids are < 255 (Metadata.MAX_CLASSES), so 255 is free to mark every other value.
_OTHER = 255


# ----------------------------------------------------------------------------- helpers

def _luma(color: Sequence[int]) -> float:
    r, g, b = (float(v) for v in color)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _stripe_partner(color: Sequence[int]) -> Color:
    """The second color of an ignore class's stripes: black, or light gray for a dark class."""
    return _LIGHT_STRIPE if _luma(color) < 60 else _BLACK


def _pattern_size(height: int, width: int) -> int:
    """Stripe / checker cell size in pixels: visible at any image size."""
    return max(2, int(round(min(height, width) / 128)))


def _check_image(image: Any, what: str = "image") -> np.ndarray:
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


def _check_segmentation(segmentation_image: Any, what: str = "segmentation_image") -> np.ndarray:
    seg = to_numpy(segmentation_image)
    if seg.ndim != 2:
        raise DataError(f"{what} has shape {seg.shape}; expected HxW class ids")
    if seg.dtype.kind not in "iub":
        raise DataError(f"{what} has type {seg.dtype}; expected integer class ids")
    return seg


def _check_same_size(image: np.ndarray, seg: np.ndarray, what: str = "segmentation_image") -> None:
    if image.shape[:2] != seg.shape:
        raise DataError(f"{what} has size {seg.shape[1]}x{seg.shape[0]} (WxH) but the image has size "
                        f"{image.shape[1]}x{image.shape[0]}")


def _index_map(seg: np.ndarray, num_classes: int) -> np.ndarray:
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
    """(colors 256x3, stripe partner colors 256x3, pixel kind 256) indexed by _index_map values."""
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


def _text_scale(height: int, width: int) -> float:
    """cv2 font scale for labels: legible on small images, proportionate on big ones."""
    return float(np.clip(min(height, width) / 750.0, 0.4, 2.0))


def _text_thickness(scale: float) -> int:
    return max(1, int(round(scale * 1.6)))


def _line_thickness(height: int, width: int) -> int:
    return max(1, int(round(min(height, width) / 400)))


def _put_text(image: np.ndarray, text: str, org: tuple[int, int], scale: float,
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


def _text_size(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height above baseline, baseline) of a text, outline included."""
    thickness = _text_thickness(scale)
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    r = max(1, thickness // 2 + 1)
    return w + 2 * r, h + r, baseline + r


def _outline_color(color: Sequence[int]) -> Color:
    """A shade of a class color that stands out on that color: darker for light colors, lighter for dark."""
    c = np.asarray(color, dtype=np.float64)
    shade = c * 0.45 if _luma(color) >= 110 else c + (255.0 - c) * 0.6
    return tuple(int(round(v)) for v in shade)


def _fill_pattern(patch: np.ndarray, color: Sequence[int], style: str, cell: int) -> None:
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
    seg = _check_segmentation(segmentation_image)
    return _colorize(seg, metadata, _index_map(seg, metadata.num_classes))


def _colorize(seg: np.ndarray, metadata: Metadata, index: np.ndarray) -> np.ndarray:
    colors, partners, kinds = _lookup_tables(metadata)
    # cv2.LUT is several times faster than numpy fancy indexing on big images.
    out = cv2.LUT(cv2.merge([index, index, index]), colors.reshape(256, 1, 3))
    kind = cv2.LUT(index, kinds)
    cell = _pattern_size(*seg.shape)
    rows, cols = np.nonzero(kind == _IGNORE)
    if rows.size:
        dark = ((rows + cols) // cell) % 2 == 1
        out[rows[dark], cols[dark]] = partners[index[rows[dark], cols[dark]]]
    rows, cols = np.nonzero(kind == _NOT_CLASS)
    if rows.size:
        dark = ((rows // cell) + (cols // cell)) % 2 == 1
        out[rows[dark], cols[dark]] = _BLACK
    return out


def legend_entries(
    metadata: Metadata,
    class_ids: Iterable[int],
    other_values: Iterable[int] = (),
) -> list[tuple[str, Color, str]]:
    """Legend entries (name, color, style) for some class ids, in id order.

    Ignore classes are named "<class> (ignored)" with a hatched swatch; `other_values`
    (values that are not classes) give one "not a class: ..." entry with a checker swatch.
    """
    entries: list[tuple[str, Color, str]] = []
    ignore = set(metadata.ignore_class_ids)
    for c in sorted(set(int(i) for i in class_ids)):
        if not 0 <= c < metadata.num_classes:
            continue
        if c in ignore:
            entries.append((f"{metadata.class_names[c]} (ignored)", metadata.class_colors[c], "hatched"))
        else:
            entries.append((metadata.class_names[c], metadata.class_colors[c], "solid"))
    others = sorted(set(int(v) for v in other_values))
    if others:
        shown = ", ".join(str(v) for v in others[:5]) + (", ..." if len(others) > 5 else "")
        entries.append((f"not a class: {shown}", NOT_A_CLASS_COLOR, "checker"))
    return entries


def _present_entries(seg: Optional[np.ndarray], metadata: Metadata,
                     extra_class_ids: Iterable[int] = ()) -> list[tuple[str, Color, str]]:
    """Legend entries of the classes (and non-class values) in a map, plus some class ids."""
    ids = set(int(c) for c in extra_class_ids)
    others: list[int] = []
    if seg is not None and seg.size:
        n = metadata.num_classes
        counts = np.bincount(_index_map(seg, n).ravel(), minlength=256)
        ids |= set(int(c) for c in np.flatnonzero(counts[:n]))
        if counts[n:].any():
            seg64 = seg.astype(np.int64, copy=False)
            others = [int(v) for v in np.unique(seg64[(seg64 < 0) | (seg64 >= n)])]
    return legend_entries(metadata, ids, others)


# ----------------------------------------------------------------------------- legend

class _LegendLayout:
    """Sizes of a legend box for some entries at a font scale."""

    def __init__(self, entries: Sequence[tuple], scale: float):
        self.scale = scale
        self.texts = [str(e[0]) for e in entries]
        sizes = [_text_size(t, scale) for t in self.texts]
        self.text_h = max(s[1] for s in sizes)
        baseline = max(s[2] for s in sizes)
        self.pad = max(3, self.text_h // 3)
        self.row_h = self.text_h + baseline + self.pad
        self.swatch = self.text_h + baseline
        self.width = self.pad + self.swatch + self.pad + max(s[0] for s in sizes) + self.pad
        self.height = self.pad + self.row_h * len(entries)


def _draw_legend_box(out: np.ndarray, entries: Sequence[tuple], layout: _LegendLayout, x0: int, y0: int) -> None:
    h, w = out.shape[:2]
    cell = max(2, layout.swatch // 4)
    for k, entry in enumerate(entries):
        color = tuple(int(v) for v in entry[1])
        style = entry[2] if len(entry) > 2 else "solid"
        top = y0 + layout.pad + k * layout.row_h
        if top >= h:
            break
        sx0, sy0 = x0 + layout.pad, top
        sx1, sy1 = min(w, sx0 + layout.swatch), min(h, sy0 + layout.swatch)
        if sx1 > sx0 and sy1 > sy0:
            _fill_pattern(out[sy0:sy1, sx0:sx1], color, style, cell)
            cv2.rectangle(out, (sx0, sy0), (sx1 - 1, sy1 - 1), (220, 220, 220), 1)
        _put_text(out, layout.texts[k], (sx0 + layout.swatch + layout.pad, top + layout.text_h), layout.scale)


def draw_legend(image: np.ndarray, entries: Sequence[tuple]) -> np.ndarray:
    """Draw a legend box in the top-right corner of an image.

    Args:
        image: HxWx3 RGB uint8 (not modified).
        entries: (name, (r, g, b)) or (name, (r, g, b), style) with style "solid",
            "hatched" (ignore class) or "checker" (not a class); see `legend_entries`.
    Returns:
        A copy of the image with the legend.
    """
    out = _check_image(image).copy()
    if not entries:
        return out
    h, w = out.shape[:2]
    layout = _LegendLayout(entries, _text_scale(h, w))
    x0 = max(0, w - layout.width - layout.pad)
    y0 = min(layout.pad, max(0, h - layout.height))
    # A translucent dark panel keeps the image visible behind the legend.
    region = out[y0:min(h, y0 + layout.height), x0:min(w, x0 + layout.width)]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    _draw_legend_box(out, entries, layout, x0, y0)
    return out


def legend_image(entries: Sequence[tuple], height: int) -> np.ndarray:
    """A legend on its own: a dark picture `height` pixels high, in as many columns as the
    entries need, to put next to an image instead of over it (see `side_by_side`).

    Args:
        entries: as for `draw_legend`.
        height: picture height in pixels; the font is sized as for an image of that height.
    """
    entries = list(entries) or [("(no class)", _PANEL_BG)]
    layout = _LegendLayout(entries, _text_scale(height, height))
    per_column = max(1, (height - layout.pad) // layout.row_h)
    columns = [entries[i:i + per_column] for i in range(0, len(entries), per_column)]
    widths = [_LegendLayout(col, layout.scale).width for col in columns]
    out = np.empty((max(height, layout.height if len(columns) == 1 else 0), sum(widths) + layout.pad, 3),
                   dtype=np.uint8)
    out[:] = _PANEL_BG
    x = 0
    for col, width in zip(columns, widths):
        _draw_legend_box(out, col, _LegendLayout(col, layout.scale), x, 0)
        x += width
    return out


# ----------------------------------------------------------------------------- instances

def _mask_outline(image: np.ndarray, mask: np.ndarray, color: Color, thickness: int) -> None:
    """Draw the contours of a binary mask (outer and hole boundaries) in place."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Contours of the crop only: cheap for small instances on big images.
    crop = np.ascontiguousarray(mask[r0:r1, c0:c1], dtype=np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE, offset=(int(c0), int(r0)))
    cv2.drawContours(image, contours, -1, color, thickness, cv2.LINE_8)


def _box_label(image: np.ndarray, text: str, box: Sequence[float], color: Sequence[int]) -> None:
    """A label at the top of a box, above it where there is room, else just inside it: white
    text on a dark shade of the class color, readable on any image."""
    h, w = image.shape[:2]
    scale = _text_scale(h, w) * 0.85
    tw, th, baseline = _text_size(text, scale)
    x = int(np.clip(math.floor(box[0]), 0, max(0, w - tw)))
    y_top = int(math.floor(box[1]))
    y = y_top - baseline if y_top - baseline - th >= 0 else min(h - baseline, y_top + th)
    cv2.rectangle(image, (x, y - th), (x + tw - 1, y + baseline - 1), _dark_shade(color), -1)
    _put_text(image, text, (x, y), scale)


def _dark_shade(color: Sequence[int]) -> Color:
    """The class color darkened until white text reads on it."""
    c = np.asarray(color, dtype=np.float64)
    while _luma(c) > 90:
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
        masks: NxHxW masks (bool or 0/1).
        class_ids: N class ids.
        metadata: class names and colors.
        boxes: Nx4 XYXY boxes (label positions); None = the masks' bounding boxes.
        labels: N texts; None = the class names.
    Returns:
        A copy of the image with the outlines and labels.
    """
    out = _check_image(image).copy()
    masks = to_numpy(masks)
    class_ids = [int(c) for c in to_numpy(class_ids).reshape(-1)]
    if masks.size == 0 or not class_ids:
        return out
    if masks.ndim != 3 or masks.shape[1:] != out.shape[:2]:
        raise DataError(f"instance masks have shape {masks.shape}; expected Nx{out.shape[0]}x{out.shape[1]}")
    boxes_np = to_numpy(boxes).reshape(-1, 4) if boxes is not None else None
    thickness = _line_thickness(*out.shape[:2])
    placed = []
    for i, c in enumerate(class_ids):
        known = 0 <= c < metadata.num_classes
        color = metadata.class_colors[c] if known else NOT_A_CLASS_COLOR
        _mask_outline(out, masks[i], _outline_color(color), thickness)
        box = boxes_np[i] if boxes_np is not None else mask_boxes(masks[i:i + 1])[0]
        if not masks[i].any() and boxes_np is None:
            continue
        name = metadata.class_names[c] if known else f"class {c}?"
        placed.append((labels[i] if labels is not None else name, box, color))
    # Labels last, so that no outline crosses a label.
    for text, box, color in placed:
        _box_label(out, text, box, color)
    return out


# ----------------------------------------------------------------------------- overlays

def _blend(image: np.ndarray, colored: np.ndarray, alpha: float) -> np.ndarray:
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha must be in [0, 1], got {alpha}")
    return cv2.addWeighted(image, 1.0 - alpha, colored, alpha, 0.0)


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
        instances: a model output's `Instances` (`pred_masks` NxHxW bool, `pred_classes`
            class ids, `scores`, `pred_boxes` Nx4 XYXY); each instance with score >=
            `score_threshold` is outlined and labeled "<class> 0.93".
        alpha: weight of the class colors (0 = image only, 1 = colors only).
        score_threshold: instances below this score are not drawn.
        draw_legend: add a legend of the classes present (top-right corner).
    Returns:
        HxWx3 RGB uint8, the size of the image.
    """
    img = _check_image(image)
    seg = _check_segmentation(segmentation_image)
    _check_same_size(img, seg)
    out = _blend(img, colorize(seg, metadata), alpha)
    drawn_classes: list[int] = []
    if instances:
        masks = to_numpy(instances.get("pred_masks", np.zeros((0,) + seg.shape, dtype=bool)))
        classes = to_numpy(instances.get("pred_classes", np.zeros(0, dtype=np.int64))).reshape(-1)
        scores = to_numpy(instances.get("scores", np.ones(len(classes)))).reshape(-1).astype(np.float64)
        boxes = instances.get("pred_boxes")
        keep = np.flatnonzero(scores >= score_threshold)
        if keep.size and masks.size:
            boxes_np = to_numpy(boxes).reshape(-1, 4)[keep] if boxes is not None else None
            kept_classes = [int(c) for c in classes[keep]]
            labels = []
            for c, s in zip(kept_classes, scores[keep]):
                name = metadata.class_names[c] if 0 <= c < metadata.num_classes else f"class {c}?"
                labels.append(f"{name} {s:.2f}")
            out = draw_instances(out, masks[keep], kept_classes, metadata, boxes_np, labels)
            drawn_classes = kept_classes
    if draw_legend:
        out = _legend(out, _present_entries(seg, metadata, drawn_classes))
    return out


# The parameter `draw_legend` of draw_overlay hides the function of that name inside it.
_legend = draw_legend


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


def _repeat(array: np.ndarray, factor: int, axes: tuple[int, int]) -> np.ndarray:
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
    return _repeat(array, factor, (0, 1))


def display_scale(height: int, width: int, min_side: int = 480, max_factor: int = 4) -> int:
    """Integer factor that brings a small image's short side to about `min_side` pixels (1 for big images)."""
    short = max(1, min(int(height), int(width)))
    return int(min(max_factor, max(1, math.ceil(min_side / short))))


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
    img = _check_image(image)
    h, w = img.shape[:2]
    seg = None
    if segmentation_image is not None:
        seg = _check_segmentation(segmentation_image, "ground-truth segmentation")
        _check_same_size(img, seg, "ground-truth segmentation")
    masks, classes, boxes, crowd = annotation_masks(annotations or [], h, w)
    if scale > 1:
        img = enlarge(img, scale, smooth=True)
        seg = enlarge(seg, scale) if seg is not None else None
        masks = _repeat(masks, scale, (1, 2))
        boxes = boxes * scale
    out = _blend(img, colorize(seg, metadata), alpha) if seg is not None else img.copy()
    if classes:
        labels = []
        for c, is_crowd in zip(classes, crowd):
            name = metadata.class_names[c] if 0 <= c < metadata.num_classes else f"class {c}?"
            labels.append(name + (", crowd" if is_crowd else ""))
        out = draw_instances(out, masks, classes, metadata, boxes, labels)
    if draw_legend:
        out = _legend(out, _present_entries(seg, metadata, classes))
    return out


# ----------------------------------------------------------------------------- errors and panels

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
    gt = _check_segmentation(gt, "ground truth")
    pred = _check_segmentation(pred, "prediction")
    if gt.shape != pred.shape:
        raise DataError(f"prediction has size {pred.shape[1]}x{pred.shape[0]} (WxH) but the ground truth "
                        f"has size {gt.shape[1]}x{gt.shape[0]}")
    h, w = gt.shape
    if image is not None:
        img = _check_image(image)
        _check_same_size(img, gt, "ground truth")
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
        cell = _pattern_size(h, w)
        stripe = ((rows + cols) // cell) % 2
        out[rows, cols] = np.asarray(_NEUTRAL_STRIPES, dtype=np.uint8)[stripe]
    return out


def error_rate(gt: np.ndarray, pred: np.ndarray, ignore_class_ids: Iterable[int] = ()) -> float:
    """Share of the evaluated (not ignored) pixels that are wrong; 0 when none is evaluated."""
    gt, pred = to_numpy(gt), to_numpy(pred)
    ignore_ids = sorted(set(int(i) for i in ignore_class_ids))
    evaluated = ~np.isin(gt, ignore_ids) if ignore_ids else np.ones(gt.shape, dtype=bool)
    n = int(evaluated.sum())
    return float(((gt != pred) & evaluated).sum() / n) if n else 0.0




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
    images = [_check_image(img, f"panel '{title}'") for title, img in panels]
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
    _, text_h, baseline = _text_size("Ag", scale)
    bar = text_h + baseline + 2 * max(4, text_h // 2)
    total_w = sum(img.shape[1] for img in resized) + gap * (len(resized) + 1)
    canvas = np.empty((bar + height + gap, total_w, 3), dtype=np.uint8)
    canvas[:] = _PANEL_BG
    x = gap
    for (title, _), img in zip(panels, resized):
        w = img.shape[1]
        canvas[bar:bar + height, x:x + w] = img
        s = scale
        while s > 0.3 and _text_size(title, s)[0] > w:
            s *= 0.9
        tw, th, _ = _text_size(title, s)
        _put_text(canvas, title, (x + max(0, (w - tw) // 2), (bar + th) // 2), s)
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
    img = _check_image(image)
    scale = display_scale(*img.shape[:2])
    gt = draw_ground_truth(img, segmentation_image, metadata, annotations, draw_legend=False, scale=scale)
    seg = None if segmentation_image is None else _check_segmentation(segmentation_image)
    entries = _present_entries(seg, metadata, [int(a["category_id"]) for a in annotations or []])
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
    img = _check_image(image)
    gt = _check_segmentation(gt, "ground truth")
    pred = _check_segmentation(pred, "prediction")
    _check_same_size(img, gt, "ground truth")
    _check_same_size(img, pred, "prediction")
    rate = error_rate(gt, pred, metadata.ignore_class_ids)
    errors = error_map(gt, pred, metadata.ignore_class_ids, img)
    entries = _present_entries(np.concatenate([gt.ravel(), pred.ravel()])[None, :], metadata)
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
