"""PASCAL VOC 2012 segmentation layout.

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png        indexed (palette) PNGs; 255 = void
    root/ImageSets/Segmentation/train.txt  one image id per line (also val.txt, trainval.txt)
"""
from __future__ import annotations

import logging
import os
from typing import Optional

from segdet.data.catalog import register_dataset
from segdet.data.palettes import voc2012_metadata
from segdet.data.split import apply_split
from segdet.errors import DataError
from segdet.utils.image_io import image_size

logger = logging.getLogger(__name__)

VOC_IMAGE_SETS = ("train", "val", "trainval")


def _read_image_set(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise DataError(f"VOC image set file not found: {path}")
    with open(path) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise DataError(f"VOC image set file {path} lists no images")
    return ids


def load_voc(root: str, image_set: str, split_file: Optional[str] = None,
             split: Optional[str] = None) -> list[dict]:
    """Dataset dicts of one VOC image set (e.g. "train").

    Args:
        root: the VOC2012 folder.
        image_set: name of a list in ImageSets/Segmentation/.
        split_file, split: keep only this split's images.
    Returns:
        Dataset dicts in the order of the image set file.
    """
    ids = _read_image_set(os.path.join(root, "ImageSets", "Segmentation", f"{image_set}.txt"))
    dicts = [
        {
            "file_name": os.path.abspath(os.path.join(root, "JPEGImages", f"{image_id}.jpg")),
            "image_id": image_id,
            "sem_seg_file_name": os.path.abspath(os.path.join(root, "SegmentationClass", f"{image_id}.png")),
        }
        for image_id in ids
    ]
    dicts = apply_split(dicts, split_file, split)
    out = []
    for d in dicts:
        if not os.path.isfile(d["sem_seg_file_name"]):
            raise DataError(f"image '{d['image_id']}' of VOC image set '{image_set}' has no label file: "
                            f"{d['sem_seg_file_name']} not found")
        height, width = image_size(d["file_name"])
        out.append({"file_name": d["file_name"], "height": height, "width": width,
                    "image_id": d["image_id"], "sem_seg_file_name": d["sem_seg_file_name"]})
    return out


def register_voc(root: str, name_prefix: str = "voc_2012") -> list[str]:
    """Register `<name_prefix>_train`, `_val` (and `_trainval`) for the image sets that exist.

    Returns:
        The registered names.
    """
    sets_dir = os.path.join(root, "ImageSets", "Segmentation")
    if not os.path.isdir(sets_dir):
        raise DataError(f"VOC folder {root} has no ImageSets/Segmentation/ folder")
    names = []
    for image_set in VOC_IMAGE_SETS:
        if os.path.isfile(os.path.join(sets_dir, f"{image_set}.txt")):
            name = f"{name_prefix}_{image_set}"
            register_dataset(name, lambda s=image_set: load_voc(root, s), voc2012_metadata("palette"))
            names.append(name)
    if not names:
        raise DataError(f"VOC folder {sets_dir} has none of {[s + '.txt' for s in VOC_IMAGE_SETS]}")
    return names
