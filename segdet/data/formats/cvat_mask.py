"""CVAT's "Segmentation mask 1.1" export (PASCAL VOC style).

    root/labelmap.txt                      # label:color_rgb:parts:actions
                                           background:0,0,0::
                                           car:250,50,83::
    root/ImageSets/Segmentation/<subset>.txt   one image id per line (CVAT writes default.txt)
    root/JPEGImages/<id>.jpg               the images (when exported with them; else image_dir)
    root/SegmentationClass/<id>.png        RGB: each pixel the color of its label
    root/SegmentationObject/<id>.png       RGB: each instance its own color, (0, 0, 0) none

Classes come from labelmap.txt (`background` first, then its labels in its order, with
their colors; every label but the background is a thing unless `thing_classes` says otherwise), or from a classes file matched by name;
a `label_map` (label name -> class) merges or drops labels. The class files are read as they
are: the metadata's label format is "rgb" with a label_map from each labelmap color to its
class, so the LabelCodec decodes them. An instance's class is the class most of its pixels
have in SegmentationClass; instances of stuff classes are not instances.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from segdet.data.catalog import register_dataset
from segdet.data.formats.image_folder import image_and_label
from segdet.data.formats.named_classes import NamedClasses, named_classes
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import annotations_from_masks
from segdet.structures.metadata import Metadata
from segdet.utils.image_io import IMAGE_EXTENSIONS, read_label_array
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

# PASCAL VOC's boundary / "difficult" color in object masks: no instance.
VOC_VOID_COLOR = (224, 224, 192)


def read_labelmap(path: str) -> list[tuple[str, tuple[int, int, int]]]:
    """(label name, RGB color) of each line of a CVAT / Datumaro labelmap.txt, in file order."""
    if not os.path.isfile(path):
        raise DataError(f"CVAT labelmap not found: {path} (a 'Segmentation mask 1.1' export has one)")
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(":")
            try:
                color = tuple(int(v) for v in fields[1].split(","))
                if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                    raise ValueError
            except (IndexError, ValueError):
                raise DataError(f"CVAT labelmap {path}, line {number}: expected 'name:r,g,b:parts:actions', "
                                f"got {line!r}") from None
            entries.append((fields[0], color))
    if not entries:
        raise DataError(f"CVAT labelmap {path} lists no labels")
    return entries


def cvat_metadata(root: str, classes_file: Optional[str] = None, label_map: Optional[dict] = None,
                  thing_classes: Optional[list[str]] = None,
                  background_class: Optional[str] = None) -> Metadata:
    """The classes of a CVAT export, with the labelmap's colors mapped to them (label format "rgb")."""
    path = os.path.join(root, "labelmap.txt")
    labelmap = read_labelmap(path)
    classes: NamedClasses = named_classes([n for n, _ in labelmap], f"CVAT export {root}", classes_file,
                                          label_map, background_class, thing_classes)
    metadata = classes.metadata
    colors = list(metadata.class_colors)
    if not classes_file:
        # Each derived class shows the color of the first label it comes from.
        for label, color in reversed(labelmap):
            colors[classes.class_of(label, path)] = color
    # CVAT writes unlabelled pixels black, whether or not the labelmap names a background.
    color_map = {"0,0,0": classes.background_id}
    color_map.update({",".join(map(str, color)): classes.class_of(label, f"CVAT labelmap {path}")
                      for label, color in labelmap})
    return Metadata(metadata.class_names, colors, metadata.ignore_class_ids, metadata.thing_class_ids,
                    label_format="rgb", label_map=color_map)


def _find(folder: str, image_id: str, extensions: tuple[str, ...]) -> Optional[str]:
    for ext in extensions:
        path = os.path.join(folder, image_id + ext)
        if os.path.isfile(path):
            return path
    return None


def cvat_subsets(root: str) -> list[str]:
    """The subsets of an export: the lists in ImageSets/Segmentation."""
    folder = os.path.join(root, "ImageSets", "Segmentation")
    if not os.path.isdir(folder):
        raise DataError(f"CVAT export {root} has no ImageSets/Segmentation folder with the image lists")
    subsets = sorted(os.path.splitext(n)[0] for n in os.listdir(folder) if n.endswith(".txt"))
    if not subsets:
        raise DataError(f"CVAT export {root}: no subset lists (*.txt) in {folder}")
    return subsets


