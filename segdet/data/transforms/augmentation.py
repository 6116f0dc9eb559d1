"""Random augmentations that produce deterministic fvcore transforms.

An `Augmentation` looks at an image and draws its parameters from the
`np.random.Generator` it is given (never from global random state), and returns
an fvcore `Transform`. The transform is then applied identically to the image,
its segmentation map and its instance masks, so they stay aligned. Drawing only
from the given generator is what makes data-loader workers and resumed runs
reproducible.

Geometric transforms that uncover pixels (padding, rotation) fill images with 0
and segmentations with their `seg_pad_value` (the ignore value, never a class);
`with_segmentation_fill` gives a copy of a transform with another fill (0 for
instance masks).
"""
from __future__ import annotations

import abc

import copy
import logging
from typing import Sequence

import numpy as np
from fvcore.transforms.transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    ScaleTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

from segdet.data.transforms.rotation import RotationTransform
from segdet.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "Augmentation",
    "AugmentationList",
    "ResizeShortestEdge",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomBrightness",
    "RandomContrast",
    "apply_augmentations",
    "with_segmentation_fill",
    "build_augmentations",
]


class Augmentation(abc.ABC):
    """Draws a deterministic Transform for one image."""

    @abc.abstractmethod
    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        """
        Args:
            image: HxWxC (or HxW) array the transform will apply to.
            rng: the only source of randomness.
        Returns:
            An fvcore Transform.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def apply_augmentations(
    augmentations: Sequence[Augmentation], image: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, TransformList]:
    """Apply augmentations one after another; each sees the image the previous ones produced.

    Returns:
        (augmented image, the TransformList to apply to the labels of the image).
    """
    transforms: list[Transform] = []
    for aug in augmentations:
        tfm = aug.get_transform(image, rng)
        image = tfm.apply_image(image)
        transforms.append(tfm)
    return image, TransformList(transforms)


class AugmentationList(Augmentation):
    """Several augmentations applied in order, as one."""

    def __init__(self, augmentations: Sequence[Augmentation]):
        self.augmentations = list(augmentations)

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> TransformList:
        return apply_augmentations(self.augmentations, image, rng)[1]

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, TransformList]:
        """(augmented image, TransformList); cheaper than get_transform + apply_image."""
        return apply_augmentations(self.augmentations, image, rng)


def with_segmentation_fill(transform: Transform, fill: float) -> Transform:
    """A copy of `transform` that fills uncovered segmentation pixels with `fill`.

    Transforms with a `seg_pad_value` (PadTransform, RotationTransform) are copied
    with the new value; the others are shared unchanged.
    """
    if isinstance(transform, TransformList):
        return TransformList([with_segmentation_fill(t, fill) for t in transform.transforms])
    if hasattr(transform, "seg_pad_value"):
        transform = copy.copy(transform)
        transform.seg_pad_value = fill
    return transform


class ResizeShortestEdge(Augmentation):
    """Resize so the short edge has a drawn length, the long edge at most `max_size`.

    A drawn length of 0 leaves the image as it is.
    """

    def __init__(self, short_edge_lengths: int | Sequence[int], max_size: int = 0, sample_style: str = "choice"):
        """
        Args:
            short_edge_lengths: candidate lengths ("choice") or [min, max] ("range").
            max_size: upper bound of the long edge; 0 = none.
            sample_style: "choice" or "range".
        """
        if isinstance(short_edge_lengths, int):
            short_edge_lengths = (short_edge_lengths,)
        self.short_edge_lengths = tuple(int(s) for s in short_edge_lengths)
        self.max_size = int(max_size)
        self.sample_style = sample_style
        if sample_style not in ("choice", "range"):
            raise ConfigError(f"ResizeShortestEdge: sample_style {sample_style!r}; expected 'choice' or 'range'")
        if not self.short_edge_lengths or min(self.short_edge_lengths) < 0:
            raise ConfigError(f"ResizeShortestEdge: short edge lengths {self.short_edge_lengths} must be >= 0")
        if sample_style == "range" and len(self.short_edge_lengths) != 2:
            raise ConfigError(
                f"ResizeShortestEdge: 'range' sampling needs [min, max], got {list(self.short_edge_lengths)}"
            )

    @staticmethod
    def scale(h: int, w: int, short_edge: int, max_size: int) -> float:
        """The factor that brings the short edge to `short_edge`, the long edge to at most `max_size` (0 = no bound)."""
        scale = short_edge / min(h, w)
        if max_size > 0 and max(h, w) * scale > max_size:
            scale = max_size / max(h, w)
        return scale

    @staticmethod
    def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
        """(h, w) times `scale`, rounded as the resize rounds: also for a part of an image (a tile)
        scaled by its whole image's factor."""
        return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))

    @staticmethod
    def output_size(h: int, w: int, short_edge: int, max_size: int) -> tuple[int, int]:
        """(new_h, new_w) for a short edge length and a long-edge bound."""
        return ResizeShortestEdge.scaled_size(h, w, ResizeShortestEdge.scale(h, w, short_edge, max_size))

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        if self.sample_style == "range":
            size = int(rng.integers(self.short_edge_lengths[0], self.short_edge_lengths[1] + 1))
        else:
            size = int(self.short_edge_lengths[int(rng.integers(len(self.short_edge_lengths)))])
        if size == 0:
            return NoOpTransform()
        new_h, new_w = self.output_size(h, w, size, self.max_size)
        if (new_h, new_w) == (h, w):
            return NoOpTransform()
        return ScaleTransform(h, w, new_h, new_w, interp="bilinear")


