"""One small scene written in each label format, with the class ids a reader must decode.

Every image is 64x64, uniform gray (GRAY), and shows, by hand:
    background everywhere, grass in rows 40..63 (all columns),
    cat 1 in rows 8..23, columns 8..23, cat 2 in rows 44..51, columns 20..31 (lying on the grass),
    image "a" only: cat 3 in rows 8..19, columns 40..55.
`expected_ids` gives that picture in a format's class ids; each writer returns a FormatCase
with its DATASETS.CUSTOM entry (the config keys) and what the dataset must hold.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

H = W = 64
GRAY = 100
IMAGE_IDS = ("a", "b")
# (top, bottom, left, right), inclusive.
GRASS = (40, 63, 0, 63)
CATS = {"a": [(8, 23, 8, 23), (44, 51, 20, 31), (8, 19, 40, 55)], "b": [(8, 23, 8, 23), (44, 51, 20, 31)]}


@dataclass
class FormatCase:
    entry: dict                       # DATASETS.CUSTOM entry, FORMAT and upper-case arguments
    names: list[str]                  # the dataset names the entry registers
    expected: dict[str, np.ndarray]   # image id -> HxW class ids
    class_names: list[str]
    thing_class_ids: list[int]
    instances: dict[str, int] = field(default_factory=dict)  # image id -> number of instances


def box_mask(box) -> np.ndarray:
    top, bottom, left, right = box
    mask = np.zeros((H, W), bool)
    mask[top:bottom + 1, left:right + 1] = True
    return mask


def expected_ids(image_id: str, background: int, grass: int, cat: int) -> np.ndarray:
    ids = np.full((H, W), background, np.uint8)
    ids[box_mask(GRASS)] = grass
    for box in CATS[image_id]:
        ids[box_mask(box)] = cat
    return ids


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((H, W, 3), GRAY, np.uint8))


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def coco_polygon(box) -> list[float]:
    """A COCO polygon covering exactly the box's pixels (pixel x spans [x, x + 1))."""
    top, bottom, left, right = box
    return [left, top, right + 1, top, right + 1, bottom + 1, left, bottom + 1]


def write_coco(root: Path) -> FormatCase:
    """A json with polygons only (what a labeling tool exports) and two PNG images."""
    images, annotations = [], []
    for number, image_id in enumerate(IMAGE_IDS, 1):
        write_image(root / "images" / f"{image_id}.png")
        images.append({"id": number, "file_name": f"{image_id}.png", "height": H, "width": W})
        shapes = [(2, GRASS)] + [(1, box) for box in CATS[image_id]]
        for category, box in shapes:
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": category,
                                "segmentation": [coco_polygon(box)], "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "grass"}]}
    (root / "annotations.json").write_text(json.dumps(coco))
    entry = {"FORMAT": "coco", "JSON_FILE": str(root / "annotations.json"), "IMAGE_ROOT": str(root / "images"),
             "THING_CLASSES": ["cat"]}
    return FormatCase(entry, [], {i: expected_ids(i, 0, 2, 1) for i in IMAGE_IDS}, ["background", "cat", "grass"],
                      [1], {i: len(CATS[i]) for i in IMAGE_IDS})


def labelme_rectangle(box) -> list[list[float]]:
    top, bottom, left, right = box
    return [[left, top], [right, bottom]]


def labelme_polygon(box) -> list[list[float]]:
    top, bottom, left, right = box
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def write_labelme(root: Path, embed: str = "b") -> FormatCase:
    """LabelMe files: image "a" next to its file, image `embed` only in imageData."""
    for image_id in IMAGE_IDS:
        shapes = [{"label": "grass", "points": labelme_rectangle(GRASS), "shape_type": "rectangle",
                   "group_id": None}]
        for k, box in enumerate(CATS[image_id]):
            shapes.append({"label": "cat", "points": labelme_polygon(box) if k else labelme_rectangle(box),
                           "shape_type": "polygon" if k else "rectangle", "group_id": None, "flags": {}})
        data = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"../images/{image_id}.png",
                "imageData": None, "imageHeight": H, "imageWidth": W}
        if image_id == embed:
            ok, png = cv2.imencode(".png", np.full((H, W, 3), GRAY, np.uint8))
            data["imageData"] = base64.b64encode(png.tobytes()).decode("ascii")
        else:
            write_image(root / "images" / f"{image_id}.png")
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"{image_id}.json").write_text(json.dumps(data))
    entry = {"FORMAT": "labelme", "FOLDER": str(root / "labels"), "THING_CLASSES": ["cat"]}
    # Derived classes: background, then the labels in alphabetical order.
    return FormatCase(entry, [], {i: expected_ids(i, 0, 2, 1) for i in IMAGE_IDS}, ["background", "cat", "grass"],
                      [1], {i: len(CATS[i]) for i in IMAGE_IDS})


