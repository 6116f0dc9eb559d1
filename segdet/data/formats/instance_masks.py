"""Images with one instance-mask image each (Penn-Fudan style), for one thing class.

    PNGImages/FudanPed00001.png   PedMasks/FudanPed00001_mask.png

In a mask image 0 is background and k > 0 is instance k. The semantic label is the
mask itself (label format "instance_ids": > 0 is the thing class); the instance
annotations (COCO RLE + box) are derived from it when the dataset is loaded.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np


from segdet.structures.masks import annotations_from_masks
from segdet.data.catalog import register_dataset
from segdet.data.formats.image_folder import list_image_files
from segdet.structures.metadata import Metadata
from segdet.data.split import apply_split, read_split_file
from segdet.errors import DataError
from segdet.utils.image_io import IMAGE_EXTENSIONS, image_size, read_label_array
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)


def instance_masks_metadata(thing_class: str = "person", background_class: str = "background") -> Metadata:
    """Two classes: 0 = background (stuff), 1 = the thing class."""
    return Metadata(class_names=[background_class, thing_class], thing_class_ids=[1], label_format="instance_ids")


def mask_annotations(instance_map: np.ndarray, category_id: int) -> list[dict]:
    """One annotation per instance id > 0 of an instance map: COCO RLE, XYWH box, category.

    Args:
        instance_map: HxW integers, 0 = background, k > 0 = instance k.
        category_id: class id of every instance.
    Returns:
        Annotations in instance-id order; RLE counts are str (JSON-able).
    """
    ids = [i for i in np.unique(instance_map) if i != 0]
    return annotations_from_masks([instance_map == i for i in ids], [category_id] * len(ids))


def load_instance_masks(
    image_dir: str,
    mask_dir: str,
    metadata: Metadata,
    mask_suffix: str = "_mask",
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> list[dict]:
    """Dataset dicts with annotations derived from instance-mask images.

    The mask of image `<stem>.<ext>` is `<stem><mask_suffix>.<ext2>` in `mask_dir`.
    Every mask is decoded (that is how its instances are found).

    Args:
        image_dir, mask_dir: the folders (not searched recursively).
        metadata: the dataset's Metadata (one thing class).
        mask_suffix: suffix of a mask file's stem.
        split_file, split: keep only this split's images.
    Returns:
        Dataset dicts sorted by image id, with `annotations`.
    """
    if len(metadata.thing_class_ids) != 1:
        raise DataError(f"instance-mask dataset '{metadata.name}' needs exactly one thing class")
    category_id = metadata.thing_class_ids[0]
    masks = list_image_files(mask_dir, "mask file")
    images = list_image_files(image_dir, "image")
    if os.path.abspath(image_dir) == os.path.abspath(mask_dir):
        images = {s: p for s, p in images.items() if not (mask_suffix and s.endswith(mask_suffix))}
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    dicts = []
    for stem in sorted(images):
        if stem + mask_suffix not in masks:
            raise DataError(
                f"image {images[stem]} has no mask file: nothing named '{stem}{mask_suffix}.*' in {mask_dir}"
            )
        dicts.append({"file_name": os.path.abspath(images[stem]), "image_id": stem,
                      "sem_seg_file_name": os.path.abspath(masks[stem + mask_suffix])})
    orphans = len(set(masks) - {stem + mask_suffix for stem in images})
    if orphans and os.path.abspath(image_dir) != os.path.abspath(mask_dir):
        logger.warning("%d mask file(s) in %s have no image in %s; they are skipped", orphans, mask_dir, image_dir)
    dicts = apply_split(dicts, split_file, split)
    progress = Progress(len(dicts), f"Reading instance masks in {mask_dir}")
    out = []
    for d in dicts:
        height, width = image_size(d["file_name"])
        instance_map = read_label_array(d["sem_seg_file_name"], "instance_ids")
        if instance_map.shape != (height, width):
            raise DataError(
                f"mask file {d['sem_seg_file_name']} is {instance_map.shape[1]}x{instance_map.shape[0]} (WxH) "
                f"but its image {d['file_name']} is {width}x{height}"
            )
        out.append({"file_name": d["file_name"], "height": height, "width": width, "image_id": d["image_id"],
                    "sem_seg_file_name": d["sem_seg_file_name"],
                    "annotations": mask_annotations(instance_map, category_id)})
        progress.step()
    return out


def register_instance_masks(
    name: str,
    image_dir: str,
    mask_dir: str,
    thing_class: str = "person",
    background_class: str = "background",
    mask_suffix: str = "_mask",
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> None:
    """Register an instance-mask dataset under `name` (classes: background, thing_class)."""
    meta = instance_masks_metadata(thing_class, background_class)
    register_dataset(
        name, lambda: load_instance_masks(image_dir, mask_dir, meta, mask_suffix, split_file, split), meta
    )


def register_pennfudan(root: str, split_file: Optional[str], name_prefix: str = "pennfudan") -> list[str]:
    """Register the Penn-Fudan pedestrians (`root/PNGImages`, `root/PedMasks`), one name per split.

    Args:
        root: the PennFudanPed folder.
        split_file: split file (e.g. train/val); each of its splits becomes `<name_prefix>_<split>`.
            None registers all images as `<name_prefix>`.
    Returns:
        The registered names.
    """
    image_dir, mask_dir = os.path.join(root, "PNGImages"), os.path.join(root, "PedMasks")
    if split_file is None:
        register_instance_masks(name_prefix, image_dir, mask_dir)
        return [name_prefix]
    names = []
    for split in read_split_file(split_file):
        name = f"{name_prefix}_{split}"
        register_instance_masks(name, image_dir, mask_dir, split_file=split_file, split=split)
        names.append(name)
    return names
