"""Instance masks of dataset-dict annotations (COCO polygons or RLE), decoded by pycocotools.

One rule everywhere (the mapper, the evaluators, the pictures, the loaders): a polygon needs
at least 3 points (6 coordinates, an even number); shorter ones cannot be rasterized and are
dropped, as detectron2's COCO loader drops them. A segmentation with no polygon left, a
malformed RLE, or an RLE of another size than the image is a DataError naming the annotation.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util

from segdet.errors import DataError
from segdet.structures.boxes import BoxMode


def valid_polygons(polygons: Any) -> list[list[float]]:
    """The polygons of a COCO polygon list that can be rasterized (>= 3 points, x y pairs)."""
    kept = []
    for polygon in polygons:
        flat = np.asarray(polygon, dtype=np.float64).ravel()
        if flat.size >= 6 and flat.size % 2 == 0:
            kept.append(flat.tolist())
    return kept


def segmentation_to_rle(segmentation: Any, height: int, width: int, where: str = "annotation") -> dict:
    """A dataset-dict segmentation (polygons, or RLE compressed or not) as one compressed RLE
    with str counts (JSON-able).

    Args:
        segmentation: a list of polygons [x0, y0, x1, y1, ...], or an RLE dict {size, counts}.
        height, width: the image size.
        where: names the annotation in error messages.
    """
    try:
        if isinstance(segmentation, list):
            polygons = valid_polygons(segmentation)
            if not polygons:
                raise DataError(f"{where}: no polygon with at least 3 points (x, y pairs) in its 'segmentation'")
            rle = mask_util.merge(mask_util.frPyObjects(polygons, height, width))
        elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
            size = [int(v) for v in segmentation["size"]]
            if size != [height, width]:
                raise DataError(f"{where}: RLE size {size} differs from the image size [{height}, {width}]")
            counts = segmentation["counts"]
            if isinstance(counts, list):  # uncompressed RLE
                rle = mask_util.frPyObjects(segmentation, height, width)
            else:
                rle = _coded(segmentation)
        else:
            kind = "an RLE dict without 'size' and 'counts'" if isinstance(segmentation, dict) \
                else type(segmentation).__name__
            raise DataError(f"{where}: 'segmentation' must be polygons (a list) or RLE (a dict), got {kind}")
    except DataError:
        raise
    except Exception as e:  # pycocotools raises bare TypeError / ValueError on malformed input
        raise DataError(f"{where}: cannot decode 'segmentation': {e}") from None
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _coded(rle: dict) -> dict:
    """An RLE as pycocotools takes it (counts bytes)."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_to_mask(rle: dict) -> np.ndarray:
    """HxW bool mask of a compressed RLE (counts str or bytes)."""
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's __array__(copy=...) deprecation on every call.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_util.decode(_coded(rle)).astype(bool)


def segmentation_to_mask(segmentation: Any, height: int, width: int, where: str = "annotation") -> np.ndarray:
    """A dataset-dict segmentation as an HxW bool mask."""
    return rle_to_mask(segmentation_to_rle(segmentation, height, width, where))


def masks_to_rles(masks: np.ndarray) -> list[dict]:
    """Compressed RLEs (str counts) of N x H x W masks (bool or 0/1)."""
    masks = np.asarray(masks)
    if masks.shape[0] == 0:
        return []
    encoded = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in encoded]


def crop_to_rle(crop: np.ndarray, top: int, left: int, height: int, width: int) -> dict:
    """The compressed RLE (str counts) of a height x width mask that is zero except for `crop`
    placed with its top-left pixel at (top, left), without making the full-size mask.

    COCO's RLE runs over the pixels column by column: each run boundary of the crop's columns
    (padded with a zero row above and below) is a boundary of the full mask at
    (left + column) * height + top + row; a run that ends where the next one starts (a crop
    of full height, continued in the next column) is one run.
    """
    crop = np.asarray(crop, dtype=bool)
    h, w = crop.shape
    if top < 0 or left < 0 or top + h > height or left + w > width:
        raise DataError(f"a {h}x{w} mask crop at row {top}, column {left} does not fit a {height}x{width} image")
    padded = np.zeros((w, h + 2), dtype=np.int8)  # one row of the crop's columns each
    padded[:, 1:-1] = crop.T
    column, row = np.nonzero(np.diff(padded, axis=1))
    boundaries = (left + column).astype(np.int64) * height + top + row
    # A run ending where the next begins is no boundary: drop both (only for full-height crops).
    joined = np.flatnonzero(boundaries[1:] == boundaries[:-1])
    if joined.size:
        boundaries = np.delete(boundaries, np.concatenate([joined, joined + 1]))
    counts = np.diff(np.concatenate([[0], boundaries, [height * width]]))
    if len(counts) > 1 and counts[-1] == 0:  # a mask ending on its last pixel has no final background run
        counts = counts[:-1]
    rle = mask_util.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def annotations_from_masks(masks: Sequence[np.ndarray], category_ids: Sequence[int],
                           crowd: Optional[Sequence[bool]] = None) -> list[dict]:
    """Dataset-dict annotations of HxW masks: compressed RLE, its XYWH box, the class id, iscrowd."""
    if not len(masks):
        return []
    rles = masks_to_rles(np.stack(masks))
    crowd = crowd if crowd is not None else [False] * len(rles)
    return [{"bbox": rle_box(rle), "bbox_mode": int(BoxMode.XYWH_ABS), "category_id": int(c), "segmentation": rle,
             "iscrowd": int(k)} for rle, c, k in zip(rles, category_ids, crowd)]


def rle_box(rle: dict) -> list[float]:
    """The XYWH box of a compressed RLE, as COCO writes it (x1 + w is one past the last column)."""
    return [float(v) for v in mask_util.toBbox(_coded(rle))]


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """N x 4 float32 XYXY boxes of N x H x W masks, one past the last pixel (an empty mask: zeros)."""
    rles = masks_to_rles(masks)
    boxes = np.asarray([rle_box(r) for r in rles], dtype=np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def annotation_area(rle: Optional[dict]) -> float:
    """Pixel area of a compressed RLE."""
    if rle is None:
        return 0.0
    return float(mask_util.area(_coded(rle)))
