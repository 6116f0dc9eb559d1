"""ADE20K, the SceneParsing benchmark release (ADEChallengeData2016).

    root/images/training/ADE_train_00000001.jpg     root/annotations/training/ADE_train_00000001.png
    root/images/validation/ADE_val_00000001.jpg     root/annotations/validation/ADE_val_00000001.png

Annotations are gray PNGs: 0 = "other objects" (not labelled), 1..150 the 150 classes. As
MMSegmentation's `reduce_zero_label`, value v > 0 is class v - 1 (ids 0..149) and value 0 is
the ignore class `ignore` (id 150): the files are read as they are (`label_values`).
"""
from __future__ import annotations

import os
from typing import Optional

from segdet.data.formats.image_folder import register_image_folder_splits
from segdet.structures.metadata import Metadata

# The 150 class names of the benchmark, in value order 1..150 (objectInfo150.csv; the names
# detectron2 uses).
ADE20K_CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road, route", "bed", "window", "grass",
    "cabinet", "sidewalk, pavement", "person", "earth, ground", "door", "table", "mountain, mount",
    "plant", "curtain", "chair", "car", "water", "painting, picture", "sofa", "shelf", "house", "sea",
    "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock, stone",
    "wardrobe, closet, press", "lamp", "tub", "rail", "cushion", "base, pedestal, stand", "box",
    "column, pillar", "signboard, sign", "chest of drawers, chest, bureau, dresser", "counter", "sand",
    "sink", "skyscraper", "fireplace", "refrigerator, icebox", "grandstand, covered stand", "path",
    "stairs", "runway", "case, display case, showcase, vitrine",
    "pool table, billiard table, snooker table", "pillow", "screen door, screen", "stairway, staircase",
    "river", "bridge, span", "bookcase", "blind, screen", "coffee table",
    "toilet, can, commode, crapper, pot, potty, stool, throne", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm, palm tree", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel, hut, hutch, shack, shanty", "bus", "towel", "light", "truck", "tower",
    "chandelier", "awning, sunshade, sunblind", "street lamp", "booth", "tv", "plane", "dirt track",
    "clothes", "pole", "land, ground, soil", "bannister, banister, balustrade, balusters, handrail",
    "escalator, moving staircase, moving stairway", "ottoman, pouf, pouffe, puff, hassock", "bottle",
    "buffet, counter, sideboard", "poster, posting, placard, notice, bill, card", "stage", "van", "ship",
    "fountain", "conveyer belt, conveyor belt, conveyer, conveyor, transporter", "canopy",
    "washer, automatic washer, washing machine", "plaything, toy", "pool", "stool", "barrel, cask",
    "basket, handbasket", "falls", "tent", "bag", "minibike, motorbike", "cradle", "oven", "ball",
    "food, solid food", "step, stair", "tank, storage tank", "trade name", "microwave", "pot", "animal",
    "bicycle", "lake", "dishwasher", "screen", "blanket, cover", "sculpture", "hood, exhaust hood",
    "sconce", "vase", "traffic light", "tray", "trash can", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass, drinking glass", "clock", "flag",
)
IGNORE_NAME = "ignore"
ADE20K_SPLITS = (("train", "training"), ("val", "validation"))


def ade20k_metadata() -> Metadata:
    """150 classes (id = file value - 1) + `ignore` (id 150, file value 0)."""
    n = len(ADE20K_CLASS_NAMES)
    return Metadata(class_names=list(ADE20K_CLASS_NAMES) + [IGNORE_NAME], ignore_class_ids=[n],
                    label_values=list(range(1, n + 1)) + [0])


def register_ade20k(root: str, name_prefix: str = "ade20k", label_map: Optional[dict] = None) -> list[str]:
    """Register `<name_prefix>_train` and `<name_prefix>_val` of an ADEChallengeData2016 folder.

    Args:
        label_map: file value -> class (id or name), added to the benchmark's encoding.
    Returns:
        The registered names.
    """
    metadata = ade20k_metadata()
    if label_map:
        metadata = metadata.with_label_map(label_map)
    splits = [(split, os.path.join(root, "images", folder), os.path.join(root, "annotations", folder))
              for split, folder in ADE20K_SPLITS]
    return register_image_folder_splits(name_prefix, splits, metadata)
