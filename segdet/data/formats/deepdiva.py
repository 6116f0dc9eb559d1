"""DeepDIVA's semantic segmentation layout.

    root/train/data/page23.jpg   root/train/gt/page23.png
    root/val/...                 root/test/...

Images and ground truth are matched by file stem (extensions may differ); the
class of a pixel is the BLUE channel of its ground-truth pixel (label format "blue").
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

from segdet.data.formats.image_folder import register_image_folder_splits
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.errors import DataError

logger = logging.getLogger(__name__)

DEEPDIVA_SPLITS = ("train", "val", "test")


def deepdiva_metadata(root: str, classes_file: Optional[str] = None,
                      class_names: Optional[Sequence[str]] = None) -> Metadata:
    """Classes of a DeepDIVA dataset: `classes_file`, else `root/classes.json`, else `class_names`."""
    if classes_file is None and os.path.isfile(os.path.join(root, "classes.json")):
        classes_file = os.path.join(root, "classes.json")
    if classes_file is not None:
        return load_classes_file(classes_file, label_format="blue")
    if class_names:
        return Metadata(class_names=list(class_names), label_format="blue")
    raise DataError(
        f"DeepDIVA dataset {root}: no classes given. Pass classes_file, put a classes.json in {root}, "
        "or pass class_names (one name per blue-channel value 0..N-1)"
    )


def register_deepdiva(
    root: str,
    name_prefix: str,
    classes_file: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
) -> list[str]:
    """Register `<name_prefix>_train`, `_val`, `_test` for the splits that `root` has.

    Args:
        root: the dataset folder holding train/, val/, test/ (each with data/ and gt/).
        name_prefix: prefix of the dataset names.
        classes_file: classes file; default `root/classes.json` when it exists.
        class_names: class names in blue-value order, when there is no classes file.
    Returns:
        The registered names.
    """
    if not os.path.isdir(root):
        raise DataError(f"DeepDIVA dataset folder not found: {root}")
    metadata = deepdiva_metadata(root, classes_file, class_names)
    found = []
    for split in DEEPDIVA_SPLITS:
        data_dir, gt_dir = os.path.join(root, split, "data"), os.path.join(root, split, "gt")
        if not os.path.isdir(os.path.join(root, split)):
            continue
        if not (os.path.isdir(data_dir) and os.path.isdir(gt_dir)):
            raise DataError(f"DeepDIVA split folder {os.path.join(root, split)} needs both data/ and gt/ subfolders")
        found.append((split, data_dir, gt_dir))
    if not found:
        raise DataError(f"DeepDIVA dataset {root} has none of the split folders {list(DEEPDIVA_SPLITS)}")
    # Everything is checked before anything is registered: an error leaves the catalogs as they were.
    names = register_image_folder_splits(name_prefix, found, metadata)
    logger.info("registered DeepDIVA datasets %s from %s", names, root)
    return names
