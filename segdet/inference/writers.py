"""Files a prediction is written to: segmentation_image (in a dataset's label format),
segmentation_confidence (PNG, float TIFF or NPY), an overlay picture, COCO results json."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from segdet.data.label_codec import segmentation_codec
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError, DataError
from segdet.structures.coco import instances_to_coco_results
from segdet.utils.arrays import to_numpy
from segdet.utils.files import atomic_write, write_json
from segdet.utils.image_io import write_image

logger = logging.getLogger(__name__)

# Label formats a segmentation_image can be written in ("instance_ids" cannot hold classes).
CONFIDENCE_FORMATS = ("png", "tiff", "npy")
CONFIDENCE_EXTENSIONS = {"png": ".png", "tiff": ".tiff", "npy": ".npy"}


def write_segmentation(path: str, segmentation_image: Any, metadata: Metadata, label_format: str | None = None) -> str:
    """Write class ids as a PNG label file that the dataset's LabelCodec reads back to the same ids.

    Args:
        path: the PNG to write.
        segmentation_image: (H, W) class ids (tensor or array).
        metadata: the model's classes (label values and colors come from it).
        label_format: "gray" (pixel = class value), "blue" (DeepDIVA: value in the blue
            channel), "palette" (indexed PNG with the class colors) or "rgb" (class colors);
            None = the dataset's own format ("gray" when that is "instance_ids").
    Returns:
        The path written.
    """
    codec = segmentation_codec(metadata, label_format)
    ids = to_numpy(segmentation_image)
    if ids.ndim != 2:
        raise DataError(f"segmentation_image for {path} has shape {ids.shape}; expected (H, W)")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= metadata.num_classes):
        raise DataError(f"segmentation_image for {path} holds values outside the class ids "
                        f"0..{metadata.num_classes - 1}: {int(ids.min())}..{int(ids.max())}")
    # Class ids are < 255 (Metadata's limit): one byte per pixel instead of an int64 copy.
    codec.write(path, ids.astype(np.uint8, copy=False))
    return path


def write_confidence(path: str, confidence: Any, fmt: str = "png") -> str:
    """Write segmentation_confidence (H, W, values in [0, 1]).

    Args:
        fmt: "png" (uint8, round(255 * confidence)), "tiff" (float32, lossless) or "npy"
            (float32, numpy's format).
    Returns:
        The path written.
    """
    if fmt not in CONFIDENCE_FORMATS:
        raise ConfigError(f"confidence format {fmt!r}; expected one of {list(CONFIDENCE_FORMATS)}")
    values = to_numpy(confidence).astype(np.float32)
    if values.ndim != 2:
        raise DataError(f"segmentation_confidence for {path} has shape {values.shape}; expected (H, W)")
    if fmt == "npy":
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would otherwise append ".npy"
                np.save(f, values)

        return atomic_write(path, write)
    if fmt == "png":
        values = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    write_image(path, values)
    return path


def write_overlay(path: str, image: np.ndarray, output: dict, metadata: Metadata, alpha: float = 0.5,
                  score_threshold: float = 0.5) -> str:
    """Write the image with the classes colored and, when the output has instances, their outlines
    and labels (JPEG or any format the extension names).

    Returns:
        The path written.
    """
    from segdet.visualization.overlays import draw_overlay

    instances = output.get("instances")
    if instances is not None:
        instances = instances.numpy()
    picture = draw_overlay(image, to_numpy(output["segmentation_image"]), metadata, instances=instances,
                           alpha=alpha, score_threshold=score_threshold)
    write_image(path, np.ascontiguousarray(picture, dtype=np.uint8))
    return path


class CocoResultsWriter:
    """Collects the predicted instances of many images and writes one COCO results json
    ([{image_id, category_id, bbox XYWH, score, segmentation RLE}], category_id = class id).

    Usage:
        writer = CocoResultsWriter(path)
        writer.add(image_id, output["instances"])   # per image
        writer.write()
    """

    def __init__(self, path: str):
        self.path = path
        self.results: list[dict] = []
        self.num_images = 0

    def add(self, image_id: Any, instances: dict) -> int:
        """Add one image's instances; returns how many there were."""
        return self.add_results(instances_to_coco_results(instances, image_id))

    def add_results(self, results: list[dict]) -> int:
        """Add one image's COCO results (`instances_to_coco_results`, computed elsewhere, e.g. in a
        writer thread); returns how many there were."""
        self.results.extend(results)
        self.num_images += 1
        return len(results)

    def write(self) -> str:
        """Write the json atomically (an empty list when no instance was found)."""
        return write_json(self.results, self.path, indent=None)
