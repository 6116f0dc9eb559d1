"""Augmentations (random) and the deterministic transforms they produce (fvcore)."""
from segdet.data.transforms.augmentation import (
    Augmentation,
    AugmentationList,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    ResizeShortestEdge,
    apply_augmentations,
    build_augmentations,
    with_segmentation_fill,
)
from segdet.data.transforms.rotation import RotationTransform

__all__ = [
    "Augmentation",
    "AugmentationList",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "ResizeShortestEdge",
    "RotationTransform",
    "apply_augmentations",
    "build_augmentations",
    "with_segmentation_fill",
]
