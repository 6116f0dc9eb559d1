"""What a dataset's classes are, and how its label files encode them.

One `Metadata` travels from the dataset to the model checkpoint, so inference
needs nothing else. Class ids are contiguous, 0..num_classes-1, ignore classes
included, and mean the same thing everywhere: label files (after decoding),
model channels, segmentation_image.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Optional

import numpy as np
import yaml

from segdet.errors import DataError
from segdet.utils.image_io import LABEL_FORMATS

# 255 is the ignore value in model inputs, so class ids must stay below it.
MAX_CLASSES = 255


def default_palette(num_colors: int) -> list[tuple[int, int, int]]:
    """Distinct colors by bit interleaving (the PASCAL VOC scheme); color 0 is black."""
    colors = []
    for i in range(num_colors):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return colors


def label_key(raw: Any) -> str:
    """The text form of a raw label in a label_map: "7" (a pixel value), "128,64,128" (an RGB
    color, also from a list or tuple), or the label's name as given."""
    if isinstance(raw, bool):
        raise DataError(f"label_map key {raw!r} is neither a pixel value, a color nor a name")
    if isinstance(raw, (int, np.integer)):
        return str(int(raw))
    if isinstance(raw, (list, tuple)):
        if len(raw) != 3:
            raise DataError(f"label_map key {list(raw)} is not an RGB color (3 values)")
        return ",".join(str(int(v)) for v in raw)
    text = str(raw).strip()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return ",".join(str(int(p)) for p in parts)
    return str(int(text)) if text.isdigit() else text


def label_key_kind(key: str) -> str:
    """"value", "color" or "name": what a `label_key` text stands for."""
    if key.isdigit():
        return "value"
    parts = key.split(",")
    return "color" if len(parts) == 3 and all(p.isdigit() for p in parts) else "name"