def instance_annotations(objects: np.ndarray, class_ids: np.ndarray, things: set[int]) -> list[dict]:
    """One annotation per instance color of a SegmentationObject image whose (majority) class
    is a thing, in color order."""
    keys = objects.astype(np.int64) @ np.asarray([65536, 256, 1])
    void = {0, int(np.dot(VOC_VOID_COLOR, [65536, 256, 1]))}
    found = []
    for key in np.unique(keys):
        if int(key) in void:
            continue
        mask = keys == key
        counts = np.bincount(class_ids[mask], minlength=1)
        class_id = int(counts.argmax())
        if class_id in things:
            found.append((class_id, mask))
    return annotations_from_masks([m for _, m in found], [c for c, _ in found])


def load_cvat_mask(root: str, subset: str, metadata: Metadata, image_dir: Optional[str] = None) -> list[dict]:
    """Dataset dicts of one subset of a CVAT "Segmentation mask 1.1" export.

    Args:
        root: the export folder.
        subset: a list in ImageSets/Segmentation (e.g. "default").
        metadata: `cvat_metadata(root, ...)`.
        image_dir: where the images are, when the export has no JPEGImages folder.
    Returns:
        Dataset dicts in list order; with thing classes and a SegmentationObject folder, the
        instances as `annotations` (every object mask is decoded).
    """
    list_file = os.path.join(root, "ImageSets", "Segmentation", f"{subset}.txt")
    if not os.path.isfile(list_file):
        raise DataError(f"CVAT export {root} has no subset '{subset}': {list_file} not found")
    with open(list_file, encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    images = image_dir or os.path.join(root, "JPEGImages")
    objects = os.path.join(root, "SegmentationObject")
    with_instances = bool(metadata.thing_class_ids) and os.path.isdir(objects)
    codec = LabelCodec(metadata)
    things = set(metadata.thing_class_ids)
    progress = Progress(len(ids), f"Reading CVAT export {root} ({subset})", logger=logger)
    dicts = []
    for image_id in ids:
        file_name = _find(images, image_id, IMAGE_EXTENSIONS)
        if file_name is None:
            raise DataError(f"image '{image_id}' of {list_file} not found in {images} (export with images, "
                            "or give IMAGE_DIR)")
        label_file = os.path.join(root, "SegmentationClass", image_id + ".png")
        if not os.path.isfile(label_file):
            raise DataError(f"image '{image_id}' of {list_file} has no class mask: {label_file} not found")
        d = image_and_label(image_id, file_name, label_file, "class mask")
        if with_instances:
            object_file = os.path.join(objects, image_id + ".png")
            if not os.path.isfile(object_file):
                raise DataError(f"image '{image_id}' of {list_file} has no object mask: {object_file} not found")
            object_rgb = read_label_array(object_file, "rgb")
            if object_rgb.shape[:2] != (d["height"], d["width"]):
                raise DataError(f"object mask {object_file} is not the size of its image {file_name} "
                                f"({d['width']}x{d['height']})")
            d["annotations"] = instance_annotations(object_rgb, codec.read(label_file), things)
        dicts.append(d)
        progress.step()
    return dicts


def register_cvat_mask(
    root: str,
    name_prefix: str = "cvat",
    classes_file: Optional[str] = None,
    label_map: Optional[dict] = None,
    thing_classes: Optional[list[str]] = None,
    background_class: Optional[str] = None,
    image_dir: Optional[str] = None,
) -> list[str]:
    """Register each subset of a CVAT "Segmentation mask 1.1" export as `<name_prefix>_<subset>`.

    Args:
        root: the export folder.
        classes_file: the classes (labels matched by name); default: labelmap.txt's.
        label_map: label -> class (name, or id with a classes file), many to one.
        thing_classes: class names with instances (default: the classes file's, else all but
            the background).
        background_class: the class that labels mapped to it are dropped into (default: class 0).
        image_dir: the images, when the export has no JPEGImages folder.
    Returns:
        The registered names.
    """
    metadata = cvat_metadata(root, classes_file, label_map, thing_classes, background_class)
    names = []
    for subset in cvat_subsets(root):
        name = f"{name_prefix}_{subset}"
        meta = Metadata.from_dict(metadata.to_dict())  # one object per name: the catalog names it
        register_dataset(name, lambda s=subset, m=meta: load_cvat_mask(root, s, m, image_dir), meta)
        names.append(name)
    return names
