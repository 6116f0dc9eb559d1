"""segdet's datasets in detectron2's DatasetCatalog and MetadataCatalog.

Every dataset in segdet's catalog (the built-in ones, registered on import, and the
DATASETS.CUSTOM ones of a config, with `register_segdet_datasets(cfg)`) gets the same name in
detectron2's catalogs. Its dicts are segdet's with one change, detectron2's convention: the
annotations' `category_id` is the thing index. Its metadata holds the keys detectron2's own
code reads and segdet's.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import MetadataCatalog as D2MetadataCatalog

from segdet.d2.convert import ThingIds
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.data.resolve import resolve_metadata
from segdet.errors import ConfigError
from segdet.structures.metadata import Metadata

# detectron2's SemSegEvaluator takes one ignore value; without (or with several) ignore classes
# it gets the value no class has (detectron2 knows no several).
NO_CLASS = 255
# Not one of detectron2's evaluator types: `segdet.d2.build_evaluator` chooses the evaluators.
EVALUATOR_TYPE = "segdet"


def detectron2_metadata(metadata: Metadata) -> dict[str, Any]:
    """The metadata of a segdet dataset under detectron2's keys, plus segdet's.

    Stuff classes are all classes (the semantic channels), so detectron2's stuff ids are the class
    ids; thing classes are numbered 0..K-1 in class-id order.
    """
    ignore = metadata.ignore_class_ids
    return {
        "thing_classes": metadata.thing_classes,
        "thing_colors": [list(c) for c in metadata.thing_colors],
        "stuff_classes": metadata.stuff_classes,
        "stuff_colors": [list(c) for c in metadata.stuff_colors],
        "thing_dataset_id_to_contiguous_id": ThingIds(metadata.thing_class_ids).dataset_id_to_contiguous_id(),
        "stuff_dataset_id_to_contiguous_id": {i: i for i in range(metadata.num_classes)},
        "ignore_label": ignore[0] if len(ignore) == 1 else NO_CLASS,
        "evaluator_type": EVALUATOR_TYPE,
        "ignore_class_ids": list(ignore),
        "label_format": metadata.label_format,
        "label_values": metadata.label_values,
        "segdet_metadata": metadata.to_dict(),
    }


def detectron2_dicts(name: str) -> list[dict]:
    """The dicts of segdet's dataset `name` in detectron2's convention (thing indices)."""
    things = ThingIds(MetadataCatalog.get(name).thing_class_ids)
    dicts = DatasetCatalog.get(name)
    out = []
    for d in dicts:
        if d.get("annotations"):
            d = {**d, "annotations": things.annotations_with_indices(d["annotations"],
                                                                     f"image {d.get('file_name', '?')}")}
        out.append(d)
    return out


def register_segdet_datasets(cfg: Optional[Any] = None) -> list[str]:
    """Register segdet's datasets (after the DATASETS.CUSTOM ones of `cfg`, when given) in
    detectron2's catalogs; a name registered before is registered anew.

    Returns:
        The names of the datasets `cfg` declared (empty without `cfg`).
    """
    declared = register_from_config(cfg) if cfg is not None else []
    for name in DatasetCatalog.list():
        if name in D2DatasetCatalog.list():
            D2DatasetCatalog.remove(name)
        if name in D2MetadataCatalog.list():
            D2MetadataCatalog.remove(name)
        D2DatasetCatalog.register(name, lambda name=name: detectron2_dicts(name))
        D2MetadataCatalog.get(name).set(**detectron2_metadata(MetadataCatalog.get(name)))
    return declared


def segdet_metadata(cfg, dataset_names: Optional[Sequence[str]] = None) -> Metadata:
    """The Metadata an experiment runs with (segdet's `resolve_metadata`: the datasets' classes with
    the config's ignore ids, checked against the config's NUM_CLASSES).

    Raises ConfigError when the config's ignore ids would make a thing class of the dataset
    ignored: detectron2's catalog numbers the dataset's thing classes once and for all.
    """
    metadata = resolve_metadata(cfg, dataset_names)
    dataset_things = MetadataCatalog.get(metadata.name).thing_class_ids
    if metadata.thing_class_ids != dataset_things:
        dropped = sorted(set(dataset_things) - set(metadata.thing_class_ids))
        raise ConfigError(
            f"MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS makes thing classes {dropped} of dataset '{metadata.name}' ignore "
            "classes; inside detectron2 the thing classes are fixed by the dataset: mark them ignore in its "
            "classes file instead"
        )
    return metadata


def experiment_ignore_ids(cfg) -> list[int]:
    """MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS when set (a model file's config has them), else those of
    `segdet_metadata(cfg)`."""
    ids = cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS
    return sorted(set(ids)) if ids is not None else segdet_metadata(cfg).ignore_class_ids
