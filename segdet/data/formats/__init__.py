"""On-disk dataset formats: one module per layout, and a registry of their register functions.

`DATASET_FORMAT_REGISTRY` maps a format name to a function that registers datasets
of that layout in the catalogs. Datasets can also be declared in a config:

    DATASETS:
      CUSTOM:
        my_parts:                 # the dataset name (the name prefix for multi-split formats)
          FORMAT: image_folder
          IMAGE_DIR: data/parts/images
          LABEL_DIR: data/parts/labels
          CLASSES_FILE: data/parts/classes.json
      TRAIN: ("my_parts",)

Every key other than FORMAT is an argument of the format's register function, in
upper case (IMAGE_DIR -> image_dir). Paths are used as given. The formats and
their arguments:

    image_folder    name, image_dir, label_dir, classes_file, metadata, label_format, split_file, split
    deepdiva        root, name_prefix, classes_file, class_names
    voc             root, name_prefix
    instance_masks  name, image_dir, mask_dir, thing_class, background_class, mask_suffix, split_file, split
    pennfudan       root, split_file, name_prefix
    camvid          root, name_prefix
    coco_semantic   name, json_file, image_root, sem_seg_root, metadata, classes_file, split_file, split
    coco            name, json_file, image_root, classes_file, label_map, thing_classes, background_class,
                    crowd, cache_dir, split_file, split
    labelme         name, folder, classes_file, label_map, thing_classes, background_class, cache_dir,
                    split_file, split
    cvat_mask       root, name_prefix, classes_file, label_map, thing_classes, background_class, image_dir
    cityscapes      root, name_prefix, splits, instances, label_map
    ade20k          root, name_prefix, label_map

Every format but instance_masks and pennfudan takes LABEL_MAP (raw label -> class, many to
one; `Metadata.label_map`): the formats that label by name map names, the others pixel values
(or colors), added to the metadata of what they register.

A format of your own: decorate a function with `@DATASET_FORMAT_REGISTRY.register()`;
its name is the format name, and it takes `name` (or `name_prefix`) and its arguments.
"""
from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any, Callable

from fvcore.common.registry import Registry

from segdet.data.catalog import MetadataCatalog
from segdet.data.formats.ade20k import register_ade20k
from segdet.data.formats.camvid import register_camvid
from segdet.data.formats.cityscapes import register_cityscapes
from segdet.data.formats.coco import load_coco, register_coco
from segdet.data.formats.coco_semantic import register_coco_semantic
from segdet.data.formats.cvat_mask import load_cvat_mask, register_cvat_mask
from segdet.data.formats.deepdiva import register_deepdiva
from segdet.data.formats.image_folder import load_image_folder, register_image_folder
from segdet.data.formats.instance_masks import load_instance_masks, register_instance_masks, register_pennfudan
from segdet.data.formats.labelme import load_labelme, register_labelme
from segdet.data.formats.voc import load_voc, register_voc
from segdet.errors import ConfigError, DataError

DATASET_FORMAT_REGISTRY = Registry("DATASET_FORMAT")
DATASET_FORMAT_REGISTRY.__doc__ = """Format name -> function registering datasets of that on-disk layout."""


def _register_format(format_name: str, fn: Callable[..., Any]) -> None:
    # The registry keys by __name__; a named wrapper keeps the public function's own name
    # intact, and inspect.signature follows __wrapped__ to the real arguments.
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    wrapper.__name__ = format_name
    DATASET_FORMAT_REGISTRY.register(wrapper)


_register_format("image_folder", register_image_folder)
_register_format("deepdiva", register_deepdiva)
_register_format("voc", register_voc)
_register_format("instance_masks", register_instance_masks)
_register_format("pennfudan", register_pennfudan)
_register_format("camvid", register_camvid)
_register_format("coco_semantic", register_coco_semantic)
_register_format("coco", register_coco)
_register_format("labelme", register_labelme)
_register_format("cvat_mask", register_cvat_mask)
_register_format("cityscapes", register_cityscapes)
_register_format("ade20k", register_ade20k)


def _plain(value: Any) -> Any:
    """CfgNode -> dict, tuple -> list, recursively (register functions take plain values)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _format_names() -> list[str]:
    return sorted(name for name, _ in DATASET_FORMAT_REGISTRY)


def register_from_config(cfg: Any) -> list[str]:
    """Register the datasets declared under `cfg.DATASETS.CUSTOM`.

    Args:
        cfg: a config; each child of DATASETS.CUSTOM is `{FORMAT: <name>, <ARG>: value, ...}`.
    Returns:
        The names of the registered datasets.
    """
    custom = cfg.DATASETS.get("CUSTOM") if "DATASETS" in cfg else None
    registered: list[str] = []
    for entry, spec in (custom or {}).items():
        where = f"DATASETS.CUSTOM.{entry}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping with FORMAT and the format's arguments, got {spec!r}")
        args = {str(k).lower(): _plain(v) for k, v in spec.items()}
        format_name = args.pop("format", None)
        if format_name is None:
            raise ConfigError(f"{where}: no FORMAT given; formats: {', '.join(_format_names())}")
        if format_name not in DATASET_FORMAT_REGISTRY:
            close = difflib.get_close_matches(str(format_name), _format_names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{where}.FORMAT: unknown dataset format '{format_name}'{hint}; formats: {', '.join(_format_names())}"
            )
        fn = DATASET_FORMAT_REGISTRY.get(format_name)
        params = inspect.signature(fn).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        # The entry's key names the dataset (or is the prefix of the names of its splits).
        for name_arg in ("name", "name_prefix"):
            if name_arg in params and name_arg not in args:
                args[name_arg] = entry
                break
        if not takes_any:
            known = [p for p, v in params.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
            known += [] if "label_map" in known else ["label_map"]
            for key in args:
                if key not in known:
                    close = difflib.get_close_matches(key, known, n=1)
                    hint = f" (did you mean '{close[0].upper()}'?)" if close else ""
                    raise ConfigError(
                        f"{where}.{key.upper()}: format '{format_name}' has no argument '{key.upper()}'{hint}; "
                        f"its arguments: {', '.join(k.upper() for k in known)}"
                    )
        missing = [p for p, v in params.items()
                   if v.default is inspect.Parameter.empty
                   and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD) and p not in args]
        if missing:
            raise ConfigError(
                f"{where}: format '{format_name}' needs {', '.join(m.upper() for m in missing)}, which is missing"
            )
        # A value map for formats that do not take one themselves: added to the metadata of
        # every name the entry registers (the codec reads it).
        label_map = args.pop("label_map", None) if "label_map" not in params else None
        result = fn(**args)
        names = result if isinstance(result, list) else [args.get("name", entry)]
        if label_map is not None:
            for name in names:
                try:
                    MetadataCatalog.set(name, MetadataCatalog.get(name).with_label_map(label_map))
                except DataError as e:
                    raise ConfigError(f"{where}.LABEL_MAP: {e}") from None
        registered.extend(names)
    return registered


__all__ = [
    "DATASET_FORMAT_REGISTRY",
    "register_from_config",
    "register_image_folder",
    "load_image_folder",
    "register_deepdiva",
    "register_voc",
    "load_voc",
    "register_instance_masks",
    "load_instance_masks",
    "register_pennfudan",
    "register_camvid",
    "register_coco",
    "load_coco",
    "register_labelme",
    "load_labelme",
    "register_cvat_mask",
    "load_cvat_mask",
    "register_cityscapes",
    "register_ade20k",
]
