"""The one Metadata an experiment uses: from its datasets, with the config's overrides, checked
against the config's class counts."""
from __future__ import annotations

import copy
from typing import Sequence

from segdet.data.catalog import MetadataCatalog
from segdet.data.metadata import Metadata
from segdet.errors import ConfigError


def effective_ignore_ids(cfg, metadata: Metadata) -> list[int]:
    """MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS when set, else the dataset's ignore classes."""
    ids = cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS
    return sorted(set(metadata.ignore_class_ids if ids is None else ids))


def resolve_metadata(cfg, dataset_names: Sequence[str] | None = None) -> Metadata:
    """Metadata shared by the named datasets (default: DATASETS.TRAIN, else DATASETS.TEST).

    The config's ignore class ids replace the dataset's. Raises ConfigError when the datasets
    disagree on their classes, or the config's NUM_CLASSES do not match them.
    """
    names = list(dataset_names or cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)
    if not names:
        raise ConfigError("config: DATASETS.TRAIN and DATASETS.TEST are both empty; name at least one dataset")
    first = MetadataCatalog.get(names[0])
    for name in names[1:]:
        other = MetadataCatalog.get(name)
        if other.class_names != first.class_names:
            raise ConfigError(
                f"datasets '{names[0]}' and '{name}' have different classes: {first.class_names} vs {other.class_names}"
            )
    metadata = copy.deepcopy(first)
    metadata.ignore_class_ids = effective_ignore_ids(cfg, first)
    overlap = set(metadata.ignore_class_ids) & set(metadata.thing_class_ids)
    metadata.thing_class_ids = [c for c in metadata.thing_class_ids if c not in overlap]
    check_config_matches(cfg, metadata)
    return metadata


def check_config_matches(cfg, metadata: Metadata) -> None:
    """NUM_CLASSES keys must agree with the dataset; a mismatch names both numbers."""
    n = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    if n != metadata.num_classes:
        raise ConfigError(
            f"MODEL.SEM_SEG_HEAD.NUM_CLASSES = {n}, but dataset '{metadata.name}' has {metadata.num_classes} "
            f"classes {metadata.class_names} (ignore classes included); set it to {metadata.num_classes}"
        )
    if instances_enabled(cfg):
        k = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        if not metadata.thing_class_ids:
            raise ConfigError(
                f"MODEL.MASK_ON is True but dataset '{metadata.name}' declares no thing classes (classes with "
                "instances); set MODEL.MASK_ON False or declare thing classes"
            )
        if k != len(metadata.thing_class_ids):
            raise ConfigError(
                f"MODEL.ROI_HEADS.NUM_CLASSES = {k}, but dataset '{metadata.name}' has "
                f"{len(metadata.thing_class_ids)} thing classes {metadata.thing_classes}; set it to "
                f"{len(metadata.thing_class_ids)}"
            )


def instances_enabled(cfg) -> bool:
    """Whether the model has the instance (Mask R-CNN) branch."""
    return cfg.MODEL.META_ARCHITECTURE == "PanopticFPN" and cfg.MODEL.MASK_ON
