"""The instances of a tiled image: every tile's detections in image coordinates, stitched into one
set, each mask held as a crop over its own extent (never a full-image mask).

The stitching rule (in the spirit of SAHI's greedy non-maximum merging, but comparing masks only
where both tiles see the image):

1. A detection is *cut* when its box comes closer than `edge_margin` pixels to an edge of its
   tile that lies inside the image (its *clearance*, the distance to the nearest such edge, is
   below the margin): the tile may see only part of the object.
2. Two detections of the same class from two overlapping tiles *match* when, inside the band
   both tiles see (the intersection of their windows), their masks have an IoU of at least
   `match_iou`. Inside the band a cut detection holds the same pixels as a whole one of the same
   object, so the IoU there is high for one object seen twice and low for two neighbours.
3. Matches join detections into groups, the best matches (highest IoU) first, as each tile is
   added; a group never holds two detections of one tile (the tile's own NMS kept both, so
   they are two objects).
4. A group becomes one instance. If a member is not cut, the highest-scoring member that is not
   cut (then the one with the largest clearance), as its tile saw it: box, mask, score; an
   object near one tile's edge is taken from a tile that sees it whole. If every member is cut
   (no tile holds the whole object), the union of their masks and boxes, with the highest score.
5. Such a cut-only instance is dropped when another tile holds its whole box at a clearance of
   at least `edge_margin`: that tile saw the place with no border near and found nothing that
   matches, so the cut detection is a duplicate (a detector shown part of an object often adds
   a second, partial box of it, or one box over two cut neighbours).

Memory: a group can grow only while later tiles reach its rows; tiles come row by row, so after a
row of tiles the groups above the next row are resolved (`finish_above`) and only the kept
instance's crop is held from then on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from segdet.errors import ConfigError, DataError
from segdet.structures.cropped_masks import CroppedMasks, Region, instance_mask_crops
from segdet.structures.instances import Instances
from segdet.utils.arrays import to_numpy

MATCH_IOU = 0.5
EDGE_MARGIN = 4


@dataclass
class TileDetection:
    """One detection of one tile, in image coordinates."""

    tile: int
    box: np.ndarray  # (4,) float32 XYXY
    score: float
    class_id: int
    crop: np.ndarray  # bool, over `extent`
    extent: Region  # (y0, x0, y1, x1) of the crop
    clearance: float  # pixels between the box and the nearest inner edge of the tile (inf: none)


def _intersection(a: Region, b: Region) -> Optional[Region]:
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def _cover(regions: list[Region]) -> Region:
    return (min(r[0] for r in regions), min(r[1] for r in regions),
            max(r[2] for r in regions), max(r[3] for r in regions))


def _paste(d: TileDetection, region: Region) -> np.ndarray:
    """Detection d's mask inside `region`, bool."""
    out = np.zeros((region[2] - region[0], region[3] - region[1]), dtype=bool)
    part = _intersection(d.extent, region)
    if part is not None:
        y0, x0, y1, x1 = part
        out[y0 - region[0]:y1 - region[0], x0 - region[1]:x1 - region[1]] = \
            d.crop[y0 - d.extent[0]:y1 - d.extent[0], x0 - d.extent[1]:x1 - d.extent[1]]
    return out


def band_iou(a: TileDetection, b: TileDetection, band: Region) -> float:
    """IoU of two detections' masks counted inside `band` only; 0 when neither has a pixel there."""
    extents = [e for e in (_intersection(a.extent, band), _intersection(b.extent, band)) if e is not None]
    if len(extents) < 2 or _intersection(*extents) is None:
        return 0.0
    region = _cover(extents)
    mask_a, mask_b = _paste(a, region), _paste(b, region)
    union = int(np.count_nonzero(mask_a | mask_b))
    return int(np.count_nonzero(mask_a & mask_b)) / union if union else 0.0


def clearance(box: np.ndarray, window: Region, image_size: tuple[int, int]) -> float:
    """Pixels between an XYXY box and the nearest edge of its tile `window` that lies inside the
    image (edges on the image border do not cut anything); inf when the tile has none."""
    y0, x0, y1, x1 = window
    height, width = image_size
    gaps = []
    if y0 > 0:
        gaps.append(box[1] - y0)
    if x0 > 0:
        gaps.append(box[0] - x0)
    if y1 < height:
        gaps.append(y1 - box[3])
    if x1 < width:
        gaps.append(x1 - box[2])
    return float(min(gaps)) if gaps else math.inf


