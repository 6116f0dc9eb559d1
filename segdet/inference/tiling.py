"""Sliding-window (tiled) inference, semantic and instances, for images too large for one forward pass.

The image is cut into overlapping tiles of `tile_size` network-input pixels (default
overlap 50%, as DeepDIVA does at test time). The last tile of a row or column is shifted
back inside the image so that it ends at the border: every tile is full-size image
content, never zero padding. Each tile's class scores come from the model's own semantic path
(`batch_scores` -> `semantic_scores`: logits -> class weight correction -> softmax, ignore
classes at 0), the same as whole-image inference; with test-time augmentation (TEST.AUG) they
are the mean over its variants, each tile scaled by the factor its whole image would be
(`modeling.test_time_augmentation`). They are merged:

- "max": the elementwise maximum over the tiles that cover a pixel (DeepDIVA's "keep the
  maximum activation");
- "mean": a weighted average, each tile weighted by a pyramid window (1 at its centre,
  falling linearly to a small positive value at its border) so that a tile's uncertain
  border pixels count little and the blend has no visible seams.

Memory: tiles are processed row by row, a few at a time, into a band accumulator of
C x tile_height x W float32 (plus tile_height x W weights for "mean"). Once a row of tiles
is done, the image rows that no later tile touches are final: their segmentation_image and
segmentation_confidence are computed and the band moves down, both a tile's width of
columns at a time so that their temporaries do not grow with the image. Besides the band
and the tiles in flight, only the outputs are held: segmentation_image (int64) and
segmentation_confidence (float32), 12 bytes per pixel, and, when `return_scores` is set,
the merged scores `sem_seg` (4 * C bytes per pixel). For an 8000x8000 image that is
768 MB of outputs (+1.0 GB of scores for 4 classes). Measured: tools/predict.py on an
8000x8000 JPEG, tiles of 512, ResNet-18 model, all output files: peak RSS 2.8 GB.

Instances (models with the instance branch, `has_instances`): every tile also goes through the
detector, on the same backbone features as its scores; its detections are mapped to image
coordinates, masks held as crops over their boxes (`structures.cropped_masks`), and stitched
into one set by `segdet.inference.tile_instances` (the rule is there): an object seen by two
tiles, or cut by a tile's border, becomes one instance. Groups of detections are resolved row of
tiles by row of tiles, as the band moves down. Then the panoptic fusion (`panoptic_seg`, when the
model's fusion is on) runs over the whole image, on the crops, a band of rows at a time. Outputs
then add panoptic_seg (int32, 4 bytes per pixel) and the instances, whose crops hold their
objects' boxes, not the image: working memory stays flat in the image size.

Instances need overlapping tiles: without overlap no two tiles see the same pixels, and an object
a tile border cuts stays in two pieces (a warning says so).

Where the (test-resized) image fits in one tile, the result is exactly that of
whole-image inference (instances as crops).
"""
from __future__ import annotations

import logging
import math
from typing import Optional, Sequence

import numpy as np
import torch
from fvcore.transforms.transform import ScaleTransform

from segdet.data.transforms.augmentation import ResizeShortestEdge
from segdet.errors import ConfigError, DataError
from segdet.inference.tile_instances import EDGE_MARGIN, MATCH_IOU, InstanceStitcher
from segdet.modeling.postprocess import segmentation_from_scores
from segdet.structures.instances import Instances
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

MERGE_MODES = ("max", "mean")
_warned = {"no_overlap": False, "resized_into_one_tile": False}  # once per process, not once per image

Window = tuple[int, int, int, int]


