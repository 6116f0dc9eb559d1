"""A COCO instances json and its images, nothing else (what CVAT, Label Studio, Roboflow and
labelme2coco export; detectron2's `register_coco_instances`).

    images/a.jpg  images/b.jpg  annotations.json

The segmentation_image of each image is drawn from its annotations (polygons or RLE) into a
cache folder next to the json (`label_cache`), once; the annotations of thing classes are the
instances. Categories become classes by name (`named_classes`): from a classes file, or
without one `background` (class 0), the categories in id order (all things), and `ignore`
for crowd regions. Where annotations overlap, the smaller one is drawn over the larger (a cup
on a table stays visible), and regions of the same size keep the json's order (the later on
top); crowd regions lie under all the others. Instances are listed top first, as the
panoptic evaluator expects (where instances overlap, the earlier one keeps the pixel).

Crowd regions (`iscrowd`: 1), by `crowd`:
    "ignore"    drawn as the ignore class (the first one of a classes file); instances kept as
                crowd (the mapper skips them, the COCO evaluator ignores detections on them);
    "category"  drawn as their category's class; instances kept as crowd;
    "drop"      neither drawn nor kept.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from segdet.data.catalog import register_dataset
from segdet.data.formats.coco_semantic import annotation_bbox, coco_images, image_annotations, read_coco
from segdet.data.formats.label_cache import cache_folder, cached_segmentation
from segdet.data.formats.named_classes import NamedClasses, named_classes
from segdet.data.split import apply_split
from segdet.errors import DataError
from segdet.structures.boxes import BoxMode
from segdet.structures.masks import annotation_area, rle_to_mask, segmentation_to_rle
from segdet.structures.metadata import Metadata
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

CROWD_MODES = ("ignore", "category", "drop")


def coco_classes(json_file: str, classes_file: Optional[str] = None, label_map: Optional[dict] = None,
                 thing_classes: Optional[list[str]] = None, background_class: Optional[str] = None,
                 crowd: str = "ignore") -> NamedClasses:
    """The classes of a `coco` dataset: a classes file's, or the json's categories (read here)."""
    where = f"COCO json {json_file}"
    if crowd not in CROWD_MODES:
        raise DataError(f"{where}: crowd mode {crowd!r}; expected one of {list(CROWD_MODES)}")
    names: list[str] = []
    with_ignore = False
    if not classes_file:
        coco = read_coco(json_file)
        names = [str(coco.cats[i].get("name", "")) for i in sorted(coco.cats)]
        with_ignore = crowd == "ignore" and any(a.get("iscrowd", 0) for a in coco.anns.values())
    return named_classes(names, where, classes_file, label_map, background_class, thing_classes, with_ignore)


def _draw(shape: tuple[int, int], regions: list[tuple[int, dict]], background_id: int) -> np.ndarray:
    ids = np.full(shape, background_id, dtype=np.uint8)
    for class_id, rle in regions:
        ids[rle_to_mask(rle)] = class_id
    return ids


def load_coco(json_file: str, image_root: str, classes: NamedClasses, crowd: str = "ignore",
              cache_dir: Optional[str] = None, split_file: Optional[str] = None,
              split: Optional[str] = None) -> list[dict]:
    """Dataset dicts of a COCO instances json, with segmentation_images drawn from the annotations.

    Args:
        json_file: the COCO instances json.
        image_root: the folder its `file_name`s are relative to.
        classes: `coco_classes(json_file, ...)`.
        crowd: what crowd regions become ("ignore", "category", "drop"; module docstring).
        cache_dir: where the drawn PNGs go (default: `.segdet_cache` next to the json).
        split_file, split: keep only the images of this split.
    Returns:
        One dict per image: `file_name`, `height`, `width`, `image_id` (the file stem),
        `coco_image_id`, `sem_seg_file_name` (the drawn PNG, gray class ids) and `annotations`
        (thing classes only, top first, `category_id` = class id).
    """
    where = f"COCO json {json_file}"
    coco = read_coco(json_file)
    cat_to_class = {int(i): classes.class_of(str(cat.get("name", "")), f"{where}: category {i}")
                    for i, cat in coco.cats.items()}
    ignore_id = classes.first_ignore_class(f"{where} has crowd regions and CROWD is 'ignore'") \
        if crowd == "ignore" and any(a.get("iscrowd", 0) for a in coco.anns.values()) else None
    metadata = classes.metadata
    things = set(metadata.thing_class_ids)
    # The json's path is part of the key: two jsons never share pictures (or remove each other's).
    folder = cache_folder(cache_dir, os.path.dirname(os.path.abspath(json_file)), "coco",
                          [os.path.abspath(json_file), metadata.class_names, sorted(cat_to_class.items()),
                           classes.background_id, crowd])
    images = list(coco_images(coco, json_file, os.path.abspath(image_root), "their drawn labels"))
    kept = {d["image_id"] for d in apply_split([{"image_id": i.stem} for i in images], split_file, split)}
    images = [i for i in images if i.stem in kept]
    progress = Progress(len(images), f"Reading {json_file}", logger=logger)
    dicts = []
    for image in images:
        crowds, regions, instances = [], [], []
        for order, (ann, seg) in enumerate(image_annotations(coco, image, json_file, cat_to_class)):
            class_id = cat_to_class[int(ann["category_id"])]
            is_crowd = bool(ann.get("iscrowd", 0))
            if classes.is_dropped(class_id) or (is_crowd and crowd == "drop"):
                continue
            rle = segmentation_to_rle(seg, image.height, image.width, f"{where}: annotation {ann.get('id')}")
            area = annotation_area(rle)
            if is_crowd:
                crowds.append((ignore_id if crowd == "ignore" else class_id, rle))
            else:
                regions.append((-area, order, class_id, rle))
            if class_id in things:
                instances.append(((is_crowd, area, -order), {
                    "bbox": annotation_bbox(ann, seg, image.height, image.width),
                    "bbox_mode": int(BoxMode.XYWH_ABS),
                    "category_id": class_id,
                    "segmentation": seg,
                    "iscrowd": int(is_crowd),
                }))
        # Larger first, so that smaller regions are drawn over them; equal sizes in json order.
        drawn = crowds + [(class_id, rle) for _, _, class_id, rle in sorted(regions, key=lambda r: r[:2])]
        content = [image.height, image.width, [[c, r["counts"]] for c, r in drawn]]
        sem_seg_file = cached_segmentation(folder, image.stem, content,
                                           lambda: _draw((image.height, image.width), drawn, classes.background_id))
        dicts.append(image.dataset_dict(sem_seg_file, [a for _, a in sorted(instances, key=lambda i: i[0])]))
        progress.step()
    if not dicts:
        raise DataError(f"{where} lists no images" + (f" of split '{split}'" if split else ""))
    return dicts


def register_coco(
    name: str,
    json_file: str,
    image_root: str,
    classes_file: Optional[str] = None,
    label_map: Optional[dict] = None,
    thing_classes: Optional[list[str]] = None,
    background_class: Optional[str] = None,
    crowd: str = "ignore",
    cache_dir: Optional[str] = None,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> Metadata:
    """Register a COCO instances json + image folder as dataset `name` (loaded lazily).

    Without a classes file the json's categories are read now, for the classes.

    Args:
        classes_file: the classes (things, ignore classes); categories are matched by name.
        label_map: category name -> class (name, or id with a classes file); many to one;
            to the background class drops a category, to "ignore" (without a classes file)
            or an ignore class makes its regions ignore regions.
        thing_classes: class names with instances (default: the classes file's, else all).
        background_class: the class of pixels no annotation covers (default: class 0).
        Others: as `load_coco`.
    Returns:
        The registered Metadata.
    """
    classes = coco_classes(json_file, classes_file, label_map, thing_classes, background_class, crowd)

    def load() -> list[dict]:
        return load_coco(json_file, image_root, classes, crowd, cache_dir, split_file, split)

    register_dataset(name, load, classes.metadata)
    return classes.metadata