class InstanceStitcher:
    """Collects the detections of the tiles of one image and stitches them (the module's rule).

    Usage:
        stitcher = InstanceStitcher((height, width))
        for each row of tiles:
            for window, instances in row: stitcher.add_tile(window, instances)   # tile coordinates
            stitcher.finish_above(first row of the next row of tiles)
        instances = stitcher.result()
    """

    def __init__(self, image_size: tuple[int, int], match_iou: float = MATCH_IOU, edge_margin: float = EDGE_MARGIN):
        if not 0 < match_iou <= 1:
            raise ConfigError(f"tile instance match IoU {match_iou}: expected a value in (0, 1]")
        if edge_margin < 0:
            raise ConfigError(f"tile edge margin {edge_margin}: expected >= 0 pixels")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.match_iou = float(match_iou)
        self.edge_margin = float(edge_margin)
        self._windows: list[Region] = []
        self._live: dict[int, TileDetection] = {}  # detections of groups still open
        # Per tile with open detections: their ids, extents (n x 4) and classes, for matching.
        self._open_tiles: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._parent: dict[int, int] = {}
        self._members: dict[int, list[int]] = {}  # group root -> detection ids
        self._tiles: dict[int, set[int]] = {}  # group root -> tiles of its members
        self._next_id = 0
        self._kept: list[TileDetection] = []

    @property
    def num_open(self) -> int:
        """Detections held in groups not resolved yet."""
        return len(self._live)

    def add_tile(self, window: Region, instances: Instances) -> None:
        """Add the detections of the tile `window` (y0, x0, y1, x1), given in the tile's
        coordinates (`pred_boxes`, `scores`, `pred_classes`, masks), and match them against the
        open detections of the tiles it overlaps."""
        tile = len(self._windows)
        window = tuple(int(v) for v in window)
        self._windows.append(window)
        y0, x0 = window[0], window[1]
        boxes = to_numpy(instances.pred_boxes).reshape(-1, 4).astype(np.float32) + \
            np.array([x0, y0, x0, y0], dtype=np.float32)
        scores = to_numpy(instances.scores).reshape(-1)
        classes = to_numpy(instances.pred_classes).reshape(-1)
        crops = instance_mask_crops(instances)
        if crops is None and len(boxes):
            raise DataError(f"tile {window}: detections without masks; stitching tiles needs instance masks")
        new = []
        for k in range(len(boxes)):
            r = crops.region(k)
            detection = TileDetection(tile, boxes[k], float(scores[k]), int(classes[k]), crops.crop(k),
                                      (r[0] + y0, r[1] + x0, r[2] + y0, r[3] + x0),
                                      clearance(boxes[k], window, self.image_size))
            new.append(self._add(detection))
        self._match(tile, new)
        if new:
            self._open_tiles[tile] = (np.asarray(new), np.asarray([self._live[i].extent for i in new]),
                                      np.asarray([self._live[i].class_id for i in new]))

    def _add(self, detection: TileDetection) -> int:
        i = self._next_id
        self._next_id += 1
        self._live[i] = detection
        self._parent[i] = i
        self._members[i] = [i]
        self._tiles[i] = {detection.tile}
        return i

    def _find(self, i: int) -> int:
        while self._parent[i] != i:
            self._parent[i] = self._parent[self._parent[i]]
            i = self._parent[i]
        return i

    def _match(self, tile: int, new: list[int]) -> None:
        if not new:
            return
        window = self._windows[tile]
        extents = np.asarray([self._live[i].extent for i in new])
        classes = np.asarray([self._live[i].class_id for i in new])
        pairs = []
        for other_tile, (ids, other_extents, other_classes) in self._open_tiles.items():
            band = _intersection(window, self._windows[other_tile])
            if band is None:
                continue
            # Candidates: same class, overlapping mask extents (an IoU > 0 needs both).
            candidates = (classes[:, None] == other_classes[None, :]) & \
                (np.maximum(extents[:, None, 0], other_extents[None, :, 0]) <
                 np.minimum(extents[:, None, 2], other_extents[None, :, 2])) & \
                (np.maximum(extents[:, None, 1], other_extents[None, :, 1]) <
                 np.minimum(extents[:, None, 3], other_extents[None, :, 3]))
            for a, b in zip(*np.nonzero(candidates)):
                i, j = new[a], int(ids[b])
                if j not in self._live:
                    continue
                iou = band_iou(self._live[i], self._live[j], band)
                if iou >= self.match_iou:
                    pairs.append((iou, i, j))
        # Best matches first; ties in the order the detections came.
        for _, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
            a, b = self._find(i), self._find(j)
            if a == b or self._tiles[a] & self._tiles[b]:
                continue
            if len(self._members[a]) < len(self._members[b]):
                a, b = b, a
            self._parent[b] = a
            self._members[a] += self._members.pop(b)
            self._tiles[a] |= self._tiles.pop(b)

    def finish_above(self, row: int) -> None:
        """Resolve the groups whose masks all end above image row `row`: no later tile (all start
        at `row` or below) can add to them."""
        for root in [r for r in self._members if all(self._live[i].extent[2] <= row for i in self._members[r])]:
            self._resolve(root)

    def _resolve(self, root: int) -> None:
        members = [self._live.pop(i) for i in self._members.pop(root)]
        for tile in self._tiles.pop(root):
            ids = self._open_tiles.get(tile)
            if ids is not None and not any(int(i) in self._live for i in ids[0]):
                del self._open_tiles[tile]
        instance = self.merge(members)
        if instance.clearance >= self.edge_margin or not self._seen_whole_elsewhere(instance.box):
            self._kept.append(instance)

    def _seen_whole_elsewhere(self, box: np.ndarray) -> bool:
        """Whether a tile holds the box at a clearance of at least the margin (rule 5). Every tile
        that can is known when a group is resolved: later tiles start below it."""
        windows = np.asarray(self._windows, dtype=np.float64)
        y0, x0, y1, x1 = windows.T
        holds = (y0 <= box[1]) & (x0 <= box[0]) & (box[3] <= y1) & (box[2] <= x1)
        for w in windows[holds]:  # a few tiles at most
            if clearance(box, tuple(int(v) for v in w), self.image_size) >= self.edge_margin:
                return True
        return False

    def merge(self, members: list[TileDetection]) -> TileDetection:
        """One instance of a group (rule 4 of the module docstring); its clearance is below the
        margin when every member is cut."""
        whole = [d for d in members if d.clearance >= self.edge_margin]
        if whole:
            return max(whole, key=lambda d: (d.score, d.clearance))
        if len(members) == 1:
            return members[0]
        extent = _cover([d.extent for d in members if d.crop.size] or [members[0].extent])
        crop = np.zeros((extent[2] - extent[0], extent[3] - extent[1]), dtype=bool)
        for d in members:
            crop |= _paste(d, extent)
        boxes = np.stack([d.box for d in members])
        box = np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)]).astype(np.float32)
        best = max(members, key=lambda d: d.score)
        return TileDetection(best.tile, box, best.score, best.class_id, crop, extent, best.clearance)

    def result(self) -> Instances:
        """All instances (every open group resolved), by decreasing score: `pred_boxes`, `scores`,
        `pred_classes` (CPU tensors) and `pred_mask_crops`."""
        self.finish_above(self.image_size[0])
        kept = [self._kept[k] for k in np.argsort([-d.score for d in self._kept], kind="stable")]
        boxes = np.stack([d.box for d in kept]).astype(np.float32) if kept else np.zeros((0, 4), np.float32)
        masks = CroppedMasks(self.image_size, [d.crop for d in kept],
                             np.asarray([d.extent[:2] for d in kept], dtype=np.int64).reshape(-1, 2))
        return Instances(self.image_size, pred_boxes=torch.from_numpy(boxes),
                         scores=torch.tensor([d.score for d in kept], dtype=torch.float32),
                         pred_classes=torch.tensor([d.class_id for d in kept], dtype=torch.int64),
                         pred_mask_crops=masks)