def _check_tiling(tile_size: int | Sequence[int], overlap: float) -> tuple[int, int]:
    sizes = (tile_size, tile_size) if isinstance(tile_size, (int, np.integer)) else tuple(tile_size)
    if len(sizes) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
        raise ConfigError(f"tile size {tile_size!r}: expected a positive number of pixels (or [height, width])")
    if not 0 <= overlap < 1:
        raise ConfigError(f"tile overlap {overlap}: expected a fraction in [0, 1), e.g. 0.5")
    return int(sizes[0]), int(sizes[1])


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of the tiles along one axis.

    The stride is floor(tile * (1 - overlap)) (at least 1), so the overlap is never less
    than asked for; the last tile is shifted to end exactly at `length`. One tile at 0
    when the axis fits in a tile.
    """
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _column_chunks(width: int, step: int) -> list[tuple[int, int]]:
    return [(x, min(x + step, width)) for x in range(0, width, step)]


def tile_windows(height: int, width: int, tile_size: int | Sequence[int], overlap: float = 0.5) -> list[Window]:
    """The tiles covering a height x width image, row by row.

    Args:
        height, width: image size.
        tile_size: tile side in pixels, or (tile_height, tile_width).
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
    Returns:
        (y0, x0, y1, x1) windows, all of size min(tile_h, height) x min(tile_w, width);
        a single (0, 0, height, width) when the image fits in one tile.
    """
    tile_h, tile_w = _check_tiling(tile_size, overlap)
    if height <= 0 or width <= 0:
        raise DataError(f"cannot tile an empty image of {height}x{width} pixels")
    th, tw = min(tile_h, height), min(tile_w, width)
    return [(y0, x0, y0 + th, x0 + tw)
            for y0 in tile_starts(height, tile_h, overlap)
            for x0 in tile_starts(width, tile_w, overlap)]


def window_ramp(length: int) -> torch.Tensor:
    """1D pyramid weights: min(i + 1, length - i) / ceil(length / 2); 1 in the middle, > 0 at the ends."""
    i = torch.arange(length, dtype=torch.float32)
    return torch.minimum(i + 1, length - i) / math.ceil(length / 2)


def tile_weight(height: int, width: int) -> torch.Tensor:
    """(height, width) weight of a tile's pixels in "mean" merging: the outer product of two ramps."""
    return window_ramp(height)[:, None] * window_ramp(width)[None, :]


