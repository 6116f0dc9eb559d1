"""Cityscapes, fine annotations (https://www.cityscapes-dataset.com).

    root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      labelId per pixel
    root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   16-bit instance ids

The classes are the official 19 training classes (class id = trainId) and `ignore` (id 19),
which every other labelId becomes (`unlabeled`, `ego vehicle`, ..., `parking`, `rail track`,
`guard rail`, `bridge`, `tunnel`, `polegroup`, `caravan`, `trailer`). The labelIds files are
read as they are: the metadata's label_map sends each labelId to its class (the value map of
`segdet.structures.metadata`), so the LabelCodec decodes them. Instances of the 8 thing
classes come from the instanceIds files: a value >= 1000 is instance `value % 1000` of labelId
`value // 1000`, a thing labelId below 1000 a crowd region (a group without instance ids).
"""
from __future__ import annotations

import glob
import logging
import os
from typing import Optional, Sequence

import numpy as np

from segdet.data.catalog import register_dataset
from segdet.data.formats.image_folder import image_and_label
from segdet.errors import DataError
from segdet.structures.masks import annotations_from_masks
from segdet.structures.metadata import Metadata
from segdet.utils.image_io import read_label_array
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

# The 19 training classes, in trainId order: (name, labelId, color, has instances). Official
# values of cityscapesScripts' labels.py.
CITYSCAPES_TRAIN_CLASSES = (
    ("road", 7, (128, 64, 128), False),
    ("sidewalk", 8, (244, 35, 232), False),
    ("building", 11, (70, 70, 70), False),
    ("wall", 12, (102, 102, 156), False),
    ("fence", 13, (190, 153, 153), False),
    ("pole", 17, (153, 153, 153), False),
    ("traffic light", 19, (250, 170, 30), False),
    ("traffic sign", 20, (220, 220, 0), False),
    ("vegetation", 21, (107, 142, 35), False),
    ("terrain", 22, (152, 251, 152), False),
    ("sky", 23, (70, 130, 180), False),
    ("person", 24, (220, 20, 60), True),
    ("rider", 25, (255, 0, 0), True),
    ("car", 26, (0, 0, 142), True),
    ("truck", 27, (0, 0, 70), True),
    ("bus", 28, (0, 60, 100), True),
    ("train", 31, (0, 80, 100), True),
    ("motorcycle", 32, (0, 0, 230), True),
    ("bicycle", 33, (119, 11, 32), True),
)
NUM_LABEL_IDS = 34  # labelIds 0..33 occur in the files (license plate, -1, is never written)
IGNORE_NAME = "ignore"
IGNORE_COLOR = (0, 0, 0)
CITYSCAPES_SPLITS = ("train", "val")


def cityscapes_metadata() -> Metadata:
    """19 classes (id = trainId) + `ignore` (id 19), with the labelId -> class id map."""
    ignore_id = len(CITYSCAPES_TRAIN_CLASSES)
    label_map = {str(label_id): ignore_id for label_id in range(NUM_LABEL_IDS)}
    label_map.update({str(label_id): i for i, (_, label_id, _, _) in enumerate(CITYSCAPES_TRAIN_CLASSES)})
    return Metadata(
        class_names=[c[0] for c in CITYSCAPES_TRAIN_CLASSES] + [IGNORE_NAME],
        class_colors=[c[2] for c in CITYSCAPES_TRAIN_CLASSES] + [IGNORE_COLOR],
        ignore_class_ids=[ignore_id],
        thing_class_ids=[i for i, c in enumerate(CITYSCAPES_TRAIN_CLASSES) if c[3]],
        label_map=label_map,
    )


def instance_annotations(instance_ids: np.ndarray, metadata: Metadata) -> list[dict]:
    """Annotations (RLE) of the thing classes in a Cityscapes instanceIds image, in value order."""
    label_to_class = {int(k): v for k, v in (metadata.label_map or {}).items()}
    things = set(metadata.thing_class_ids)
    found = []
    for value in np.unique(instance_ids):
        value = int(value)
        label_id = value // 1000 if value >= 1000 else value
        class_id = label_to_class.get(label_id)
        if class_id in things:
            found.append((class_id, value < 1000, instance_ids == value))
    return annotations_from_masks([m for _, _, m in found], [c for c, _, _ in found], [k for _, k, _ in found])


def load_cityscapes(image_dir: str, gt_dir: str, metadata: Metadata, instances: bool = True) -> list[dict]:
    """Dataset dicts of one Cityscapes split.

    Args:
        image_dir: `root/leftImg8bit/<split>` (one folder per city).
        gt_dir: `root/gtFine/<split>`.
        metadata: `cityscapes_metadata()` (or a copy with more label_map entries).
        instances: read the instanceIds files for the thing instances (every file is decoded).
    Returns:
        Dataset dicts sorted by image id (`<city>_<seq>_<frame>`).
    """
    suffix = "_leftImg8bit.png"
    images = sorted(glob.glob(os.path.join(glob.escape(image_dir), "*", "*" + suffix)))
    if not images:
        raise DataError(f"no Cityscapes images (<city>/*{suffix}) in {image_dir}")
    progress = Progress(len(images), f"Reading Cityscapes {gt_dir}", logger=logger)
    dicts = []
    for file_name in images:
        city = os.path.basename(os.path.dirname(file_name))
        image_id = os.path.basename(file_name)[: -len(suffix)]
        base = os.path.join(gt_dir, city, image_id + "_gtFine_")
        label_file, instance_file = base + "labelIds.png", base + "instanceIds.png"
        for path in (label_file, instance_file) if instances else (label_file,):
            if not os.path.isfile(path):
                raise DataError(f"Cityscapes image {file_name} has no {path}")
        d = image_and_label(image_id, file_name, label_file)
        if instances:
            instance_ids = read_label_array(instance_file, "instance_ids")
            if instance_ids.shape != (d["height"], d["width"]):
                raise DataError(f"instance file {instance_file} is not the size of its image {file_name} "
                                f"({d['width']}x{d['height']})")
            d["annotations"] = instance_annotations(instance_ids, metadata)
        dicts.append(d)
        progress.step()
    return dicts


def register_cityscapes(root: str, name_prefix: str = "cityscapes_fine", splits: Sequence[str] = CITYSCAPES_SPLITS,
                        instances: bool = True, label_map: Optional[dict] = None) -> list[str]:
    """Register `<name_prefix>_<split>` for each split (default train, val) of a Cityscapes folder.

    Args:
        root: the folder with `leftImg8bit/` and `gtFine/`.
        instances: read instances (False: semantic only, and loading reads no pixels).
        label_map: labelId -> class (id or name), added to the official map (e.g. {9: road}
            makes `parking` road; instances follow it too).
    Returns:
        The registered names.
    """
    names = []
    for split in splits:
        image_dir = os.path.join(root, "leftImg8bit", split)
        gt_dir = os.path.join(root, "gtFine", split)
        meta = cityscapes_metadata()  # one object per name: the catalog names it
        if label_map:
            meta = meta.with_label_map(label_map)
        name = f"{name_prefix}_{split}"
        register_dataset(name, lambda i=image_dir, g=gt_dir, m=meta: load_cityscapes(i, g, m, instances), meta)
        names.append(name)
    return names
