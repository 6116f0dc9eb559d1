"""Any registered dataset -> segdet's plain layout, so that a dataset leaves segdet as easily as
it came in (tools/convert_dataset.py).

    <output>/images/<image id>.<ext>   the images, copied byte for byte
    <output>/labels/<image id>.png     gray, pixel = class id (the dataset's LabelCodec decoded them)
    <output>/instances.json            COCO instances, when the dataset has any: category id = class
                                       id, file names relative to images/, polygons stay polygons
    <output>/classes.json              the classes file (names, colors, ignore, thing classes)
    <output>/split.json                image ids of each converted dataset (split)

`image_folder` (IMAGE_DIR images, LABEL_DIR labels, CLASSES_FILE, SPLIT_FILE, SPLIT) reads it back,
and `coco_semantic` (JSON_FILE instances.json, IMAGE_ROOT images, SEM_SEG_ROOT labels) with the
instances; so does any tool that reads gray PNGs and COCO jsons.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Sequence

from segdet.data.label_codec import LabelCodec
from segdet.data.split import write_split_file
from segdet.errors import DataError
from segdet.evaluation.coco_evaluation import convert_to_coco_dict
from segdet.structures.metadata import Metadata
from segdet.utils.files import atomic_write, write_json
from segdet.utils.image_io import write_image
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)


def classes_file_content(metadata: Metadata) -> dict:
    """A classes file (`load_classes_file`) for the classes of `metadata`, labels in gray class ids."""
    classes = []
    for i, (name, color) in enumerate(zip(metadata.class_names, metadata.class_colors)):
        entry = {"id": i, "name": name, "color": list(color)}
        if i in metadata.ignore_class_ids:
            entry["ignore"] = True
        if i in metadata.thing_class_ids:
            entry["thing"] = True
        classes.append(entry)
    return {"label_format": "gray", "classes": classes}


def _plain_id(d: dict) -> str:
    """The image id as a file stem (path separators replaced)."""
    image_id = str(d.get("image_id", os.path.splitext(os.path.basename(d["file_name"]))[0]))
    return image_id.replace(os.sep, "_").replace("/", "_")


def write_plain_layout(splits: Sequence[tuple[str, list[dict]]], metadata: Metadata, output_dir: str) -> dict:
    """Write datasets in segdet's plain layout (module docstring).

    Args:
        splits: (split name, dataset dicts) of each dataset, all with the classes of `metadata`.
        metadata: the datasets' classes and label encoding.
        output_dir: a new or empty folder.
    Returns:
        {"images": count, "instances": count, "splits": {split: count}}.
    """
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise DataError(f"output folder {output_dir} is not empty; give a new folder")
    names = [name for name, _ in splits]
    if len(set(names)) != len(names):
        raise DataError(f"split names must differ: {names}")
    seen: dict[str, str] = {}
    for _, dicts in splits:
        for d in dicts:
            image_id = _plain_id(d)
            if image_id in seen and seen[image_id] != d["file_name"]:
                raise DataError(f"images {seen[image_id]} and {d['file_name']} have the same image id '{image_id}'; "
                                "the plain layout names files by image id")
            seen[image_id] = d["file_name"]
            if not d.get("sem_seg_file_name"):
                raise DataError(f"image {d['file_name']} has no label file (sem_seg_file_name) to convert")
    codec = LabelCodec(metadata)
    images, labels = os.path.join(output_dir, "images"), os.path.join(output_dir, "labels")
    all_dicts = [d for _, dicts in splits for d in dicts]
    progress = Progress(len(all_dicts), f"Writing {output_dir}", logger=logger)
    relative = []
    for d in all_dicts:
        image_id = _plain_id(d)
        name = image_id + os.path.splitext(d["file_name"])[1].lower()
        atomic_write(os.path.join(images, name), lambda tmp, src=d["file_name"]: shutil.copyfile(src, tmp))
        write_image(os.path.join(labels, image_id + ".png"), codec.read(d["sem_seg_file_name"]))
        relative.append(dict(d, file_name=name, image_id=image_id))
        progress.step()
    instances = 0
    if metadata.thing_class_ids and any(d.get("annotations") for d in all_dicts):
        coco, _ = convert_to_coco_dict(relative, metadata)
        coco["info"] = {"description": f"segdet plain layout of {', '.join(names)}"}
        write_json(coco, os.path.join(output_dir, "instances.json"), indent=None)
        instances = len(coco["annotations"])
    write_json(classes_file_content(metadata), os.path.join(output_dir, "classes.json"), indent=1)
    write_split_file(os.path.join(output_dir, "split.json"),
                     {name: [_plain_id(d) for d in dicts] for name, dicts in splits})
    return {"images": len(relative), "instances": instances, "splits": {n: len(ds) for n, ds in splits}}
