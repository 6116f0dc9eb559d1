"""Image and ground-truth label files paired by name, from a registered dataset or from folders
(for pictures and evaluations of predictions that other tools, or tools/predict.py, wrote)."""
from __future__ import annotations

import os
from typing import Optional

from segdet.data.catalog import DatasetCatalog
from segdet.data.resolve import dataset_metadata
from segdet.errors import DataError
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import IMAGE_EXTENSIONS

Pairs = dict[str, tuple[str, str]]


def dataset_pairs(name: str, config_file: Optional[str] = None) -> tuple[Metadata, Pairs]:
    """(metadata, name -> (image file, label file)) of a registered dataset; each pair is found by
    its image's file stem and by its `image_id`."""
    metadata = dataset_metadata(name, config_file)
    pairs: Pairs = {}
    for d in DatasetCatalog.get(name):
        if not d.get("sem_seg_file_name"):
            continue
        pair = (d["file_name"], d["sem_seg_file_name"])
        pairs[os.path.splitext(os.path.basename(d["file_name"]))[0]] = pair
        if "image_id" in d:
            pairs[str(d["image_id"])] = pair
    if not pairs:
        raise DataError(f"dataset '{name}' has no ground-truth label files (sem_seg_file_name)")
    return metadata, pairs


def folder_pairs(image_dir: str, label_dir: str, classes_file: str,
                 label_format: Optional[str] = None) -> tuple[Metadata, Pairs]:
    """(metadata of the classes file, stem -> (image file, label file)) of an image folder and a
    label folder matched by file stem; `label_format` overrides the classes file's."""
    overrides = {"label_format": label_format} if label_format else {}
    metadata = load_classes_file(classes_file, **overrides)
    images = files_by_stem(image_dir, IMAGE_EXTENSIONS, "image")
    labels = files_by_stem(label_dir, IMAGE_EXTENSIONS, "ground-truth")
    return metadata, {stem: (images[stem], labels[stem]) for stem in labels if stem in images}
