"""Mosaic augmentation: four mapped training samples on one canvas (YOLO's mosaic, at the
samples' own scale).

A canvas of the first sample's size is split at a random centre into four quadrants; each
sample fills one, with the corner that faces the centre, cut where the quadrant ends. Where a
sample is smaller than its quadrant the canvas keeps the fill: the model's pixel mean (what
padding normalizes to), `sem_seg` = the ignore value, `weight` 0. Instance masks are cut with
their sample and their boxes recomputed from what is left; an instance cut away entirely is
dropped.

Why: a model trained on whole photographs has never seen two photographs touch, nor a grey field
beside an object; tiles of a large image or of a mosaic show it both, and the model then joins
objects across the seam (BENCHMARKS.md, "Large images with instances").
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes

# Quadrants in order (top-left, top-right, bottom-left, bottom-right): whether the sample's piece
# ends at the centre (True) or starts there (False), along y and along x.
_QUADRANTS = ((True, True), (True, False), (False, True), (False, False))


def _span(canvas_start: int, canvas_end: int, length: int, ends_at_centre: bool) -> tuple[slice, slice]:
    """(canvas slice, sample slice) along one axis: as much of the sample as fits in
    [canvas_start, canvas_end), taken from its side that faces the centre."""
    n = min(length, canvas_end - canvas_start)
    if ends_at_centre:
        return slice(canvas_end - n, canvas_end), slice(length - n, length)
    return slice(canvas_start, canvas_start + n), slice(0, n)


class Mosaic:
    """Draws whether a training sample becomes a mosaic, and with which partners, then builds it."""

    def __init__(self, prob: float, pixel_fill: Sequence[float], ignore_value: int,
                 centre_range: tuple[float, float] = (0.25, 0.75)):
        """
        Args:
            prob: the share of training samples that become a mosaic.
            pixel_fill: the canvas colour where no sample lies (RGB, 0-255).
            ignore_value: `sem_seg` there.
            centre_range: the centre's range, as fractions of the canvas height and width.
        """
        if not 0 <= prob <= 1:
            raise ValueError(f"mosaic probability {prob}; must be in [0, 1]")
        self.prob = float(prob)
        self.pixel_fill = np.clip(np.round(np.asarray(pixel_fill, dtype=np.float64)), 0, 255).astype(np.uint8)
        self.ignore_value = int(ignore_value)
        self.centre_range = centre_range

    @classmethod
    def from_config(cls, cfg) -> Optional["Mosaic"]:
        """INPUT.MOSAIC as a Mosaic, or None where it is off."""
        if not cfg.INPUT.MOSAIC.ENABLED:
            return None
        return cls(cfg.INPUT.MOSAIC.PROB, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)

    def partners(self, rng: np.random.Generator, dataset_size: int) -> Optional[list[int]]:
        """Three dataset indices to put beside this sample, or None (this sample stays as it is)."""
        if rng.random() >= self.prob:
            return None
        return [int(i) for i in rng.integers(0, dataset_size, size=3)]

    def combine(self, samples: Sequence[dict], rng: np.random.Generator) -> dict:
        """The mosaic of four mapped samples (model input dicts), on the first one's canvas.

        Returns the first sample's dict with `image`, and where the first has them `sem_seg`,
        `weight` and `instances`, replaced by the mosaic's; `mosaic_file_names` names the four.
        """
        if len(samples) != 4:
            raise ValueError(f"a mosaic needs 4 samples, got {len(samples)}")
        first = samples[0]
        _, h, w = first["image"].shape
        lo, hi = self.centre_range
        cy = int(round(rng.uniform(lo, hi) * h))
        cx = int(round(rng.uniform(lo, hi) * w))
        image = torch.from_numpy(np.broadcast_to(self.pixel_fill[:, None, None], (3, h, w)).copy())
        has_labels = "sem_seg" in first
        has_instances = "instances" in first
        if has_labels:
            sem_seg = torch.full((h, w), self.ignore_value, dtype=first["sem_seg"].dtype)
            weight = torch.zeros((h, w), dtype=first["weight"].dtype)
        masks, classes = [], []
        for sample, (y_ends, x_ends) in zip(samples, _QUADRANTS):
            sh, sw = sample["image"].shape[1:]
            ys, src_ys = _span(0, cy, sh, True) if y_ends else _span(cy, h, sh, False)
            xs, src_xs = _span(0, cx, sw, True) if x_ends else _span(cx, w, sw, False)
            image[:, ys, xs] = sample["image"][:, src_ys, src_xs]
            if has_labels:
                sem_seg[ys, xs] = sample["sem_seg"][src_ys, src_xs]
                weight[ys, xs] = sample["weight"][src_ys, src_xs]
            if has_instances and len(sample["instances"]):
                inst = sample["instances"]
                placed = torch.zeros((len(inst), h, w), dtype=torch.uint8)
                placed[:, ys, xs] = inst.gt_masks[:, src_ys, src_xs]
                masks.append(placed)
                classes.append(inst.gt_classes)
        out = dict(first)
        out["image"] = image
        out["mosaic_file_names"] = [s.get("file_name") for s in samples]
        if has_labels:
            out["sem_seg"], out["weight"] = sem_seg, weight
        if has_instances:
            out["instances"] = _kept_instances(masks, classes, (h, w))
        return out


def _kept_instances(masks: list[torch.Tensor], classes: list[torch.Tensor], size: tuple[int, int]) -> Instances:
    """Instances of the placed masks that kept a pixel, boxes from the masks."""
    h, w = size
    all_masks = torch.cat(masks) if masks else torch.zeros((0, h, w), dtype=torch.uint8)
    all_classes = torch.cat(classes) if classes else torch.zeros((0,), dtype=torch.int64)
    keep = all_masks.flatten(1).any(dim=1).bool()
    all_masks, all_classes = all_masks[keep], all_classes[keep]
    return Instances(
        (h, w),
        gt_boxes=torch.from_numpy(mask_boxes(all_masks.numpy())),
        gt_classes=all_classes,
        gt_masks=all_masks,
    )
