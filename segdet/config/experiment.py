"""How a config and a dataset's Metadata fit together: the rules that read both, in one place.

The metadata an experiment runs with is `metadata_for_config(cfg, dataset metadata)`, made
once where a run starts (the trainer, the model loader, a tool) and passed on; everything
after that reads the ignore and thing classes from the metadata alone.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from segdet.errors import ConfigError


def instances_enabled(cfg) -> bool:
    """Whether the model has the instance (Mask R-CNN) branch: MODEL.MASK_ON (the
    meta-architecture must agree; `segdet.modeling.build_model` checks it)."""
    return bool(cfg.MODEL.MASK_ON)


def panoptic_enabled(cfg) -> bool:
    """Whether the model outputs `panoptic_seg`: instances on and MODEL.PANOPTIC_FPN.COMBINE.ENABLED."""
    return instances_enabled(cfg) and bool(cfg.MODEL.PANOPTIC_FPN.COMBINE.ENABLED)


def effective_ignore_ids(cfg, metadata: Any) -> list[int]:
    """MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS when set, else the dataset's ignore classes."""
    ids = cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS
    return sorted(set(metadata.ignore_class_ids if ids is None else ids))


def metadata_for_config(cfg, metadata: Any) -> Any:
    """A copy of a dataset's Metadata with the config's overrides: the config's ignore class
    ids replace the dataset's, and a thing class that is ignored stops being a thing."""
    ignore = effective_ignore_ids(cfg, metadata)
    things = [c for c in metadata.thing_class_ids if c not in ignore]
    return dataclasses.replace(metadata, ignore_class_ids=ignore, thing_class_ids=things)


def check_config_matches(cfg, metadata: Any) -> None:
    """The NUM_CLASSES keys must agree with the dataset; a mismatch names both numbers."""
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
