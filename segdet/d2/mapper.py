"""SegdetDatasetMapper: a dataset dict of detectron2's catalog in, detectron2's model input out.

The work is segdet's `DatasetMapper` (image and label reading, label validation, merging into
background, ignore classes, weight_image, instance masks); the augmentations are drawn by
detectron2's `AugmentationList` on an `AugInput`, so detectron2's own augmentations can be
mixed with segdet's. The output is detectron2's model input:

    image      uint8 3xHxW, RGB (INPUT.FORMAT must be "RGB")
    sem_seg    int64 HxW, ignore-class and padding pixels = MODEL.SEM_SEG_HEAD.IGNORE_VALUE (training)
    weight     float32 HxW, the weight_image (training)
    instances  detectron2 Instances: gt_boxes, gt_classes (thing indices), gt_masks BitMasks (training)

plus every key of the dataset dict; `height`/`width` are the original size.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import numpy as np
from detectron2.data import transforms as T

from segdet.d2.convert import ThingIds, dict_with_class_ids, to_detectron2_instances
from segdet.data.mapper import DatasetMapper
from segdet.data.transforms.augmentation import Augmentation
from segdet.structures.metadata import Metadata


class SegdetAugmentation(T.Augmentation):
    """One of segdet's augmentations as a detectron2 Augmentation. segdet's draw from the generator
    they are given; this one seeds it from numpy's global state, which is what detectron2's
    augmentations draw from (and what its data loader seeds per worker)."""

    def __init__(self, augmentation: Augmentation):
        super().__init__()
        self.augmentation = augmentation

    def get_transform(self, image: np.ndarray):
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        return self.augmentation.get_transform(image, rng)

    def __repr__(self) -> str:
        return f"SegdetAugmentation({self.augmentation!r})"


class SegdetDatasetMapper:
    """A detectron2 mapper (callable on one dataset dict) built on segdet's DatasetMapper."""

    def __init__(self, mapper: DatasetMapper, augmentations: Sequence[T.Augmentation]):
        """
        Args:
            mapper: segdet's mapper (labels, ignore classes, class weights, instances); its own
                augmentations are not used.
            augmentations: detectron2 Augmentations (or Transforms), applied in order: segdet's
                wrapped in SegdetAugmentation, or detectron2's own.
        """
        self.mapper = mapper
        self.augmentations = T.AugmentationList(list(augmentations))
        self.things = ThingIds(mapper.metadata.thing_class_ids)

    @classmethod
    def from_config(cls, cfg, is_train: bool, metadata: Metadata,
                    class_weights: Optional[Sequence[float]] = None) -> "SegdetDatasetMapper":
        """The mapper the config asks for.

        Args:
            metadata: the experiment's metadata (`segdet.d2.segdet_metadata(cfg)`).
            class_weights: one weight per class (training); None = all 1.
        """
        mapper = DatasetMapper.from_config(cfg, is_train, metadata, class_weights)
        # segdet's augmentations of the INPUT.* keys (same names and meanings as the standalone
        # config), drawn by detectron2's AugmentationList.
        return cls(mapper, [SegdetAugmentation(aug) for aug in mapper.augmentations])

    def _augment(self, image: np.ndarray):
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        return aug_input.image, transforms

    def __call__(self, dataset_dict: dict) -> dict:
        out = self.mapper.map(dict_with_class_ids(dataset_dict, self.things), self._augment)
        if "annotations" in out:  # test time: the dict's own annotations, in detectron2's convention
            out["annotations"] = copy.deepcopy(dataset_dict["annotations"])
        if "instances" in out:
            out["instances"] = to_detectron2_instances(out["instances"], self.things)
        return out
