"""Turn label files into class-id maps (the segmentation_image) and back."""
from __future__ import annotations


import numpy as np
from PIL import Image

from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.utils.files import atomic_write
from segdet.utils.image_io import read_label_array, write_image

_UNKNOWN = -1


class LabelCodec:
    """Decodes and encodes the label files of one dataset, as its Metadata describes.

    Every decoded pixel is a declared class id; any other value in a file is an
    error naming the file and the values.
    """

    def __init__(self, metadata: Metadata):
        self.metadata = metadata
        self.label_format = metadata.label_format
        values = metadata.label_values or list(range(metadata.num_classes))
        self._values = np.asarray(values, dtype=np.int64)
        # Lookup table from file value to class id; -1 marks undeclared values.
        self._lut = np.full(max(65536, int(self._values.max()) + 1), _UNKNOWN, dtype=np.int16)
        self._lut[self._values] = np.arange(metadata.num_classes)
        self._colors = np.asarray(metadata.class_colors, dtype=np.int64)
        self._color_keys = (self._colors[:, 0] << 16) | (self._colors[:, 1] << 8) | self._colors[:, 2]

    def read(self, path: str) -> np.ndarray:
        """Read a label file into an HxW uint8 map of class ids."""
        return self.decode(read_label_array(path, self.label_format), path)

    def decode(self, raw: np.ndarray, path: str = "<array>") -> np.ndarray:
        """Class ids (HxW uint8) from the raw values of a label file."""
        if self.label_format == "instance_ids":
            ids = np.full(raw.shape, self._lut[0], dtype=np.int16)
            ids[raw > 0] = self.metadata.thing_class_ids[0]
        elif self.label_format == "rgb":
            ids = self._decode_colors(raw, path)
        else:
            ids = self._lut[raw]
        if ids.min(initial=0) < 0:
            self._raise_unknown(raw, ids, path)
        return ids.astype(np.uint8)

    def _decode_colors(self, rgb: np.ndarray, path: str) -> np.ndarray:
        keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        order = np.argsort(self._color_keys)
        sorted_keys = self._color_keys[order]
        pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
        ids = order[pos].astype(np.int16)
        ids[sorted_keys[pos] != keys] = _UNKNOWN
        return ids

    def _raise_unknown(self, raw: np.ndarray, ids: np.ndarray, path: str) -> None:
        bad = raw[ids < 0]
        if self.label_format == "rgb":
            colors = np.unique(bad.reshape(-1, 3), axis=0)[:10]
            shown = ", ".join(str(tuple(int(v) for v in c)) for c in colors)
            declared = ", ".join(f"{n}={tuple(c)}" for n, c in zip(self.metadata.class_names, self.metadata.class_colors))
            raise DataError(
                f"label file {path}: {int((ids < 0).sum())} pixels have colors that are not class colors: "
                f"{shown}. Declared: {declared}"
            )
        values = [int(v) for v in np.unique(bad)[:10]]
        raise DataError(
            f"label file {path}: value(s) {values} are not declared classes "
            f"(declared values: {self._values.tolist()}, classes: {self.metadata.class_names})"
        )

    def encode(self, class_ids: np.ndarray) -> np.ndarray | Image.Image:
        """The array (or PIL palette image) to write for a class-id map, in this dataset's format."""
        class_ids = np.asarray(class_ids)
        if class_ids.size and int(class_ids.max()) >= self.metadata.num_classes:
            raise DataError(f"class id {int(class_ids.max())} is not a class of '{self.metadata.name}'")
        if self.label_format == "rgb":
            return self._colors.astype(np.uint8)[class_ids]
        if self.label_format == "instance_ids":
            raise DataError("label format 'instance_ids' cannot encode a segmentation_image; use 'gray'")
        dtype = np.uint8 if self._values.max() < 256 else np.uint16
        # Look up in the small output type: an int64 copy of a large image is 8 bytes per pixel.
        values = self._values.astype(dtype)[class_ids]
        if self.label_format == "blue":
            out = np.zeros(class_ids.shape + (3,), dtype=np.uint8)
            out[..., 2] = values
            return out
        if self.label_format == "palette":
            image = Image.fromarray(values.astype(np.uint8), mode="P")
            palette = np.zeros((256, 3), dtype=np.uint8)
            palette[self._values] = self._colors
            image.putpalette(palette.reshape(-1).tolist())
            return image
        return values

    def write(self, path: str, class_ids: np.ndarray) -> None:
        """Write a class-id map as a label file of this dataset's format (PNG)."""
        encoded = self.encode(class_ids)
        if isinstance(encoded, Image.Image):
            atomic_write(path, lambda tmp: encoded.save(tmp, format="PNG"))
        else:
            write_image(path, encoded)