class TiledSegmenter:
    """Segmentation (and instances) of an image of any size, tile by tile.

    Usage:
        segmenter = TiledSegmenter(model, tile_size=512, overlap=0.5, merge="max")
        output = segmenter(image_rgb)   # sem_seg, segmentation_image, segmentation_confidence
                                        # and, for a PanopticFPN, instances and panoptic_seg
    """

    def __init__(self, model: torch.nn.Module, tile_size: int, overlap: float = 0.5, merge: str = "max",
                 batch_size: int = 4, test_min_size: int = 0, test_max_size: int = 0,
                 match_iou: float = MATCH_IOU, edge_margin: float = EDGE_MARGIN):
        """
        Args:
            model: a SemanticSegmentor or PanopticFPN in eval mode. Its semantic path:
                `preprocess_image`, `batch_scores` (with TEST.AUG's variants when the model
                has them), `ignore_class_ids`; with `has_instances`, also
                `logits_and_detections`, `instances_result`, `combine_on` and `panoptic_result`.
            tile_size: tile side in network-input pixels (after the test-time resize).
            overlap: fraction of a tile shared with its neighbour, in [0, 1).
            merge: "max" or "mean".
            batch_size: tiles per forward pass.
            test_min_size, test_max_size: the test-time resize (INPUT.MIN_SIZE_TEST /
                MAX_SIZE_TEST; 0 = none). Tiles are cut from the original image and each is
                resized by the factor the whole image would be resized by.
            match_iou, edge_margin: the instance stitching rule's settings
                (`segdet.inference.tile_instances`).
        """
        self.tile_h, self.tile_w = _check_tiling(tile_size, overlap)
        if merge not in MERGE_MODES:
            raise ConfigError(f"tile merge mode {merge!r}; expected one of {list(MERGE_MODES)}")
        if batch_size < 1:
            raise ConfigError(f"tile batch size {batch_size}; must be >= 1")
        self.model = model
        self.overlap = float(overlap)
        self.merge = merge
        self.batch_size = int(batch_size)
        self.test_min_size = int(test_min_size)
        self.test_max_size = int(test_max_size)
        self.instances_on = bool(getattr(model, "has_instances", False))
        self.match_iou = float(match_iou)
        self.edge_margin = float(edge_margin)
        if self.instances_on and self.overlap == 0 and not _warned["no_overlap"]:
            logger.warning("Tiles without overlap: an object that a tile border cuts stays in pieces (instances are "
                           "stitched where tiles overlap); set an overlap, e.g. TEST.TILE_OVERLAP 0.5")
            _warned["no_overlap"] = True

    @classmethod
    def from_config(cls, cfg, model: torch.nn.Module, tile_size: int | None = None, overlap: float | None = None,
                    merge: str | None = None, batch_size: int = 4) -> "TiledSegmenter":
        """TEST.TILE_SIZE / TILE_OVERLAP / TILE_MERGE and the test-time resize; arguments override the config."""
        return cls(model, tile_size if tile_size is not None else cfg.TEST.TILE_SIZE,
                   overlap if overlap is not None else cfg.TEST.TILE_OVERLAP,
                   merge or cfg.TEST.TILE_MERGE, batch_size, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)

    def resize_scale(self, height: int, width: int) -> float:
        """The factor of the test-time resize (ResizeShortestEdge's), 1.0 when there is none."""
        if self.test_min_size <= 0:
            return 1.0
        return ResizeShortestEdge.scale(height, width, self.test_min_size, self.test_max_size)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the whole image after the test-time resize (the network-input size)."""
        if self.test_min_size <= 0:
            return height, width
        return ResizeShortestEdge.output_size(height, width, self.test_min_size, self.test_max_size)

    def windows(self, height: int, width: int) -> list[Window]:
        """Tiles in original-image pixels: `tile_size` network pixels each, or the whole axis
        when the resized image fits in a tile along it."""
        new_h, new_w = self.resized_size(height, width)
        scale = self.resize_scale(height, width)
        tile_h = height if new_h <= self.tile_h else max(1, round(self.tile_h / scale))
        tile_w = width if new_w <= self.tile_w else max(1, round(self.tile_w / scale))
        return tile_windows(height, width, (tile_h, tile_w), self.overlap)

    def fits_one_tile(self, height: int, width: int) -> bool:
        return len(self.windows(height, width)) == 1

    def _warn_if_resized_into_one_tile(self, height: int, width: int) -> None:
        """A large image that the test-time resize shrinks into one tile is predicted whole, at the
        model's test size: most likely not what the user of tiles wants, so say it (once)."""
        if (height <= self.tile_h and width <= self.tile_w) or _warned["resized_into_one_tile"]:
            return
        new_h, new_w = self.resized_size(height, width)
        logger.warning(
            "The test-time resize (INPUT.MIN_SIZE_TEST %d, INPUT.MAX_SIZE_TEST %d) makes this %dx%d image %dx%d, "
            "which fits one tile of %dx%d: it is predicted whole at that size, not tile by tile. To predict a "
            "large image at its own resolution, set INPUT.MIN_SIZE_TEST 0 (and a model trained at that scale)",
            self.test_min_size, self.test_max_size, height, width, new_h, new_w, self.tile_h, self.tile_w)
        _warned["resized_into_one_tile"] = True

    def _network_size(self, th: int, tw: int, height: int, width: int) -> tuple[int, int]:
        """Network-input size of a th x tw tile: the whole image is resized exactly as
        whole-image inference resizes it; a tile by the same factor, rounded the same way."""
        if (th, tw) == (height, width):
            return self.resized_size(height, width)
        scale = self.resize_scale(height, width)
        if scale == 1.0:
            return th, tw
        return ResizeShortestEdge.scaled_size(th, tw, scale)

    def tile_outputs(self, tiles: list[np.ndarray], network_size: tuple[int, int], image_size: tuple[int, int]
                     ) -> tuple[torch.Tensor, Optional[list[Instances]]]:
        """Class scores (B, C, th, tw) of same-size HxWx3 uint8 tiles of an image of `image_size`, at
        the tiles' own size (through the model's `batch_scores`: with TEST.AUG, each tile scaled by
        its image's factors), and, with instances on, each tile's instances in its own coordinates
        (masks as crops)."""
        th, tw = tiles[0].shape[:2]
        inputs = []
        for tile in tiles:
            if network_size != (th, tw):
                tile = ScaleTransform(th, tw, network_size[0], network_size[1], interp="bilinear").apply_image(tile)
            inputs.append({"image": torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1))),
                           "height": th, "width": tw})
        whole_sizes = [tuple(image_size)] * len(tiles)
        if not self.instances_on:
            return torch.stack(self.model.batch_scores(inputs, whole_sizes=whole_sizes)), None
        images = self.model.preprocess_image(inputs)
        logits, detections = self.model.logits_and_detections(images)
        scores = torch.stack(self.model.batch_scores(inputs, images, logits, whole_sizes))
        return scores, [self.model.instances_result(d, size, th, tw, cropped=True)
                        for d, size in zip(detections, images.image_sizes)]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, return_scores: bool = True) -> dict:
        """Segment one image.

        Args:
            image: HxWx3 uint8 RGB.
            return_scores: also return the merged scores `sem_seg` (C x H x W float32); off
                saves 4 * C bytes per pixel.
        Returns:
            {"sem_seg"?, "segmentation_image" (H, W) int64, "segmentation_confidence" (H, W)
            float32}, on the CPU, at the image's size; for a model with instances also
            "instances" (`pred_boxes`, `scores`, `pred_classes`, `pred_mask_crops`) and, with
            its fusion on, "panoptic_seg".
        """
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise DataError(f"tiled inference needs an HxWx3 uint8 RGB array, got "
                            f"{getattr(image, 'dtype', type(image).__name__)} of shape {getattr(image, 'shape', '?')}")
        height, width = image.shape[:2]
        windows = self.windows(height, width)
        stitcher = InstanceStitcher((height, width), self.match_iou, self.edge_margin) if self.instances_on else None
        if len(windows) == 1:
            self._warn_if_resized_into_one_tile(height, width)
            scores, instances = self.tile_outputs([image], self._network_size(height, width, height, width),
                                                  (height, width))
            segmentation, confidence = segmentation_from_scores(scores[0], self.model.ignore_class_ids)
            out = {"segmentation_image": segmentation.cpu(), "segmentation_confidence": confidence.cpu()}
            if return_scores:
                out["sem_seg"] = scores[0].cpu()
            if stitcher is not None:
                stitcher.add_tile(windows[0], instances[0])
        else:
            out = self._merge_tiles(image, windows, return_scores, stitcher)
        if stitcher is not None:
            out["instances"] = stitcher.result()
            if self.model.combine_on:
                out["panoptic_seg"] = self.model.panoptic_result(out["instances"], out["segmentation_image"])
        return out

    def _merge_tiles(self, image: np.ndarray, windows: list[Window], return_scores: bool,
                     stitcher: Optional[InstanceStitcher]) -> dict:
        height, width = image.shape[:2]
        th, tw = windows[0][2] - windows[0][0], windows[0][3] - windows[0][1]
        network_size = self._network_size(th, tw, height, width)
        device = self.model.device
        ignore = self.model.ignore_class_ids
        rows: dict[int, list[Window]] = {}
        for window in windows:
            rows.setdefault(window[0], []).append(window)
        row_starts = sorted(rows)

        segmentation = torch.empty((height, width), dtype=torch.int64)
        confidence = torch.empty((height, width), dtype=torch.float32)
        all_scores: torch.Tensor | None = None
        band: torch.Tensor | None = None  # C x th x width: image rows [band_y0, band_y0 + th)
        band_weight = torch.zeros((th, width), device=device) if self.merge == "mean" else None
        weight = tile_weight(th, tw).to(device) if self.merge == "mean" else None
        band_y0 = 0
        # A large image takes minutes: a progress line (every few seconds) with an ETA.
        progress = Progress(len(windows), f"Tiles of a {height}x{width} image", logger, unit="tiles")
        for r, y0 in enumerate(row_starts):
            if band is not None and y0 > band_y0:
                self._shift(band, band_weight, y0 - band_y0)
            band_y0 = y0
            row = rows[y0]
            for start in range(0, len(row), self.batch_size):
                batch = row[start:start + self.batch_size]
                scores, instances = self.tile_outputs([image[a:c, b:d] for a, b, c, d in batch], network_size,
                                                      (height, width))
                if stitcher is not None:
                    for window, tile_instances in zip(batch, instances):
                        stitcher.add_tile(window, tile_instances)
                if band is None:
                    band = torch.zeros((scores.shape[1], th, width), dtype=torch.float32, device=device)
                    if return_scores:
                        all_scores = torch.empty((scores.shape[1], height, width), dtype=torch.float32)
                for s, (_, x0, _, x1) in zip(scores, batch):
                    if self.merge == "max":
                        # Scores are >= 0 and every pixel is covered, so starting from 0 is exact.
                        band[:, :, x0:x1] = torch.maximum(band[:, :, x0:x1], s)
                    else:
                        band[:, :, x0:x1] += s * weight
                        band_weight[:, x0:x1] += weight
                progress.step(len(batch))
            # Rows above the next row of tiles are final, and so are the instances there.
            end = row_starts[r + 1] if r + 1 < len(row_starts) else height
            if stitcher is not None:
                stitcher.finish_above(end)
            n = end - y0
            for x0, x1 in _column_chunks(width, tw):
                final = band[:, :n, x0:x1]
                if self.merge == "mean":
                    final = final / band_weight[:n, x0:x1]
                seg, conf = segmentation_from_scores(final, ignore)
                segmentation[y0:end, x0:x1] = seg.cpu()
                confidence[y0:end, x0:x1] = conf.cpu()
                if all_scores is not None:
                    all_scores[:, y0:end, x0:x1] = final.cpu()
        out = {"segmentation_image": segmentation, "segmentation_confidence": confidence}
        if all_scores is not None:
            out["sem_seg"] = all_scores
        return out

    @staticmethod
    def _shift(band: torch.Tensor, band_weight: torch.Tensor | None, rows: int) -> None:
        """Move the band down the image by `rows` (<= its height): keep what overlaps, zero the rest."""
        th, width = band.shape[1:]
        keep = th - rows
        if keep > 0:
            # Source and destination overlap: copy through a temporary, a few columns at a time.
            for x0, x1 in _column_chunks(width, th):
                band[:, :keep, x0:x1] = band[:, rows:, x0:x1].clone()
                if band_weight is not None:
                    band_weight[:keep, x0:x1] = band_weight[rows:, x0:x1].clone()
        band[:, keep:] = 0
        if band_weight is not None:
            band_weight[keep:] = 0
