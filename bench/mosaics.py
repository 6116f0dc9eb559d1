"""Mosaics of dataset images with their ground truth assembled the same way, for the tiled
instance benchmarks: an object of image k is the same object at its cell's offset in the mosaic.

    cells = demo_cells(num_images=64, seed=1000)          # fresh demo images, unseen in training
    cells = pennfudan_cells("pennfudan_val", min_size=288, max_size=576)
    mosaics = build_mosaics(cells, columns=4, rows=4)    # [Mosaic(image, annotations, cells)]

Ground-truth masks are placed by `crop_to_rle` (COCO RLE at mosaic coordinates, no full-size mask).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import cv2
import numpy as np

from segdet.structures.boxes import BoxMode
from segdet.structures.masks import crop_to_rle, rle_box, segmentation_to_mask
from segdet.utils.image_io import read_image


@dataclass
class Cell:
    """One image and its instance annotations (masks at its own size)."""

    name: str
    image: np.ndarray  # HxWx3 uint8
    masks: list  # of HxW bool
    classes: list  # class ids


@dataclass
class Mosaic:
    image: np.ndarray
    annotations: list  # dataset-dict annotations (RLE at mosaic coordinates)
    cells: list  # (Cell, top, left)

    @property
    def dataset_dict(self) -> dict:
        h, w = self.image.shape[:2]
        return {"file_name": f"mosaic_{id(self)}", "height": h, "width": w, "annotations": self.annotations}


def demo_cells(num_images: int, seed: int, size: int = 192) -> list[Cell]:
    """Freshly drawn demo images (another seed than the training data's), with their annotations."""
    from segdet.data.demo import generate_demo_dataset

    with tempfile.TemporaryDirectory(prefix="segdet_mosaic_") as root:
        generate_demo_dataset(root, num_images=num_images, seed=seed, image_size=(size, size), splits=(1.0, 0.0, 0.0))
        cells = []
        for split in ("train", "val", "test"):
            path = os.path.join(root, "annotations", f"instances_{split}.json")
            with open(path) as f:
                coco = json.load(f)
            by_image: dict = {}
            for ann in coco["annotations"]:
                by_image.setdefault(ann["image_id"], []).append(ann)
            class_of = {c["id"]: ["background", "orange", "lemon", "apple"].index(c["name"]) for c in coco["categories"]}
            for img in coco["images"]:
                anns = by_image.get(img["id"], [])
                cells.append(Cell(img["file_name"], read_image(os.path.join(root, "images", split, img["file_name"])),
                                  [segmentation_to_mask(a["segmentation"], size, size) for a in anns],
                                  [class_of[a["category_id"]] for a in anns]))
    return sorted(cells, key=lambda c: c.name)


def pennfudan_cells(dataset: str, min_size: int, max_size: int) -> list[Cell]:
    """Penn-Fudan images resized as the model's test-time resize would (shortest edge `min_size`,
    longest at most `max_size`), masks resized with them (nearest neighbour)."""
    from segdet.data.catalog import DatasetCatalog
    from segdet.data.transforms.augmentation import ResizeShortestEdge

    cells = []
    for d in DatasetCatalog.get(dataset):
        image = read_image(d["file_name"])
        h, w = image.shape[:2]
        nh, nw = ResizeShortestEdge.output_size(h, w, min_size, max_size)
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        masks = [cv2.resize(segmentation_to_mask(a["segmentation"], h, w).astype(np.uint8), (nw, nh),
                            interpolation=cv2.INTER_NEAREST).astype(bool) for a in d.get("annotations", [])]
        cells.append(Cell(os.path.basename(d["file_name"]), resized, masks,
                          [int(a["category_id"]) for a in d.get("annotations", [])]))
    return cells


def build_mosaics(cells: list[Cell], columns: int, rows: int, gutter: int = 0,
                  fill: tuple = (0, 0, 0)) -> list[Mosaic]:
    """Mosaics of columns x rows cells each, in order (a last incomplete mosaic is dropped). Cells
    of different sizes sit at the top-left of a cell as large as the largest, `fill` colour
    around (the model's pixel mean is what its own zero padding after normalization looks like);
    `gutter` pixels more between cells keep a tile from seeing two images."""
    per = columns * rows
    cell_h = max(c.image.shape[0] for c in cells) + gutter
    cell_w = max(c.image.shape[1] for c in cells) + gutter
    mosaics = []
    for start in range(0, len(cells) - per + 1, per):
        image = np.empty((rows * cell_h, columns * cell_w, 3), dtype=np.uint8)
        image[:] = np.asarray(fill, dtype=np.uint8)
        annotations, placed = [], []
        for k, cell in enumerate(cells[start:start + per]):
            top, left = (k // columns) * cell_h, (k % columns) * cell_w
            h, w = cell.image.shape[:2]
            image[top:top + h, left:left + w] = cell.image
            placed.append((cell, top, left))
            for mask, class_id in zip(cell.masks, cell.classes):
                rle = crop_to_rle(mask, top, left, *image.shape[:2])
                annotations.append({"segmentation": rle, "bbox": rle_box(rle), "bbox_mode": int(BoxMode.XYWH_ABS),
                                    "category_id": int(class_id), "iscrowd": 0})
        mosaics.append(Mosaic(image, annotations, placed))
    return mosaics


def share_in_one_image(box_xywh, placed: list) -> float:
    """The largest share of an XYWH box's area that lies within one of the mosaic's images
    (`Mosaic.cells`): about 1 for a detection of one image's object (a box clipped to its image
    is 1 exactly), lower for one that spans two images or sits in the fill between them, which
    no image seen alone can give."""
    x, y, w, h = box_xywh
    best = 0.0
    for cell, top, left in placed:
        height, width = cell.image.shape[:2]
        overlap_w = min(x + w, left + width) - max(x, left)
        overlap_h = min(y + h, top + height) - max(y, top)
        if overlap_w > 0 and overlap_h > 0:
            best = max(best, overlap_w * overlap_h / max(w * h, 1e-9))
    return best


def tile_mosaic(cells: list[Cell], height: int, width: int) -> np.ndarray:
    """A height x width image filled with the cells' images in order, cycling (for the scale
    benchmark: realistic content at any size)."""
    cell_h, cell_w = cells[0].image.shape[:2]
    image = np.zeros((height, width, 3), dtype=np.uint8)
    k = 0
    for top in range(0, height, cell_h):
        for left in range(0, width, cell_w):
            patch = cells[k % len(cells)].image
            image[top:top + cell_h, left:left + cell_w] = patch[:height - top, :width - left]
            k += 1
    return image
