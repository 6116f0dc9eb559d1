"""The layout of a prediction folder (what `segdet.inference.predict_files` writes): for each
image, `<stem>.png` (the segmentation_image) and next to it `<stem>_confidence.*` and
`<stem>_overlay.jpg`; for the folder, `segdet_predictions.json` (the manifest: the model file,
its classes, the label format of the PNGs, the input of each stem). Whoever reads such a
folder (evaluation, pictures) finds the segmentation files and the manifest here, so that the
side files never pass for predictions and nobody has to type the classes again."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

from segdet.data.label_codec import LabelCodec, segmentation_codec
from segdet.errors import DataError
from segdet.structures.metadata import Metadata
from segdet.utils.files import files_by_stem, write_json
from segdet.utils.image_io import IMAGE_EXTENSIONS

# Suffixes of the files written next to each segmentation_image <stem>.png.
SIDE_FILE_SUFFIXES = ("_confidence", "_overlay")
MANIFEST_FILE = "segdet_predictions.json"
MANIFEST_VERSION = 1


@dataclasses.dataclass
class PredictionManifest:
    """What a prediction folder holds: `metadata` are the model's classes with `label_format` the
    encoding of the segmentation PNGs; `inputs` maps each stem to the image it was predicted from."""

    weights: str
    metadata: Metadata
    label_format: str
    inputs: dict[str, str]

    def write(self, folder: str) -> str:
        return write_json({"version": MANIFEST_VERSION, "weights": self.weights, "label_format": self.label_format,
                           "metadata": self.metadata.to_dict(), "inputs": self.inputs},
                          os.path.join(folder, MANIFEST_FILE))

    def segmentation_metadata(self) -> Metadata:
        """The model's classes with the label format the PNGs were written in (their codec's metadata)."""
        return dataclasses.replace(self.metadata, label_format=self.label_format)


def read_manifest(folder: str) -> Optional[PredictionManifest]:
    """The manifest of a prediction folder, or None when it has none (predictions of another tool)."""
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            raw: Any = json.load(f)
        return PredictionManifest(weights=str(raw.get("weights", "")), metadata=Metadata.from_dict(raw["metadata"]),
                                  label_format=str(raw["label_format"]), inputs=dict(raw.get("inputs", {})))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, DataError) as e:
        raise DataError(f"prediction manifest {path} is unreadable or incomplete ({type(e).__name__}: {e}); "
                        "delete it to use the folder without it") from None


def prediction_files(folder: str) -> dict[str, str]:
    """stem -> segmentation_image file of a prediction folder: its image files without the
    confidence and overlay pictures that `predict_files` writes next to them. A folder without
    any is a DataError naming it."""
    files = files_by_stem(folder, IMAGE_EXTENSIONS, "prediction")
    found = {stem: path for stem, path in files.items()
             if not any(stem.endswith(suffix) and stem[: -len(suffix)] in files for suffix in SIDE_FILE_SUFFIXES)}
    if not found:
        raise DataError(f"prediction folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return found


def prediction_codec(folder: str, metadata: Metadata, label_format: Optional[str] = None) -> LabelCodec:
    """The codec that reads a prediction folder's segmentation PNGs as `metadata`'s classes: in
    `label_format` when given, else in the format its manifest records, else as
    `predict_files` would have written them for these classes."""
    manifest = read_manifest(folder)
    return segmentation_codec(metadata, label_format or (manifest.label_format if manifest else None))
