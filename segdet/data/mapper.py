"""DatasetMapper: a dataset dict in, the model's input dict out.

Reads the image and its segmentation_image, checks that they fit each other,
augments image, labels and instance masks with one transform, and builds
`sem_seg` (ignore pixels = the ignore value) and the `weight` image.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from fvcore.transforms.transform import Transform

from segdet.config.experiment import instances_enabled, metadata_for_config
from segdet.data.class_weights import weight_image
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.data.transforms.augmentation import Augmentation, apply_augmentations, with_segmentation_fill
from segdet.errors import ConfigError, DataError
from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes, segmentation_to_mask
from segdet.utils.image_io import read_image

logger = logging.getLogger(__name__)

# Segmentation fill used while transforming: never a class id (Metadata allows at
# most 255 classes, ids 0..254); turned into the ignore value at the end.
_PAD = 255


class DatasetMapper:
    """Callable turning a dataset dict into a model input dict (ARCHITECTURE.md, "Model input dict").

    The output is a copy of the dataset dict (every key kept, as detectron2's mapper does),
    extended with `image` (uint8 3xHxW RGB, after the augmentations) and, in training,
    `sem_seg` (int64 HxW, ignore-class and padding pixels = `ignore_value`), `weight`
    (float32 HxW, class weight per pixel, 0 on ignore pixels) and, with `instances_on`,
    `instances` (an `Instances` with `gt_boxes` float32 Nx4 XYXY, `gt_classes` int64 class
    ids, `gt_masks` uint8 NxHxW; the raw `annotations` are then dropped). `height` and `width` are the original image size.
    At test time the labels are not read: the evaluators read them, at the original size.
    """

    def __init__(
        self,
        is_train: bool,
        augmentations: Sequence[Augmentation],
        metadata: Metadata,
        ignore_class_ids: Sequence[int],
        ignore_value: int = 255,
        class_weights: Optional[Sequence[float]] = None,
        merge_into_background: Sequence[int] = (),
        background_class_id: int = 0,
        instances_on: bool = False,
    ):
        """
        Args:
            is_train: training reads the labels and builds `sem_seg`, `weight` and
                `instances`; at test time they are left to the evaluators.
            augmentations: applied in order to image, labels and masks.
            metadata: classes and label encoding of the dataset.
            ignore_class_ids: classes whose pixels become `ignore_value`.
            ignore_value: value of ignore pixels in `sem_seg`; must not be a class id.
            class_weights: one weight per class; None = all 1. Ignore classes weigh 0.
            merge_into_background: class ids relabeled as `background_class_id`.
            background_class_id: the class that merged classes become.
            instances_on: build `instances` from the dict's `annotations`.
        """
        n = metadata.num_classes
        self.is_train = is_train
        self.augmentations = list(augmentations)
        self.metadata = metadata
        self.codec = LabelCodec(metadata)
        self.ignore_class_ids = sorted({int(c) for c in ignore_class_ids})
        self.ignore_value = int(ignore_value)
        self.merge_into_background = sorted({int(c) for c in merge_into_background})
        self.background_class_id = int(background_class_id)
        self.instances_on = instances_on
        for key, ids in (("ignore class ids", self.ignore_class_ids),
                         ("merge-into-background ids", self.merge_into_background),
                         ("background class id", [self.background_class_id])):
            bad = [c for c in ids if not 0 <= c < n]
            if bad:
                raise ConfigError(f"DatasetMapper: {key} {bad} are not class ids 0..{n - 1} of {metadata.class_names}")
        if 0 <= self.ignore_value < n:
            raise ConfigError(f"DatasetMapper: ignore value {self.ignore_value} is a class id (0..{n - 1})")
        if self.background_class_id in self.merge_into_background:
            self.merge_into_background.remove(self.background_class_id)
        if class_weights is None:
            class_weights = [1.0] * n
        if len(class_weights) != n:
            raise ConfigError(
                f"DatasetMapper: {len(class_weights)} class weights for {n} classes {metadata.class_names}"
            )
        self.class_weights = [0.0 if c in self.ignore_class_ids else float(w) for c, w in enumerate(class_weights)]
        # One lookup per pixel turns transformed class ids (and the padding fill)
        # into sem_seg values.
        self._sem_lut = np.arange(256, dtype=np.int64)
        self._sem_lut[self.ignore_class_ids] = self.ignore_value
        self._sem_lut[_PAD] = self.ignore_value
        self._merge_lut = np.arange(256, dtype=np.uint8)
        self._merge_lut[self.merge_into_background] = self.background_class_id
        self._thing_ids = set(metadata.thing_class_ids)

    @classmethod
    def from_config(cls, cfg, is_train: bool, metadata: Metadata,
                    class_weights: Optional[Sequence[float]] = None) -> "DatasetMapper":
        """A mapper as the config says (augmentations from INPUT.*, ignore ids, merging)."""
        from segdet.data.transforms.augmentation import build_augmentations

        metadata = metadata_for_config(cfg, metadata)
        return cls(
            is_train=is_train,
            augmentations=build_augmentations(cfg, is_train),
            metadata=metadata,
            ignore_class_ids=metadata.ignore_class_ids,
            ignore_value=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            class_weights=class_weights,
            merge_into_background=cfg.INPUT.MERGE_INTO_BACKGROUND,
            background_class_id=cfg.INPUT.BACKGROUND_CLASS_ID,
            instances_on=instances_enabled(cfg) and bool(metadata.thing_class_ids),
        )

    def __call__(self, dataset_dict: dict, rng: Optional[np.random.Generator] = None) -> dict[str, Any]:
        """Map one dataset dict.

        Args:
            dataset_dict: detectron2-schema dict (not modified).
            rng: the augmentations' only randomness; None = a fresh unseeded one.
        Returns:
            The model input dict.
        """
        if rng is None:
            rng = np.random.default_rng()
        return self.map(dataset_dict, lambda image: apply_augmentations(self.augmentations, image, rng))

    def map(self, dataset_dict: dict, augment: Callable[[np.ndarray], tuple[np.ndarray, Transform]]) -> dict[str, Any]:
        """Map one dataset dict with augmentations drawn by `augment` (`segdet.d2` draws them with
        detectron2's AugmentationList).

        Args:
            dataset_dict: detectron2-schema dict (not modified).
            augment: HxWx3 uint8 image -> (augmented image, the transform to apply to its labels and masks).
        Returns:
            The model input dict.
        """
        d = copy.deepcopy(dataset_dict)
        file_name = d.get("file_name")
        if not file_name:
            raise DataError(f"dataset dict without 'file_name': {dataset_dict!r:.200}")
        image = read_image(file_name)
        h, w = image.shape[:2]
        expected = (d.get("height", h), d.get("width", w))
        if expected != (h, w):
            raise DataError(
                f"image {file_name} is {h}x{w} (HxW) but the dataset says {expected[0]}x{expected[1]}; "
                "was the file replaced after the dataset was indexed?"
            )
        d["height"], d["width"] = h, w
        sem_path = d.get("sem_seg_file_name") if self.is_train else None
        sem_seg = None
        if sem_path:
            sem_seg = self.codec.read(sem_path)
            if sem_seg.shape != (h, w):
                raise DataError(
                    f"label file {sem_path} is {sem_seg.shape[0]}x{sem_seg.shape[1]} (HxW) but its image "
                    f"{file_name} is {h}x{w}"
                )
            if self.merge_into_background:
                sem_seg = self._merge_lut[sem_seg]
        instances = None
        if sem_path and self.instances_on:
            instances = self._decode_instances(d.pop("annotations", None) or [], h, w, file_name)

        image, transforms = augment(image)
        d["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg is None:
            return d
        sem_seg = with_segmentation_fill(transforms, _PAD).apply_segmentation(sem_seg)
        sem_seg = self._sem_lut[np.asarray(sem_seg, dtype=np.uint8)]
        d["sem_seg"] = torch.from_numpy(sem_seg)
        d["weight"] = torch.from_numpy(weight_image(sem_seg, self.class_weights, self.ignore_value))
        if instances is not None:
            d["instances"] = self._transform_instances(instances, transforms, image.shape[:2])
        return d

    def _decode_instances(self, annotations: list[dict], h: int, w: int, file_name: str):
        """(class ids, HxW uint8 masks) of the non-crowd annotations that are kept."""
        classes, masks = [], []
        for k, ann in enumerate(annotations):
            if ann.get("iscrowd", 0):
                continue
            cat = ann.get("category_id")
            if cat in self.merge_into_background:
                continue
            if cat not in self._thing_ids:
                raise DataError(
                    f"image {file_name}: annotation {k} has category_id {cat}, which is not a thing class "
                    f"(thing classes: {sorted(self._thing_ids)}, {self.metadata.class_names})"
                )
            where = f"image {file_name}: annotation {k}"
            if ann.get("segmentation") is None:
                raise DataError(f"{where} has no 'segmentation'; instance masks need polygons or RLE")
            masks.append(segmentation_to_mask(ann["segmentation"], h, w, where).astype(np.uint8))
            classes.append(int(cat))
        return classes, masks

    def _transform_instances(self, instances, transforms, size: tuple[int, int]) -> Instances:
        classes, masks = instances
        mask_tfm = with_segmentation_fill(transforms, 0)
        h, w = size
        transformed = np.zeros((len(masks), h, w), dtype=np.uint8)
        for k, mask in enumerate(masks):
            transformed[k] = mask_tfm.apply_segmentation(mask)
        # Instances cropped or rotated out of the image are dropped.
        keep = transformed.reshape(len(masks), -1).any(axis=1)
        transformed = transformed[keep]
        return Instances(
            (h, w),
            gt_boxes=torch.from_numpy(mask_boxes(transformed)),
            gt_classes=torch.tensor(classes, dtype=torch.int64)[torch.from_numpy(keep)],
            gt_masks=torch.from_numpy(transformed),
        )