@dataclass
class Metadata:
    """Classes of a dataset and the encoding of its label files.

    Attributes:
        class_names: name of each class id.
        class_colors: RGB display color of each class id; for label format "rgb"
            these are also the colors in the label files.
        ignore_class_ids: classes whose pixels take no part in loss or measures
            and that are never predicted (HALCON's ignore classes).
        thing_class_ids: classes with instances (things); the others are stuff.
        label_format: "gray" (pixel = value), "blue" (blue channel = value, DeepDIVA),
            "rgb" (pixel color = class color), "palette" (indexed PNG index = value),
            "instance_ids" (0 = background, k > 0 = instance k of the single thing class).
        label_values: the value that encodes each class in "gray", "blue" and
            "palette" files; None means value = class id.
        label_map: raw labels -> class ids, many to one, on top of `label_values` (or of the
            class colors for "rgb"): merges, drops (to an ignore class) or reorders classes
            without rewriting files. Keys are text, as `label_key` writes them: a pixel value
            ("7"), a color ("128,64,128") or a label name ("car", for formats whose labels
            are names); values are class ids (or names, turned into ids). The codec reads the
            entries of its format's kind (`label_key_kind`); see `check_label_map`.
        json_file: COCO instances json of the dataset, when it has one.
        name: the registered dataset name.
    """

    class_names: list[str]
    class_colors: Optional[list[tuple[int, int, int]]] = None
    ignore_class_ids: list[int] = field(default_factory=list)
    thing_class_ids: list[int] = field(default_factory=list)
    label_format: str = "gray"
    label_values: Optional[list[int]] = None
    label_map: Optional[dict[str, int]] = None
    json_file: Optional[str] = None
    name: str = ""

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        n = len(self.class_names)
        where = f"dataset '{self.name}'" if self.name else "metadata"
        if n == 0:
            raise DataError(f"{where}: no classes declared")
        if n > MAX_CLASSES:
            raise DataError(f"{where}: {n} classes; at most {MAX_CLASSES} are supported")
        if len(set(self.class_names)) != n:
            raise DataError(f"{where}: class names are not unique: {self.class_names}")
        if self.class_colors is None:
            self.class_colors = default_palette(n)
        self.class_colors = [tuple(int(v) for v in c) for c in self.class_colors]
        if len(self.class_colors) != n or any(len(c) != 3 for c in self.class_colors):
            raise DataError(f"{where}: expected {n} RGB class colors, got {self.class_colors}")
        for key in ("ignore_class_ids", "thing_class_ids"):
            ids = [int(i) for i in getattr(self, key)]
            bad = [i for i in ids if not 0 <= i < n]
            if bad:
                raise DataError(f"{where}: {key} {bad} are not class ids 0..{n - 1}")
            setattr(self, key, sorted(set(ids)))
        overlap = set(self.ignore_class_ids) & set(self.thing_class_ids)
        if overlap:
            raise DataError(f"{where}: classes {sorted(overlap)} are both ignore and thing classes")
        if self.label_format not in LABEL_FORMATS:
            raise DataError(f"{where}: label format {self.label_format!r}; expected one of {list(LABEL_FORMATS)}")
        if self.label_values is not None:
            self.label_values = [int(v) for v in self.label_values]
            if len(self.label_values) != n or len(set(self.label_values)) != n:
                raise DataError(f"{where}: label_values must give one distinct value per class: {self.label_values}")
        if self.label_map is not None:
            self.label_map = self._class_ids_of(self.label_map, where)
        if self.label_format == "rgb" and len(set(self.class_colors)) != n:
            raise DataError(f"{where}: label format 'rgb' needs a distinct color per class")
        if self.label_format == "instance_ids" and len(self.thing_class_ids) != 1:
            raise DataError(f"{where}: label format 'instance_ids' needs exactly one thing class")

    def _class_ids_of(self, label_map: Any, where: str) -> dict[str, int]:
        """`label_map` with text keys and class-id values (class names looked up)."""
        if not isinstance(label_map, dict):
            raise DataError(f"{where}: label_map must be a mapping raw label -> class, got {type(label_map).__name__}")
        ids = {name: i for i, name in enumerate(self.class_names)}
        out: dict[str, int] = {}
        for raw, target in label_map.items():
            key = label_key(raw)
            if isinstance(target, str) and target in ids:
                out[key] = ids[target]
            elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) \
                    and 0 <= int(target) < self.num_classes:
                out[key] = int(target)
            else:
                raise DataError(f"{where}: label_map sends {raw!r} to {target!r}, which is not a class "
                                f"(ids 0..{self.num_classes - 1} or names {self.class_names})")
        if {"value", "color"} <= {label_key_kind(k) for k in out}:
            raise DataError(f"{where}: label_map mixes color and value keys: {sorted(out)}")
        return out

    def with_label_map(self, label_map: dict) -> "Metadata":
        """A copy whose label_map is this one's with `label_map`'s entries added (they win)."""
        where = f"dataset '{self.name}'" if self.name else "metadata"
        merged = dict(self.label_map or {})
        merged.update(self._class_ids_of(label_map, where))
        out = replace(self, label_map=merged)
        out.check_label_map(where)
        return out

    def check_label_map(self, where: str) -> None:
        """The label_map's keys must be of the kind the label format holds: pixel values for
        "gray", "blue", "palette", colors for "rgb", names for formats that label by name
        (their loaders consume the map); "instance_ids" files hold no classes to map."""
        expected = {"rgb": "color", "instance_ids": None}.get(self.label_format, "value")
        wrong = [k for k in self.label_map or {} if label_key_kind(k) not in (expected, "name")]
        if wrong:
            raise DataError(
                f"{where}: label_map keys are {label_key_kind(wrong[0])}s {wrong[:5]}, but label format "
                f"'{self.label_format}' holds " + (f"{expected}s" if expected else "instance ids, not classes")
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def stuff_class_ids(self) -> list[int]:
        """Classes without instances that can be predicted (neither thing nor ignore)."""
        skip = set(self.thing_class_ids) | set(self.ignore_class_ids)
        return [i for i in range(self.num_classes) if i not in skip]

    # detectron2's names, so its users find what they expect.
    @property
    def stuff_classes(self) -> list[str]:
        return list(self.class_names)

    @property
    def stuff_colors(self) -> list[tuple[int, int, int]]:
        return list(self.class_colors)

    @property
    def thing_classes(self) -> list[str]:
        return [self.class_names[i] for i in self.thing_class_ids]

    @property
    def thing_colors(self) -> list[tuple[int, int, int]]:
        return [self.class_colors[i] for i in self.thing_class_ids]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for checkpoints and output folders)."""
        d = asdict(self)
        d["class_colors"] = [list(c) for c in self.class_colors]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Metadata":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def load_classes_file(path: str, **overrides: Any) -> Metadata:
    """Read a classes file (JSON or YAML) into Metadata.

    The file holds ``classes``: a list of ``{id, name, color?, ignore?, thing?, value?}``
    (ids must be 0..N-1, in any order), and optionally ``ignore_class_ids``,
    ``thing_class_ids``, ``label_format`` and ``label_map`` (raw label -> class id or name,
    many to one: see `Metadata.label_map`). ``value`` is the pixel value of the
    class in label files when it differs from its id (e.g. 255 for VOC's void).

    Args:
        path: the classes file.
        overrides: Metadata fields that replace what the file says.
    """
    if not os.path.isfile(path):
        raise DataError(f"classes file not found: {path}")
    try:
        with open(path) as f:
            raw = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise DataError(f"classes file {path} cannot be parsed: {e}") from None
    entries = raw.get("classes") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"classes file {path}: expected a non-empty list under 'classes'")
    try:
        by_id = {int(e["id"]): e for e in entries}
        names = [str(by_id[i]["name"]) for i in range(len(entries))]
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"classes file {path}: every class needs an 'id' and a 'name', and ids must be 0..{len(entries) - 1}"
        ) from None
    ordered = [by_id[i] for i in range(len(entries))]
    colors = [e.get("color") for e in ordered]
    values = [e.get("value", i) for i, e in enumerate(ordered)]
    ignore = set(raw.get("ignore_class_ids", [])) | {i for i, e in enumerate(ordered) if e.get("ignore")}
    things = set(raw.get("thing_class_ids", [])) | {i for i, e in enumerate(ordered) if e.get("thing")}
    kwargs: dict[str, Any] = dict(
        class_names=names,
        class_colors=colors if all(c is not None for c in colors) else None,
        ignore_class_ids=sorted(ignore),
        thing_class_ids=sorted(things),
        label_format=raw.get("label_format", "gray"),
        label_values=None if values == list(range(len(values))) else values,
        label_map=raw.get("label_map"),
    )
    kwargs.update(overrides)
    try:
        metadata = Metadata(**kwargs)
        metadata.check_label_map("label_map")
    except DataError as e:
        raise DataError(f"classes file {path}: {e}") from None
    return metadata
