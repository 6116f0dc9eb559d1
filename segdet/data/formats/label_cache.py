"""Segmentation_images drawn once from annotations (COCO polygons and RLE, LabelMe shapes).

The mapper, the evaluators, the class weights and the pictures all read a dataset's semantic
ground truth from `sem_seg_file_name` with its LabelCodec. A dataset labelled only by shapes
has no such file, so its loader draws one (a gray PNG, pixel = class id) into a cache folder
the first time and points `sem_seg_file_name` at it; everything downstream is unchanged.

    <cache root>/<kind>-<settings key>/<image stem>.<content key>.png

The settings key covers what changes every picture (the classes, the mapping of labels to
them, options); the content key covers one image's annotations and size. A changed
annotation gives a new file (the stale one of that image is removed), so the cache never
has to be cleared by hand. Files are written atomically: concurrent loaders (one per
process of a distributed run) write the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Callable, Optional

import numpy as np

from segdet.errors import DataError
from segdet.utils.files import atomic_write_bytes
from segdet.utils.image_io import write_image

# Raise when the drawing rules change: every cached picture is drawn again.
CACHE_VERSION = 1
CACHE_FOLDER_NAME = ".segdet_cache"


def content_key(content: Any) -> str:
    """12 hex digits of the SHA-1 of a JSON-able value (keys sorted)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def cache_folder(cache_dir: Optional[str], default_parent: str, kind: str, settings: Any) -> str:
    """The folder of one dataset's drawn pictures, created (a DataError names it when it cannot be).

    Args:
        cache_dir: the cache root the user chose, or None for `<default_parent>/.segdet_cache`.
        default_parent: the folder of the annotation file(s).
        kind: the format ("coco", "labelme").
        settings: everything besides one image's annotations that changes its picture.
    """
    root = cache_dir or os.path.join(default_parent, CACHE_FOLDER_NAME)
    folder = os.path.join(root, f"{kind}-{content_key([CACHE_VERSION, settings])}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the label cache folder {folder} ({e.strerror}); give a writable "
                        "folder as CACHE_DIR (cache_dir=...)") from None
    return folder


def _cached(folder: str, stem: str, ext: str, content: Any, write: Callable[[str], None]) -> str:
    key = content_key(content)
    path = os.path.join(folder, f"{stem}.{key}{ext}")
    if not os.path.isfile(path):
        write(path)
        stale = re.compile(re.escape(stem) + r"\.[0-9a-f]{12}" + re.escape(ext) + "$")
        for name in os.listdir(folder):
            if stale.match(name) and name != os.path.basename(path):
                try:
                    os.remove(os.path.join(folder, name))
                except FileNotFoundError:  # another process of the run removed it first
                    pass
    return path


def cached_segmentation(folder: str, stem: str, content: Any, draw: Callable[[], np.ndarray]) -> str:
    """The PNG of one image's segmentation_image, drawn by `draw()` (HxW class ids) if not cached.

    Args:
        folder: `cache_folder(...)`.
        stem: the image's file stem (unique in the dataset).
        content: the image's annotations and size, as JSON-able values.
    """
    def write(path: str) -> None:
        ids = draw()
        if ids.dtype != np.uint8:
            ids = ids.astype(np.uint8)
        write_image(path, ids)

    return _cached(folder, stem, ".png", content, write)


def cached_bytes(folder: str, stem: str, ext: str, data: bytes) -> str:
    """A file holding `data` (an embedded image), written once."""
    return _cached(folder, stem, ext, hashlib.sha1(data).hexdigest(), lambda path: atomic_write_bytes(data, path))