CVAT_COLORS = {"background": (0, 0, 0), "cat": (250, 50, 83), "grass": (60, 200, 60)}
# The instance colors of CVAT's object masks (VOC's colormap: 1, 2, 3 ...).
INSTANCE_COLORS = [(128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]


def write_cvat_mask(root: Path) -> FormatCase:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + "".join(
        f"{name}:{','.join(map(str, color))}::\n" for name, color in CVAT_COLORS.items()))
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "default.txt").write_text("\n".join(IMAGE_IDS) + "\n")
    for image_id in IMAGE_IDS:
        write_image(root / "JPEGImages" / f"{image_id}.png")
        classes = np.zeros((H, W, 3), np.uint8)
        objects = np.zeros((H, W, 3), np.uint8)
        classes[box_mask(GRASS)] = CVAT_COLORS["grass"]
        objects[box_mask(GRASS)] = INSTANCE_COLORS[0]
        for k, box in enumerate(CATS[image_id], 1):
            classes[box_mask(box)] = CVAT_COLORS["cat"]
            objects[box_mask(box)] = INSTANCE_COLORS[k]
        write_rgb(root / "SegmentationClass" / f"{image_id}.png", classes)
        write_rgb(root / "SegmentationObject" / f"{image_id}.png", objects)
    entry = {"FORMAT": "cvat_mask", "ROOT": str(root), "THING_CLASSES": ["cat"]}
    return FormatCase(entry, ["default"], {i: expected_ids(i, 0, 2, 1) for i in IMAGE_IDS},
                      ["background", "cat", "grass"], [1], {i: len(CATS[i]) for i in IMAGE_IDS})


# labelIds: road 7 (trainId 0), vegetation 21 (8), person 24 (11), car 26 (13), static 4 (ignore).
ROAD, VEGETATION, PERSON, CAR, STATIC = 7, 21, 24, 26, 4
CITY_IGNORE_BOX = (0, 3, 0, 63)   # static: an ignore region along the top
CITY_CAR_CROWD = (56, 63, 50, 63)  # a car group without instance ids, on the vegetation


def write_cityscapes(root: Path) -> FormatCase:
    expected = {}
    for split in ("train", "val"):
        for image_id in IMAGE_IDS:
            stem = f"ulm_00000{IMAGE_IDS.index(image_id)}_0000{19 if split == 'train' else 20}"
            write_image(root / "leftImg8bit" / split / "ulm" / f"{stem}_leftImg8bit.png")
            label_ids = np.full((H, W), ROAD, np.uint8)
            label_ids[box_mask(GRASS)] = VEGETATION
            instance_ids = label_ids.astype(np.uint16)
            for k, box in enumerate(CATS[image_id]):
                label_ids[box_mask(box)] = PERSON
                instance_ids[box_mask(box)] = PERSON * 1000 + k
            for box, label in ((CITY_IGNORE_BOX, STATIC), (CITY_CAR_CROWD, CAR)):
                label_ids[box_mask(box)] = label
                instance_ids[box_mask(box)] = label
            gt = root / "gtFine" / split / "ulm"
            gt.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(gt / f"{stem}_gtFine_labelIds.png"), label_ids)
            assert cv2.imwrite(str(gt / f"{stem}_gtFine_instanceIds.png"), instance_ids)
            ids = expected_ids(image_id, 0, 8, 11)
            ids[box_mask(CITY_IGNORE_BOX)] = 19
            ids[box_mask(CITY_CAR_CROWD)] = 13
            expected[stem] = ids
    entry = {"FORMAT": "cityscapes", "ROOT": str(root)}
    return FormatCase(entry, ["train", "val"], expected, [], list(range(11, 19)),
                      {s: (3 if s.startswith("ulm_000000") else 2) + 1 for s in expected})


ADE_WALL, ADE_GRASS, ADE_PERSON = 1, 10, 13
ADE_UNLABELED_BOX = (24, 31, 0, 63)  # value 0: "other objects", the ignore class


def write_ade20k(root: Path) -> FormatCase:
    expected = {}
    for split, folder in (("train", "training"), ("val", "validation")):
        for image_id in IMAGE_IDS:
            stem = f"ADE_{split}_0000000{IMAGE_IDS.index(image_id) + 1}"
            write_image(root / "images" / folder / f"{stem}.jpg")
            values = expected_ids(image_id, ADE_WALL, ADE_GRASS, ADE_PERSON)
            values[box_mask(ADE_UNLABELED_BOX)] = 0
            (root / "annotations" / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / "annotations" / folder / f"{stem}.png"), values)
            ids = expected_ids(image_id, 0, 9, 12)
            ids[box_mask(ADE_UNLABELED_BOX)] = 150
            expected[stem] = ids
    entry = {"FORMAT": "ade20k", "ROOT": str(root)}
    return FormatCase(entry, ["train", "val"], expected, [], [])


WRITERS = {"coco": write_coco, "labelme": write_labelme, "cvat_mask": write_cvat_mask,
           "cityscapes": write_cityscapes, "ade20k": write_ade20k}
