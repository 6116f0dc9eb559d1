"""Turn label files into class-id maps (the segmentation_image) and back."""
from __future__ import annotations

import dataclasses


import numpy as np
from PIL import Image

from segdet.structures.metadata import Metadata, label_key_kind
from segdet.errors import ConfigError, DataError
from segdet.utils.files import atomic_write
from segdet.utils.image_io import read_label_array, write_image

_UNKNOWN = -1


class LabelCodec:
    """Decodes and encodes the label files of one dataset, as its Metadata describes.

    Every decoded pixel is a declared class id; any other value in a file is an
    error naming the file and the values. A raw value (or color) is declared by the
    class's `label_values` entry (or its color) and by the `label_map` entries of the
    format's kind, which win and may send several raw values to one class. Encoding writes,
    for each class, its own value when that still decodes to it, else the smallest raw value
    the label_map sends to it, so that decode(encode(ids)) == ids.
    """

    def __init__(self, metadata: Metadata):
        self.metadata = metadata
        self.label_format = metadata.label_format
        n = metadata.num_classes
        self._colors = np.asarray(metadata.class_colors, dtype=np.int64)
        if self.label_format == "rgb":
            base = _pack(self._colors)
            extra = [(_pack(np.asarray([int(v) for v in k.split(",")])), c) for k, c in self._map_entries("color")]
        else:
            base = np.asarray(metadata.label_values or list(range(n)), dtype=np.int64)
            extra = [(int(k), c) for k, c in self._map_entries("value")]
        table = dict(zip(base.tolist(), range(n)))
        table.update(extra)
        self._raw = np.asarray(sorted(table), dtype=np.int64)  # every declared raw value (or packed color)
        self._raw_class = np.asarray([table[r] for r in self._raw.tolist()], dtype=np.int16)
        # What each class is written as: its own value if that still decodes to it, else the smallest
        # raw value mapped to it; -1 when nothing decodes to it (it cannot be written).
        self._encoding = np.full(n, -1, dtype=np.int64)
        for raw, c in zip(self._raw.tolist()[::-1], self._raw_class.tolist()[::-1]):
            self._encoding[c] = raw
        own = np.asarray([table.get(int(v)) == c for c, v in enumerate(base.tolist())])
        self._encoding[own] = base[own]
        if self.label_format != "rgb":
            # Lookup table from file value to class id; -1 marks undeclared values.
            self._lut = np.full(max(65536, int(self._raw.max()) + 1), _UNKNOWN, dtype=np.int16)
            self._lut[self._raw] = self._raw_class

    def _map_entries(self, kind: str) -> list[tuple[str, int]]:
        """The label_map entries this format reads: pixel values, or colors for "rgb"."""
        entries = (self.metadata.label_map or {}).items()
        names = [k for k, _ in entries if label_key_kind(k) == "name"]
        if names:
            raise DataError(
                f"dataset '{self.metadata.name}': label_map keys {names[:5]} are label names, but label files of "
                f"format '{self.label_format}' hold {kind}s; names are mapped by the formats that label by name"
            )
        if self.label_format == "instance_ids":
            return []
        return [(k, c) for k, c in entries if label_key_kind(k) == kind]

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
        keys = _pack(rgb)
        pos = np.clip(np.searchsorted(self._raw, keys), 0, len(self._raw) - 1)
        ids = self._raw_class[pos]
        ids[self._raw[pos] != keys] = _UNKNOWN
        return ids

    def _raise_unknown(self, raw: np.ndarray, ids: np.ndarray, path: str) -> None:
        bad = raw[ids < 0]
        if self.label_format == "rgb":
            colors = np.unique(bad.reshape(-1, 3), axis=0)[:10]
            shown = ", ".join(str(tuple(int(v) for v in c)) for c in colors)
            declared = ", ".join(f"{self.metadata.class_names[c]}={_unpack(r)}"
                                 for r, c in zip(self._raw.tolist(), self._raw_class.tolist()))
            raise DataError(
                f"label file {path}: {int((ids < 0).sum())} pixels have colors that are not class colors: "
                f"{shown}. Declared: {declared}"
            )
        values = [int(v) for v in np.unique(bad)[:10]]
        raise DataError(
            f"label file {path}: value(s) {values} are not declared classes "
            f"(declared values: {self._raw.tolist()}, classes: {self.metadata.class_names})"
        )

    def encode(self, class_ids: np.ndarray) -> np.ndarray | Image.Image:
        """The array (or PIL palette image) to write for a class-id map, in this dataset's format."""
        class_ids = np.asarray(class_ids)
        if class_ids.size and int(class_ids.max()) >= self.metadata.num_classes:
            raise DataError(f"class id {int(class_ids.max())} is not a class of '{self.metadata.name}'")
        if self.label_format == "instance_ids":
            raise DataError("label format 'instance_ids' cannot encode a segmentation_image; use 'gray'")
        unwritable = [int(c) for c in np.flatnonzero(self._encoding < 0) if (class_ids == c).any()]
        if unwritable:
            raise DataError(f"dataset '{self.metadata.name}': class(es) {unwritable} have no raw value in its "
                            "label_map, so they cannot be written in its label format")
        if self.label_format == "rgb":
            colors = np.stack([(self._encoding >> s) & 255 for s in (16, 8, 0)], axis=1)
            return colors.astype(np.uint8)[class_ids]
        encoding = np.maximum(self._encoding, 0)
        dtype = np.uint8 if encoding.max() < 256 else np.uint16
        # Look up in the small output type: an int64 copy of a large image is 8 bytes per pixel.
        values = encoding.astype(dtype)[class_ids]
        if self.label_format == "blue":
            out = np.zeros(class_ids.shape + (3,), dtype=np.uint8)
            out[..., 2] = values
            return out
        if self.label_format == "palette":
            image = Image.fromarray(values.astype(np.uint8), mode="P")
            palette = np.zeros((256, 3), dtype=np.uint8)
            writable = self._encoding >= 0
            palette[self._encoding[writable]] = self._colors[writable]
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


def _pack(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) -> one integer per color."""
    rgb = np.asarray(rgb).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(key: int) -> tuple[int, int, int]:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


# Label formats a segmentation_image can be written in ("instance_ids" cannot hold classes).
SEGMENTATION_FORMATS = ("gray", "blue", "palette", "rgb")


def segmentation_format(metadata: Metadata, label_format: str | None = None) -> str:
    """The label format to write: the one asked for, else the dataset's, "gray" for "instance_ids"."""
    fmt = label_format or metadata.label_format
    if label_format is None and fmt not in SEGMENTATION_FORMATS:
        fmt = "gray"
    if fmt not in SEGMENTATION_FORMATS:
        raise ConfigError(f"label format {fmt!r} cannot hold a segmentation_image; expected one of "
                          f"{list(SEGMENTATION_FORMATS)}")
    return fmt


def segmentation_codec(metadata: Metadata, label_format: str | None = None) -> LabelCodec:
    """The codec of segmentation_image files written with `write_segmentation(..., label_format)`:
    it writes them and reads them back to the same class ids."""
    fmt = segmentation_format(metadata, label_format)
    return LabelCodec(metadata if fmt == metadata.label_format else dataclasses.replace(metadata, label_format=fmt))