class RandomCrop(Augmentation):
    """Crop a random crop_h x crop_w window; smaller images are padded first.

    Padding goes to the bottom and right: images get 0, segmentations get
    `seg_pad_value` (the ignore value).
    """

    def __init__(self, crop_h: int, crop_w: int, seg_pad_value: int = 255):
        if crop_h <= 0 or crop_w <= 0:
            raise ConfigError(f"RandomCrop: crop size {crop_h}x{crop_w} must be > 0")
        self.crop_h = int(crop_h)
        self.crop_w = int(crop_w)
        self.seg_pad_value = seg_pad_value

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        transforms: list[Transform] = []
        pad_h, pad_w = max(self.crop_h - h, 0), max(self.crop_w - w, 0)
        if pad_h or pad_w:
            transforms.append(
                PadTransform(0, 0, pad_w, pad_h, orig_w=w, orig_h=h, pad_value=0, seg_pad_value=self.seg_pad_value)
            )
            h, w = h + pad_h, w + pad_w
        y0 = int(rng.integers(0, h - self.crop_h + 1))
        x0 = int(rng.integers(0, w - self.crop_w + 1))
        transforms.append(CropTransform(x0, y0, self.crop_w, self.crop_h, orig_w=w, orig_h=h))
        return TransformList(transforms)


class RandomFlip(Augmentation):
    """Flip horizontally and/or vertically, each with probability `prob`.

    direction "both" draws the horizontal and the vertical flip independently.
    """

    DIRECTIONS = ("horizontal", "vertical", "both", "none")

    def __init__(self, direction: str = "horizontal", prob: float = 0.5):
        if direction not in self.DIRECTIONS:
            raise ConfigError(f"RandomFlip: direction {direction!r}; expected one of {list(self.DIRECTIONS)}")
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"RandomFlip: probability {prob} must be in [0, 1]")
        self.direction = direction
        self.prob = float(prob)

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        transforms: list[Transform] = []
        # Always draw both numbers so the rng stream does not depend on the outcome.
        do_h, do_v = rng.random() < self.prob, rng.random() < self.prob
        if self.direction in ("horizontal", "both") and do_h:
            transforms.append(HFlipTransform(w))
        if self.direction in ("vertical", "both") and do_v:
            transforms.append(VFlipTransform(h))
        return TransformList(transforms) if transforms else NoOpTransform()


