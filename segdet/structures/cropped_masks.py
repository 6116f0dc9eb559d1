"""Instance masks held as crops: each mask a bool array over its own extent, placed in the image
by its top-left pixel, so that N masks of a large image cost the pixels of their objects, not
N x H x W (at 8000 x 8000 one full-image mask is 64 MB).

Tiled inference gives its instances this way (`Instances.pred_mask_crops`); whole-image inference
gives full-image `pred_masks`. Whatever reads instance masks (COCO results, pictures, the
panoptic fusion) reads them through `instance_mask_crops`, which takes either.

    crops = CroppedMasks.from_masks(masks)      # N x H x W -> crops
    crops.paste(k)                               # H x W bool mask k (for small images and tests)
    crops.dense()                                # N x H x W bool, all of them
    crops.paste(k, (y0, x0, y1, x1))             # mask k inside a region only
    crops.rles()                                 # COCO RLEs at image coordinates
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from segdet.errors import DataError
from segdet.structures.masks import crop_to_rle
from segdet.utils.arrays import to_numpy

Region = tuple[int, int, int, int]  # (y0, x0, y1, x1), ends exclusive


def _trim(crop: np.ndarray, top: int, left: int) -> tuple[np.ndarray, int, int]:
    """A crop cut down to its set pixels' extent (an empty mask: 0 x 0 at its corner)."""
    rows = np.flatnonzero(crop.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=bool), top, left
    cols = np.flatnonzero(crop.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if (r0, c0, r1, c1) == (0, 0) + crop.shape:
        return crop, top, left
    return np.ascontiguousarray(crop[r0:r1, c0:c1]), top + r0, left + c0


class CroppedMasks:
    """N instance masks of an image of `image_size` (H, W), each cut to the extent of its pixels."""

    def __init__(self, image_size: tuple[int, int], crops: Sequence[np.ndarray], origins: Any):
        """
        Args:
            image_size: (H, W) of the image the masks belong to.
            crops: N 2-D masks (bool or 0/1); each is trimmed to the extent of its set pixels.
            origins: N x 2 (row, column) of each crop's top-left pixel in the image.
        """
        self.image_size = (int(image_size[0]), int(image_size[1]))
        origins = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
        if len(origins) != len(crops):
            raise DataError(f"{len(crops)} mask crops with {len(origins)} origins")
        height, width = self.image_size
        self._crops: list[np.ndarray] = []
        trimmed = np.zeros_like(origins)
        for k, (crop, (top, left)) in enumerate(zip(crops, origins)):
            crop = np.asarray(crop)
            if crop.ndim != 2:
                raise DataError(f"mask crop {k} has shape {crop.shape}; expected 2-D")
            if top < 0 or left < 0 or top + crop.shape[0] > height or left + crop.shape[1] > width:
                raise DataError(f"mask crop {k} of {crop.shape[0]}x{crop.shape[1]} at row {top}, column {left} "
                                f"does not fit the {height}x{width} image")
            crop, top, left = _trim(crop.astype(bool, copy=False), int(top), int(left))
            self._crops.append(crop)
            trimmed[k] = (top, left)
        self._origins = trimmed

    @classmethod
    def from_masks(cls, masks: Any) -> "CroppedMasks":
        """Crops of N x H x W masks (bool or 0/1 arrays or tensors, any device)."""
        masks = to_numpy(masks)
        if masks.ndim != 3:
            raise DataError(f"instance masks have shape {masks.shape}; expected N x H x W")
        return cls(masks.shape[1:], list(masks.astype(bool, copy=False)), np.zeros((len(masks), 2), np.int64))

    def __len__(self) -> int:
        return len(self._crops)

    def __getitem__(self, index: Any) -> "CroppedMasks":
        """The masks selected by an int, a slice, an index array or a boolean mask (as Instances indexes)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        elif not isinstance(index, slice):
            index = to_numpy(index)
            index = np.flatnonzero(index) if index.dtype == np.bool_ else index.astype(np.int64).reshape(-1)
        picked = np.arange(len(self))[index]
        out = CroppedMasks.__new__(CroppedMasks)  # already trimmed and checked
        out.image_size = self.image_size
        out._crops = [self._crops[k] for k in picked]
        out._origins = self._origins[picked].reshape(-1, 2)
        return out

    def crop(self, k: int) -> np.ndarray:
        """Mask k over its extent (`region(k)`), bool."""
        return self._crops[k]

    def region(self, k: int) -> Region:
        """(y0, x0, y1, x1) of mask k's extent in the image (empty: y0 == y1)."""
        top, left = (int(v) for v in self._origins[k])
        h, w = self._crops[k].shape
        return top, left, top + h, left + w

    def boxes(self) -> np.ndarray:
        """N x 4 float32 XYXY extents, one past the last pixel (`structures.masks.mask_boxes`'s
        convention); an empty mask: a zero-size box at its corner."""
        sizes = np.asarray([c.shape for c in self._crops], dtype=np.int64).reshape(-1, 2)
        top_left = self._origins[:, ::-1]
        return np.concatenate([top_left, top_left + sizes[:, ::-1]], axis=1).astype(np.float32)

    def areas(self) -> np.ndarray:
        """N pixel counts (int64)."""
        return np.asarray([int(c.sum()) for c in self._crops], dtype=np.int64)

    def paste(self, k: int, region: Optional[Region] = None) -> np.ndarray:
        """Mask k inside `region` (y0, x0, y1, x1) of the image, bool; default the whole image."""
        y0, x0, y1, x1 = region if region is not None else (0, 0) + self.image_size
        out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        top, left, bottom, right = self.region(k)
        a, b, c, d = max(top, y0), max(left, x0), min(bottom, y1), min(right, x1)
        if a < c and b < d:
            out[a - y0:c - y0, b - x0:d - x0] = self._crops[k][a - top:c - top, b - left:d - left]
        return out

    def dense(self) -> np.ndarray:
        """N x H x W bool masks over the whole image."""
        out = np.zeros((len(self),) + self.image_size, dtype=bool)
        for k, crop in enumerate(self._crops):
            y0, x0, y1, x1 = self.region(k)
            out[k, y0:y1, x0:x1] = crop
        return out

    def rles(self) -> list[dict]:
        """COCO compressed RLEs (str counts) at image coordinates."""
        height, width = self.image_size
        return [crop_to_rle(c, int(t), int(l), height, width) for c, (t, l) in zip(self._crops, self._origins)]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._crops) + self._origins.nbytes

    def numpy(self) -> "CroppedMasks":
        """Itself: the crops are numpy arrays already (`Instances.numpy` keeps the field)."""
        return self

    def __repr__(self) -> str:
        return f"CroppedMasks(num_masks={len(self)}, image_size={self.image_size}, bytes={self.nbytes})"


def _field(instances: Any, name: str) -> Any:
    """A field of a dict or an Instances, None when absent: detectron2's Instances (segdet.d2 passes
    them here) has no default in `get`, so ask `has` first."""
    if isinstance(instances, Mapping):
        return instances.get(name)
    return instances.get(name) if instances.has(name) else None


def instance_mask_crops(instances: Any) -> Optional[CroppedMasks]:
    """An Instances' masks as crops, whichever field holds them: `pred_mask_crops` as it is,
    full-image `pred_masks` (bool, or scores >= 0.5) cut to each mask's extent; None without masks."""
    crops = _field(instances, "pred_mask_crops")
    if crops is not None:
        return crops
    masks = _field(instances, "pred_masks")
    if masks is None:
        return None
    masks = to_numpy(masks)
    if masks.ndim != 3:
        raise DataError(f"pred_masks has shape {masks.shape}; expected N x H x W")
    return CroppedMasks.from_masks(masks if masks.dtype == np.bool_ else masks >= 0.5)


def has_instance_masks(instances: Any) -> bool:
    """Whether an Instances has masks, full-image or cropped."""
    return instances.has("pred_mask_crops") or instances.has("pred_masks")
