"""A folder of images and a folder of label images (segmentation_images), matched by file stem.

    images/a.jpg   labels/a.png
    images/b.png   labels/b.png

The label files' encoding (gray, blue, rgb, palette) is the dataset's
`Metadata.label_format`; the classes come from a classes file (see
`segdet.structures.metadata.load_classes_file`) or a given `Metadata`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Optional, Union

from segdet.data.catalog import register_dataset
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.data.split import apply_split
from segdet.errors import DataError
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import IMAGE_EXTENSIONS, image_size
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)


def list_image_files(folder: str, what: str = "image") -> dict[str, str]:
    """Image files of a folder (not its subfolders) by file stem (`files_by_stem`); two files
    with the same stem are a DataError naming both."""
    return files_by_stem(folder, IMAGE_EXTENSIONS, what)


def image_and_label(image_id: str, file_name: str, label_file: str, what: str = "label file") -> dict:
    """A dataset dict of an image and its segmentation_image file, whose sizes must agree (headers only)."""
    height, width = image_size(file_name)
    label_hw = image_size(label_file)
    if label_hw != (height, width):
        raise DataError(f"{what} {label_file} is {label_hw[1]}x{label_hw[0]} (WxH) but its image {file_name} is "
                        f"{width}x{height}")
    return {"file_name": os.path.abspath(file_name), "height": height, "width": width, "image_id": image_id,
            "sem_seg_file_name": os.path.abspath(label_file)}


def resolve_metadata(
    classes_file: Optional[str] = None,
    metadata: Union[Metadata, dict, None] = None,
    label_format: Optional[str] = None,
    where: str = "dataset",
) -> Metadata:
    """The Metadata a register function was given: from a classes file or a Metadata (or its dict).

    Args:
        classes_file: a classes file (JSON/YAML), or None.
        metadata: a Metadata or `Metadata.to_dict()` output, or None.
        label_format: replaces the label format of either, when given.
        where: names the dataset in messages.
    Returns:
        A new Metadata object (safe to register; the catalog sets its name).
    """
    if classes_file is not None and metadata is not None:
        raise DataError(f"{where}: give a classes file or metadata, not both")
    overrides: dict[str, Any] = {} if label_format is None else {"label_format": label_format}
    if classes_file is not None:
        return load_classes_file(classes_file, **overrides)
    if metadata is None:
        raise DataError(f"{where}: no classes given; pass a classes file (classes_file) or metadata")
    if isinstance(metadata, dict):
        # Config files write keys in upper case (METADATA: {CLASS_NAMES: [...]}).
        fields = {f.name for f in dataclasses.fields(Metadata)}
        given = {str(k).lower(): v for k, v in metadata.items()}
        unknown = sorted(set(given) - fields)
        if unknown or "class_names" not in given:
            raise DataError(
                f"{where}: metadata {'has unknown keys ' + str(unknown) if unknown else 'needs class_names'}; "
                f"its keys: {sorted(fields)}"
            )
        metadata = Metadata.from_dict(given)
    if not isinstance(metadata, Metadata):
        raise DataError(f"{where}: metadata must be a Metadata or a dict, got {type(metadata).__name__}")
    # A copy, so that registering it under a name leaves the caller's object alone.
    metadata = dataclasses.replace(metadata, **overrides)
    metadata.check_label_map(where)
    return metadata


def load_image_folder(
    image_dir: str,
    label_dir: str,
    metadata: Metadata,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> list[dict]:
    """Dataset dicts of an image folder and its label folder.

    Only file headers are read (image sizes). Each image needs a label file with
    the same stem and size; label files without an image are skipped with a warning.

    Args:
        image_dir: folder of images (not searched recursively).
        label_dir: folder of label files.
        metadata: the dataset's classes and label format.
        split_file, split: keep only the images of this split (see `segdet.data.split`).
    Returns:
        Dataset dicts sorted by image id (the file stem).
    """
    name = f"dataset '{metadata.name}'" if metadata.name else "dataset"
    images = list_image_files(image_dir, "image")
    if not images:
        raise DataError(f"{name}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    labels = list_image_files(label_dir, "label file")
    for stem in sorted(images):
        if stem not in labels:
            raise DataError(f"image {images[stem]} has no label file: nothing named '{stem}.*' in {label_dir}")
    orphans = len(set(labels) - set(images))
    if orphans:
        logger.warning("%s: %d label file(s) in %s have no image in %s; they are skipped",
                       name, orphans, label_dir, image_dir)
    dicts = [
        {
            "file_name": os.path.abspath(images[stem]),
            "image_id": stem,
            "sem_seg_file_name": os.path.abspath(labels[stem]),
        }
        for stem in sorted(images)
    ]
    dicts = apply_split(dicts, split_file, split)
    progress = Progress(len(dicts), f"Indexing {image_dir}")
    for d in dicts:
        d["height"], d["width"] = image_size(d["file_name"])
        label_hw = image_size(d["sem_seg_file_name"])
        if label_hw != (d["height"], d["width"]):
            raise DataError(
                f"label file {d['sem_seg_file_name']} is {label_hw[1]}x{label_hw[0]} (WxH) but its image "
                f"{d['file_name']} is {d['width']}x{d['height']}"
            )
        progress.step()
    return [
        {k: d[k] for k in ("file_name", "height", "width", "image_id", "sem_seg_file_name")} for d in dicts
    ]


def register_image_folder(
    name: str,
    image_dir: str,
    label_dir: str,
    classes_file: Optional[str] = None,
    metadata: Union[Metadata, dict, None] = None,
    label_format: Optional[str] = None,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> None:
    """Register an image folder + label folder dataset under `name` (loaded lazily).

    Args:
        name: dataset name.
        image_dir, label_dir: the folders.
        classes_file: classes file giving ids, names, colors, ignore ids, label format.
        metadata: a Metadata (or its dict) instead of a classes file.
        label_format: replaces the label format of the classes file / metadata.
        split_file, split: keep only this split's images.
    """
    meta = resolve_metadata(classes_file, metadata, label_format, where=f"dataset '{name}'")
    register_dataset(name, lambda: load_image_folder(image_dir, label_dir, meta, split_file, split), meta)


def register_image_folder_splits(name_prefix: str, splits: list[tuple[str, str, str]], metadata: Metadata) -> list[str]:
    """Register `<name_prefix>_<split>` for each (split, image_dir, label_dir), sharing the classes.

    Returns:
        The registered names.
    """
    names = []
    for split, image_dir, label_dir in splits:
        name = f"{name_prefix}_{split}"
        meta = dataclasses.replace(metadata)  # one object per name: the catalog writes the name into it
        register_dataset(name, lambda i=image_dir, a=label_dir, m=meta: load_image_folder(i, a, m), meta)
        names.append(name)
    return names
