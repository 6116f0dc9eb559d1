"""A folder of LabelMe JSON files (https://github.com/wkentaro/labelme), one per image.

    labels/a.json   {"imagePath": "../images/a.jpg", "imageData": null | "<base64>",
                     "imageHeight": 480, "imageWidth": 640,
                     "shapes": [{"label": "cat", "points": [[x, y], ...], "shape_type": "polygon",
                                 "group_id": null}, ...]}

The image is `imagePath` (relative to the JSON file) when that file exists, else the image
embedded in `imageData` (written once into the cache folder). Shapes are rasterized as
LabelMe's own export does (`labelme.utils.shape_to_mask`, PIL's drawing: a pixel whose centre
lies inside the shape or on its outline is in it; pixel centres at integer coordinates):
polygon (>= 3 points), rectangle (2 corners), circle (centre and a point on it), line and
linestrip (10 px wide), point (a disc of radius 5). Shapes are drawn in file order, the
later over the earlier, into the segmentation_image (cached as a gray PNG, `label_cache`) and
an instance map: shapes of a thing class with the same label and `group_id` are one instance
(no group_id: each shape its own), and an instance is the part of its shapes left visible.

Labels become classes by name (`named_classes`): from a classes file (which declares the
things), or without one `background`, the labels in alphabetical order (all things unless
`thing_classes` says otherwise).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from segdet.data.catalog import register_dataset
from segdet.data.formats.label_cache import cache_folder, cached_bytes, cached_segmentation
from segdet.data.formats.named_classes import NamedClasses, named_classes
from segdet.data.split import apply_split
from segdet.errors import DataError
from segdet.structures.masks import annotations_from_masks
from segdet.structures.metadata import Metadata
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import image_size
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

# labelme.utils.shape_to_mask's defaults.
LINE_WIDTH = 10
POINT_SIZE = 5
# shape_type -> (fewest points, most points)
SHAPE_POINTS = {"polygon": (3, None), "rectangle": (2, 2), "circle": (2, 2), "line": (2, 2),
                "linestrip": (2, None), "point": (1, 1)}


@dataclass
class Shape:
    label: str
    points: list[tuple[float, float]]
    shape_type: str
    group_id: Any


@dataclass
class LabelmeFile:
    path: str
    stem: str
    data: dict
    shapes: list[Shape]


def shape_mask(shape: Shape, height: int, width: int) -> np.ndarray:
    """HxW bool mask of one shape, drawn as LabelMe's export draws it."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    xy = shape.points
    if shape.shape_type == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif shape.shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        # Corners in either order (PIL wants top left first).
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif shape.shape_type in ("line", "linestrip"):
        draw.line(xy, fill=1, width=LINE_WIDTH)
    elif shape.shape_type == "point":
        (cx, cy), = xy
        draw.ellipse([cx - POINT_SIZE, cy - POINT_SIZE, cx + POINT_SIZE, cy + POINT_SIZE], outline=1, fill=1)
    else:
        draw.polygon(xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def _shape(raw: Any, path: str, index: int) -> Shape:
    where = f"LabelMe file {path}: shape {index}"
    if not isinstance(raw, dict) or not isinstance(raw.get("label"), str):
        raise DataError(f"{where} has no 'label' (a string)")
    shape_type = raw.get("shape_type") or "polygon"
    if shape_type not in SHAPE_POINTS:
        raise DataError(f"{where} ('{raw['label']}') has shape_type '{shape_type}'; segdet reads "
                        f"{', '.join(SHAPE_POINTS)}")
    try:
        points = [(float(p[0]), float(p[1])) for p in raw.get("points", [])]
        if any(len(p) != 2 for p in raw.get("points", [])):
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise DataError(f"{where} ('{raw['label']}'): 'points' must be a list of [x, y] pairs") from None
    fewest, most = SHAPE_POINTS[shape_type]
    if len(points) < fewest or (most is not None and len(points) > most):
        wanted = f"{fewest}" if fewest == most else f"at least {fewest}"
        raise DataError(f"{where} ('{raw['label']}'): a {shape_type} needs {wanted} point(s), it has {len(points)}")
    return Shape(raw["label"], points, shape_type, raw.get("group_id"))


def read_labelme_file(path: str) -> LabelmeFile:
    """One LabelMe JSON file, checked (a DataError names the file and the problem)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"LabelMe file {path} cannot be parsed: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"LabelMe file {path} has no 'shapes' list; is it a LabelMe annotation?")
    shapes = [_shape(s, path, i) for i, s in enumerate(data["shapes"])]
    return LabelmeFile(path, os.path.splitext(os.path.basename(path))[0], data, shapes)


def labelme_files(folder: str, classes_file: Optional[str] = None) -> list[LabelmeFile]:
    """The LabelMe files of a folder (the dataset's classes file may lie among them)."""
    files = files_by_stem(folder, (".json",), "LabelMe")
    if classes_file:
        files = {s: p for s, p in files.items() if os.path.abspath(p) != os.path.abspath(classes_file)}
    if not files:
        raise DataError(f"no LabelMe files (*.json) in {folder}")
    return [read_labelme_file(files[stem]) for stem in sorted(files)]


def _image_file(item: LabelmeFile, images: str) -> str:
    """The image of a LabelMe file: `imagePath` if it exists, else `imageData` (cached)."""
    image_path = item.data.get("imagePath")
    if image_path:
        # LabelMe on Windows writes backslashes.
        candidate = os.path.join(os.path.dirname(os.path.abspath(item.path)), image_path.replace("\\", "/"))
        if os.path.isfile(candidate):
            return candidate
    embedded = item.data.get("imageData")
    if not embedded:
        raise DataError(f"LabelMe file {item.path}: its image {image_path!r} is not found and no imageData is embedded")
    try:
        data = base64.b64decode(embedded, validate=True)
        with Image.open(io.BytesIO(data)) as im:
            ext = "." + (im.format or "png").lower().replace("jpeg", "jpg")
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as e:
        raise DataError(f"LabelMe file {item.path}: imageData is not a base64-encoded image ({e})") from None
    return cached_bytes(images, item.stem, ext, data)


def _instance_key(shape: Shape, index: int) -> tuple:
    return (shape.label, shape.group_id) if shape.group_id is not None else (shape.label, None, index)


def rasterize(item: LabelmeFile, height: int, width: int, classes: NamedClasses) -> tuple[np.ndarray, list[dict]]:
    """(HxW class ids, instance annotations) of one LabelMe file."""
    ids = np.full((height, width), classes.background_id, dtype=np.uint8)
    instance_map = np.zeros((height, width), dtype=np.int32)
    instance_class: dict[tuple, tuple[int, int]] = {}  # key -> (instance number, class id)
    things = set(classes.metadata.thing_class_ids)
    for index, shape in enumerate(item.shapes):
        class_id = classes.class_of(shape.label, f"LabelMe file {item.path}: shape {index}")
        if classes.is_dropped(class_id):
            continue
        mask = shape_mask(shape, height, width)
        ids[mask] = class_id
        number = 0
        if class_id in things:
            key = _instance_key(shape, index)
            number = instance_class.setdefault(key, (len(instance_class) + 1, class_id))[0]
        instance_map[mask] = number
    numbers = [(n, c) for n, c in instance_class.values() if (instance_map == n).any()]
    return ids, annotations_from_masks([instance_map == n for n, _ in numbers], [c for _, c in numbers])


def labelme_classes(folder: str, classes_file: Optional[str] = None, label_map: Optional[dict] = None,
                    thing_classes: Optional[list[str]] = None,
                    background_class: Optional[str] = None) -> NamedClasses:
    """The classes of a LabelMe folder: a classes file's, or its labels' (all files are read)."""
    labels = [] if classes_file else sorted({s.label for f in labelme_files(folder) for s in f.shapes})
    return named_classes(labels, f"LabelMe folder {folder}", classes_file, label_map, background_class, thing_classes)


def load_labelme(folder: str, classes: NamedClasses, cache_dir: Optional[str] = None,
                 split_file: Optional[str] = None, split: Optional[str] = None) -> list[dict]:
    """Dataset dicts of a LabelMe folder (its *.json files, not its subfolders).

    Args:
        folder: the LabelMe files.
        classes: `labelme_classes(folder, ...)`.
        cache_dir: where the drawn PNGs and embedded images go (default: `.segdet_cache` in `folder`).
        split_file, split: keep only the images of this split (image id = the JSON file's stem).
    Returns:
        Dataset dicts sorted by image id, with `annotations` (RLE) of the thing classes.
    """
    items = labelme_files(folder, classes.classes_file)
    kept = {d["image_id"] for d in apply_split([{"image_id": f.stem} for f in items], split_file, split)}
    items = [f for f in items if f.stem in kept]
    metadata = classes.metadata
    # The folder is part of the key: two datasets never share pictures (or remove each other's).
    where = os.path.abspath(folder)
    settings = [where, metadata.class_names, sorted(classes.label_map.items()), classes.background_id,
                LINE_WIDTH, POINT_SIZE]
    labels_folder = cache_folder(cache_dir, where, "labelme", settings)
    images_folder = cache_folder(cache_dir, where, "labelme-images", [where])
    progress = Progress(len(items), f"Reading LabelMe files in {folder}", logger=logger)
    dicts = []
    for item in items:
        file_name = _image_file(item, images_folder)
        height, width = image_size(file_name)
        declared = (item.data.get("imageHeight"), item.data.get("imageWidth"))
        if None not in declared and tuple(int(v) for v in declared) != (height, width):
            raise DataError(f"LabelMe file {item.path} says its image is {declared[1]}x{declared[0]} (WxH) but "
                            f"{file_name} is {width}x{height}")
        ids, annotations = rasterize(item, height, width, classes)
        content = [height, width, [[s.label, s.points, s.shape_type, s.group_id] for s in item.shapes]]
        dicts.append({
            "file_name": file_name,
            "height": height,
            "width": width,
            "image_id": item.stem,
            "sem_seg_file_name": cached_segmentation(labels_folder, item.stem, content, lambda: ids),
            "annotations": annotations,
        })
        progress.step()
    return dicts


def register_labelme(
    name: str,
    folder: str,
    classes_file: Optional[str] = None,
    label_map: Optional[dict] = None,
    thing_classes: Optional[list[str]] = None,
    background_class: Optional[str] = None,
    cache_dir: Optional[str] = None,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> Metadata:
    """Register a folder of LabelMe files as dataset `name` (loaded lazily).

    Args:
        classes_file: the classes; labels are matched by name. Without one the labels of all
            files are read now, for the classes.
        label_map: label -> class (name, or id with a classes file), many to one; to the
            background class drops a label.
        thing_classes: class names with instances (default: the classes file's, else all).
        background_class: the class of unlabelled pixels (default: class 0).
        Others: as `load_labelme`.
    Returns:
        The registered Metadata.
    """
    classes = labelme_classes(folder, classes_file, label_map, thing_classes, background_class)
    register_dataset(name, lambda: load_labelme(folder, classes, cache_dir, split_file, split), classes.metadata)
    return classes.metadata
