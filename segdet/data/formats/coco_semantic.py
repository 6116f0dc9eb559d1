"""COCO instances json for the things + a folder of semantic PNGs for all classes.

This is detectron2's "panoptic separated" layout: instance annotations come from
a COCO instances json, and the segmentation_image of every image (one class id
per pixel, stuff and things alike) is a PNG with the same stem in `sem_seg_root`.
COCO category ids are matched to class ids by NAME, so the json may number its
categories in any way.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Container, Iterator, Optional

from pycocotools.coco import COCO

from segdet.structures.boxes import BoxMode
from segdet.structures.masks import rle_box, segmentation_to_rle, valid_polygons
from segdet.data.catalog import register_dataset
from segdet.structures.metadata import Metadata, load_classes_file
from segdet.errors import DataError
from segdet.utils.image_io import image_size

logger = logging.getLogger(__name__)


def read_coco(json_file: str) -> COCO:
    """A COCO instances json, indexed by pycocotools; a DataError names the file when it cannot be used."""
    if not os.path.isfile(json_file):
        raise DataError(f"COCO json not found: {json_file}")
    # COCO() prints progress to stdout; keep tools' output clean.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(json_file)
    except json.JSONDecodeError as e:
        raise DataError(f"COCO json {json_file} cannot be parsed: {e}") from None
    except UnicodeDecodeError:
        raise DataError(f"COCO json {json_file} is not a text (UTF-8) file") from None
    except (KeyError, TypeError, AttributeError, AssertionError) as e:
        raise DataError(
            f"COCO json {json_file} is not a COCO instances file "
            f"(expected 'images', 'annotations' and 'categories'; problem: {e!r})"
        ) from None


def _category_map(coco: COCO, json_file: str, metadata: Metadata) -> dict[int, int]:
    """COCO category id -> class id, by category name."""
    class_ids = {name: i for i, name in enumerate(metadata.class_names)}
    mapping = {}
    for cat in coco.loadCats(coco.getCatIds()):
        name = str(cat.get("name", ""))
        if name not in class_ids:
            raise DataError(
                f"COCO json {json_file}: category '{name}' (id {cat['id']}) is not a class of the dataset; "
                f"classes: {metadata.class_names}"
            )
        class_id = class_ids[name]
        if class_id not in metadata.thing_class_ids:
            raise DataError(
                f"COCO json {json_file}: category '{name}' (class id {class_id}) has instances but is not a "
                f"thing class; thing classes: {metadata.thing_classes}. Mark it 'thing' in the classes file."
            )
        mapping[int(cat["id"])] = class_id
    return mapping


def annotation_segmentation(seg: Any, json_file: str, ann_id: Any) -> Optional[Any]:
    """Polygons (the ones that can be rasterized) or a compressed RLE with str counts; None if no
    polygon is left (`segdet.structures.masks`' rule)."""
    if isinstance(seg, list):
        return valid_polygons(p for p in seg if isinstance(p, list)) or None
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        height, width = (int(v) for v in seg["size"])
        return segmentation_to_rle(seg, height, width, f"COCO json {json_file}: annotation {ann_id}")
    raise DataError(
        f"COCO json {json_file}: annotation {ann_id} has a segmentation that is neither polygons nor RLE"
    )


def annotation_bbox(ann: dict, segmentation: Any, height: int, width: int) -> list[float]:
    if "bbox" in ann and len(ann["bbox"]) == 4:
        return [float(v) for v in ann["bbox"]]
    return rle_box(segmentation_to_rle(segmentation, height, width))


@dataclass
class CocoImage:
    """One image entry of a COCO json, checked: its file exists and its stem is unique."""

    id: Any
    file_name: str
    stem: str
    height: int
    width: int

    def dataset_dict(self, sem_seg_file: str, annotations: list[dict]) -> dict:
        """Its dataset dict: image id = the file stem, `coco_image_id` = the json's id."""
        return {"file_name": self.file_name, "height": self.height, "width": self.width, "image_id": self.stem,
                "coco_image_id": self.id, "sem_seg_file_name": sem_seg_file, "annotations": annotations}


def coco_images(coco: COCO, json_file: str, image_root: str, stem_use: str) -> Iterator[CocoImage]:
    """The json's images in id order. Image ids (file stems) must be unique; `stem_use` says what
    would be confused otherwise (named in the error)."""
    seen_stems: dict[str, str] = {}
    for img_id in sorted(coco.imgs):
        img = coco.imgs[img_id]
        if "file_name" not in img:
            raise DataError(f"COCO json {json_file}: image {img_id} has no 'file_name'")
        file_name = os.path.join(image_root, img["file_name"])
        if not os.path.isfile(file_name):
            raise DataError(f"image listed in {json_file} not found: {file_name}")
        stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
        if stem in seen_stems:
            raise DataError(
                f"COCO json {json_file}: images {seen_stems[stem]} and {img['file_name']} have the same "
                f"stem '{stem}', so {stem_use} cannot be told apart"
            )
        seen_stems[stem] = img["file_name"]
        if "height" in img and "width" in img:
            height, width = int(img["height"]), int(img["width"])
        else:
            height, width = image_size(file_name)
        yield CocoImage(img_id, file_name, stem, height, width)


def image_annotations(coco: COCO, image: CocoImage, json_file: str,
                      categories: Container[int]) -> Iterator[tuple[dict, Any]]:
    """(annotation, its segmentation) of one image: annotations marked `ignore` are left out, and
    so are those without a polygon that can be drawn (with a warning); a category that is not
    in `categories`, or an RLE of another size than the image, is a DataError."""
    for ann in coco.imgToAnns.get(image.id, []):
        if int(ann.get("ignore", 0)):
            continue
        if "category_id" not in ann or int(ann["category_id"]) not in categories:
            raise DataError(
                f"COCO json {json_file}: annotation {ann.get('id')} has category_id "
                f"{ann.get('category_id')}, which is not in 'categories'"
            )
        seg = annotation_segmentation(ann.get("segmentation"), json_file, ann.get("id"))
        if seg is None:
            logger.warning("COCO json %s: annotation %s has no valid polygon; skipped", json_file, ann.get("id"))
            continue
        if isinstance(seg, dict) and seg["size"] != [image.height, image.width]:
            raise DataError(
                f"COCO json {json_file}: annotation {ann.get('id')} has an RLE of size {seg['size']} (HxW) "
                f"but its image {image.file_name} is {image.height}x{image.width}"
            )
        yield ann, seg


def load_coco_semantic(
    json_file: str,
    image_root: str,
    sem_seg_root: str,
    metadata: Metadata,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> list[dict]:
    """Dataset dicts from a COCO instances json and a folder of semantic PNGs.

    Args:
        json_file: COCO instances json; its category names must be thing classes of `metadata`.
        image_root: folder the json's `file_name`s are relative to.
        sem_seg_root: folder with `<image stem>.png` segmentation_images (decoded later by the
            dataset's LabelCodec).
        metadata: the dataset's classes.
        split_file, split: optional split file and split name (see `segdet.data.split.apply_split`).

    Returns:
        One dict per image (detectron2's schema) with `annotations` whose `category_id` is a
        class id, plus `coco_image_id` (the json's numeric image id).
    """
    coco = read_coco(json_file)
    cat_to_class = _category_map(coco, json_file, metadata)
    image_root = os.path.abspath(image_root)
    sem_seg_root = os.path.abspath(sem_seg_root)
    dicts: list[dict] = []
    for image in coco_images(coco, json_file, image_root, f"their semantic PNGs in {sem_seg_root}"):
        sem_seg_file = os.path.join(sem_seg_root, image.stem + ".png")
        if not os.path.isfile(sem_seg_file):
            raise DataError(f"semantic label PNG for image {image.file_name} not found: {sem_seg_file}")
        annotations = [
            {
                "bbox": annotation_bbox(ann, seg, image.height, image.width),
                "bbox_mode": int(BoxMode.XYWH_ABS),
                "category_id": cat_to_class[int(ann["category_id"])],
                "segmentation": seg,
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            for ann, seg in image_annotations(coco, image, json_file, cat_to_class)
        ]
        dicts.append(image.dataset_dict(sem_seg_file, annotations))
    if split_file:
        from segdet.data.split import apply_split  # noqa: PLC0415 (written alongside; imported when used)

        dicts = apply_split(dicts, split_file, split)
    return dicts


def register_coco_semantic(
    name: str,
    json_file: str,
    image_root: str,
    sem_seg_root: str,
    metadata: Optional[Metadata] = None,
    classes_file: Optional[str] = None,
    split_file: Optional[str] = None,
    split: Optional[str] = None,
) -> Metadata:
    """Register a COCO-instances + semantic-PNG dataset under `name` (loaded lazily).

    Args:
        metadata: the classes; or `classes_file` to read them from (one of the two is needed).
        Others: as `load_coco_semantic`.

    Returns:
        The registered Metadata (with `json_file` set).
    """
    if metadata is None:
        if not classes_file:
            raise DataError(f"dataset '{name}' (coco_semantic, {json_file}): give its metadata or a classes file")
        metadata = load_classes_file(classes_file)
    metadata.json_file = json_file

    def load() -> list[dict]:
        return load_coco_semantic(json_file, image_root, sem_seg_root, metadata, split_file, split)

    register_dataset(name, load, metadata)
    return metadata