class RandomRotation(Augmentation):
    """Rotate by an angle drawn uniformly from `angle_range` (degrees, counter-clockwise).

    The image keeps its size; uncovered pixels are 0 in the image and
    `seg_pad_value` (the ignore value) in segmentations.
    """

    def __init__(self, angle_range: Sequence[float], seg_pad_value: int = 255):
        if len(angle_range) != 2 or angle_range[0] > angle_range[1]:
            raise ConfigError(f"RandomRotation: angle range {list(angle_range)}; expected [low, high]")
        self.angle_range = (float(angle_range[0]), float(angle_range[1]))
        self.seg_pad_value = seg_pad_value

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        angle = float(rng.uniform(*self.angle_range))
        return RotationTransform(h, w, angle, pad_value=0, seg_pad_value=self.seg_pad_value)


def _check_factor_range(name: str, low: float, high: float) -> tuple[float, float]:
    if low < 0 or low > high:
        raise ConfigError(f"{name}: factor range [{low}, {high}]; expected 0 <= low <= high")
    return float(low), float(high)


class RandomBrightness(Augmentation):
    """Multiply the image by a factor drawn from [low, high] (image only)."""

    def __init__(self, low: float, high: float):
        self.low, self.high = _check_factor_range("RandomBrightness", low, high)

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        factor = float(rng.uniform(self.low, self.high))
        # factor * image + (1 - factor) * 0
        return BlendTransform(src_image=np.float32(0.0), src_weight=1.0 - factor, dst_weight=factor)


class RandomContrast(Augmentation):
    """Scale the distance to the image's mean gray value by a factor from [low, high] (image only)."""

    def __init__(self, low: float, high: float):
        self.low, self.high = _check_factor_range("RandomContrast", low, high)

    def get_transform(self, image: np.ndarray, rng: np.random.Generator) -> Transform:
        factor = float(rng.uniform(self.low, self.high))
        if image.ndim == 3 and image.shape[2] == 3:
            mean = float((image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
        else:
            mean = float(image.astype(np.float32).mean())
        return BlendTransform(src_image=np.float32(mean), src_weight=1.0 - factor, dst_weight=factor)


def build_augmentations(cfg, is_train: bool) -> list[Augmentation]:
    """Augmentations from the INPUT.* config keys.

    Training: resize (MIN_SIZE_TRAIN...), rotation, crop, flip, brightness, contrast,
    each only when enabled. Test: the resize only (MIN_SIZE_TEST / MAX_SIZE_TEST).
    """
    inp = cfg.INPUT
    if not is_train:
        return [ResizeShortestEdge(inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST, "choice")] if inp.MIN_SIZE_TEST else []
    ignore_value = cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE
    augs: list[Augmentation] = []
    sizes = inp.MIN_SIZE_TRAIN
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    if any(s > 0 for s in sizes):
        augs.append(ResizeShortestEdge(sizes, inp.MAX_SIZE_TRAIN, inp.MIN_SIZE_TRAIN_SAMPLING))
    if inp.ROTATION.ENABLED:
        augs.append(RandomRotation(inp.ROTATION.ANGLE_RANGE, seg_pad_value=ignore_value))
    if inp.CROP.ENABLED:
        if inp.CROP.TYPE != "absolute":
            raise ConfigError(f"config key INPUT.CROP.TYPE = {inp.CROP.TYPE!r}; only 'absolute' is supported")
        augs.append(RandomCrop(inp.CROP.SIZE[0], inp.CROP.SIZE[1], seg_pad_value=ignore_value))
    if inp.RANDOM_FLIP != "none":
        augs.append(RandomFlip(inp.RANDOM_FLIP))
    if tuple(inp.BRIGHTNESS) != (1.0, 1.0):
        augs.append(RandomBrightness(*inp.BRIGHTNESS))
    if tuple(inp.CONTRAST) != (1.0, 1.0):
        augs.append(RandomContrast(*inp.CONTRAST))
    logger.debug("%s augmentations: %s", "training" if is_train else "test", augs)
    return augs
