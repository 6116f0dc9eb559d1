"""CamVid as the SegNet tutorial distributes it.

    root/train/0001TP_006690.png   root/trainannot/0001TP_006690.png
    root/val/...  root/valannot/...   root/test/...  root/testannot/...
    root/classes.json              (optional; else the 11 SegNet classes + Void)

Labels are gray PNGs: value = class id 0..10, 11 = Void (an ignore class).
Images are matched to labels by file stem; the `train.txt`-style pair lists are
not needed (they list the same pairs).
"""
from __future__ import annotations

import logging
import os

from segdet.data.formats.image_folder import register_image_folder_splits
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.data.palettes import camvid_metadata
from segdet.errors import DataError

logger = logging.getLogger(__name__)

CAMVID_SPLITS = ("train", "val", "test")


def camvid_dataset_metadata(root: str) -> Metadata:
    """`root/classes.json` when it exists, else the SegNet tutorial's classes."""
    classes_file = os.path.join(root, "classes.json")
    if os.path.isfile(classes_file):
        return load_classes_file(classes_file)
    return camvid_metadata()


def register_camvid(root: str, name_prefix: str = "camvid") -> list[str]:
    """Register `<name_prefix>_train`, `_val`, `_test` for the split folders `root` has.

    Returns:
        The registered names.
    """
    if not os.path.isdir(root):
        raise DataError(f"CamVid folder not found: {root}")
    metadata = camvid_dataset_metadata(root)
    found = []
    for split in CAMVID_SPLITS:
        image_dir, label_dir = os.path.join(root, split), os.path.join(root, split + "annot")
        if not os.path.isdir(image_dir):
            continue
        if not os.path.isdir(label_dir):
            raise DataError(f"CamVid folder {root} has {split}/ but no {split}annot/ with its labels")
        found.append((split, image_dir, label_dir))
    if not found:
        raise DataError(f"CamVid folder {root} has none of the split folders {list(CAMVID_SPLITS)}")
    # Everything is checked before anything is registered: an error leaves the catalogs as they were.
    names = register_image_folder_splits(name_prefix, found, metadata)
    return names
