"""Classes and colors of public datasets whose label files are color-coded.

Each function returns a fresh `Metadata`, so a caller may register it under its
own name (the catalog writes the name into the object it is given).
"""
from __future__ import annotations

from segdet.structures.metadata import Metadata, default_palette

VOC2012_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
# VOC marks object borders and unlabeled pixels with index 255 ("void"); it is an
# ignore class here, so that several ignore classes can sit next to it.
VOC2012_VOID_VALUE = 255

CAMVID_CLASSES = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
    ("Void", (0, 0, 0)),
)
CAMVID_VOID_ID = 11


def voc2012_metadata(label_format: str = "palette") -> Metadata:
    """PASCAL VOC 2012: 21 classes (ids 0..20) + `void` (id 21, file value 255, ignored).

    Args:
        label_format: "palette" for VOC's indexed PNGs, "rgb" for color PNGs with the
            VOC colormap, "gray" for PNGs whose value is the VOC index (e.g. SBD-style).
    Returns:
        Metadata with the VOC colormap as class colors.
    """
    colormap = default_palette(256)  # VOC's colormap is the bit-interleaving palette
    n = len(VOC2012_CLASS_NAMES)
    return Metadata(
        class_names=list(VOC2012_CLASS_NAMES) + ["void"],
        class_colors=colormap[:n] + [colormap[VOC2012_VOID_VALUE]],
        ignore_class_ids=[n],
        label_format=label_format,
        label_values=list(range(n)) + [VOC2012_VOID_VALUE],
    )


def camvid_metadata(label_format: str = "gray") -> Metadata:
    """CamVid, 11 classes of the SegNet tutorial (ids 0..10) + `Void` (id 11, ignored).

    Args:
        label_format: "gray" for the SegNet tutorial's annotation PNGs (value = id),
            "rgb" for PNGs painted with the class colors.
    """
    return Metadata(
        class_names=[name for name, _ in CAMVID_CLASSES],
        class_colors=[color for _, color in CAMVID_CLASSES],
        ignore_class_ids=[CAMVID_VOID_ID],
        label_format=label_format,
    )
