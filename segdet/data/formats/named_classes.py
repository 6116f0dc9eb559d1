"""Classes of the formats whose labels are names: COCO categories, LabelMe labels, CVAT's labelmap.

A label name becomes a class id through the dataset's value map (`label_map`: name -> class,
many to one) or else by being a class's name. The classes come from a classes file, or,
without one, from the labels themselves:

    0 = the background class ("background", or `background_class`),
    then every label (after the label_map) in the order given, once,
    then "ignore", an ignore class, when a label is mapped to "ignore" (or the format asks for it).

A label mapped to the background class is dropped: it is drawn nowhere and has no instance.
Without a classes file, every class but background and ignore is a thing unless `thing_classes`
names the things.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from segdet.errors import DataError
from segdet.structures.metadata import Metadata, label_key, load_classes_file

BACKGROUND_NAME = "background"
IGNORE_NAME = "ignore"


@dataclasses.dataclass
class NamedClasses:
    """The classes of a name-labelled dataset and how its label names map onto them.

    `metadata` has no label_map (the map is consumed here): the files segdet derives from the
    labels hold class ids.
    """

    metadata: Metadata
    label_map: dict[str, int]
    background_id: int
    classes_file: Optional[str] = None

    def class_of(self, label: str, where: str) -> int:
        """The class id of a label name; an unknown label is a DataError naming `where`."""
        key = label_key(label)
        if key in self.label_map:
            return self.label_map[key]
        if label in self.metadata.class_names:
            return self.metadata.class_names.index(label)
        raise DataError(
            f"{where}: label '{label}' is not a class of the dataset and the label_map does not map it; "
            f"classes: {self.metadata.class_names}"
        )

    def is_dropped(self, class_id: int) -> bool:
        """Labels of the background class are not drawn (the background is what is left)."""
        return class_id == self.background_id

    def first_ignore_class(self, where: str) -> int:
        if not self.metadata.ignore_class_ids:
            raise DataError(f"{where}: the dataset has no ignore class; declare one in the classes file")
        return self.metadata.ignore_class_ids[0]


def named_classes(
    labels: Sequence[str],
    where: str,
    classes_file: Optional[str] = None,
    label_map: Optional[dict] = None,
    background_class: Optional[str] = None,
    thing_classes: Optional[Sequence[str]] = None,
    with_ignore: bool = False,
) -> NamedClasses:
    """The classes of a name-labelled dataset.

    Args:
        labels: the label names the dataset's files use, in the order their classes get ids
            (ignored with a classes file).
        where: names the dataset in messages.
        classes_file: the classes, with things and ignore classes (its `label_map` applies).
        label_map: label name -> class name (or id, with a classes file); wins over the file's.
        background_class: the class of unlabeled pixels; default class 0 of a classes file, else
            "background".
        thing_classes: the names of the thing classes (default: the classes file's, else all).
        with_ignore: add the "ignore" class even when no label is mapped to it.
    """
    if label_map is not None and not isinstance(label_map, dict):
        raise DataError(f"{where}: LABEL_MAP must be a mapping label -> class, got {label_map!r}")
    given = {label_key(k): v for k, v in (label_map or {}).items()}
    if classes_file:
        metadata = load_classes_file(classes_file)
        if given:
            metadata = metadata.with_label_map(given)
        mapping = dict(metadata.label_map or {})
        metadata = dataclasses.replace(metadata, label_map=None)
        if thing_classes is not None:
            metadata = dataclasses.replace(metadata, thing_class_ids=_ids(metadata, thing_classes, where))
    else:
        bad = {k: v for k, v in given.items() if not isinstance(v, str)}
        if bad:
            raise DataError(f"{where}: without a classes file the label_map must send labels to class names, "
                            f"got {bad}")
        background = background_class or BACKGROUND_NAME
        targets = []
        for label in labels:
            target = given.get(label_key(label), label)
            if target not in targets and target not in (background, IGNORE_NAME):
                targets.append(target)
        with_ignore = with_ignore or IGNORE_NAME in given.values()
        names = [background] + targets + ([IGNORE_NAME] if with_ignore else [])
        things = targets if thing_classes is None else list(thing_classes)
        metadata = Metadata(names, ignore_class_ids=[len(names) - 1] if with_ignore else [],
                            thing_class_ids=_ids(Metadata(names), things, where))
        mapping = {k: names.index(v) for k, v in given.items()}
    background_id = 0 if background_class is None else _ids(metadata, [background_class], where)[0]
    if background_id in metadata.thing_class_ids or background_id in metadata.ignore_class_ids:
        raise DataError(f"{where}: the background class '{metadata.class_names[background_id]}' must be a "
                        "stuff class (neither thing nor ignore); name another with BACKGROUND_CLASS")
    return NamedClasses(metadata, mapping, background_id, classes_file)


def _ids(metadata: Metadata, names: Sequence[str], where: str) -> list[int]:
    unknown = [n for n in names if n not in metadata.class_names]
    if unknown:
        raise DataError(f"{where}: {unknown} are not classes; classes: {metadata.class_names}")
    return [metadata.class_names.index(n) for n in names]
