"""COCO instances json + semantic PNG folder loader, on a hand-written two-image dataset."""
import json
import os
import re

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

from segdet.structures.boxes import BoxMode
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.coco_semantic import load_coco_semantic, register_coco_semantic
from segdet.structures.metadata import Metadata
from segdet.errors import DataError

# The RLE image "b" is 4 rows x 5 columns; its mask covers rows 1-2, columns 1-3.
# Column-major runs, by hand: 5 zeros (column 0 + top of column 1), then per column
# 2 ones and 2 zeros, ..., ending with 1 + 4 zeros.
B_MASK = np.zeros((4, 5), np.uint8)
B_MASK[1:3, 1:4] = 1
B_COUNTS = [5, 2, 2, 2, 2, 2, 5]

# pycocotools' decode trips a numpy 2 deprecation warning; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _metadata() -> Metadata:
    # Class ids differ from the json's category ids on purpose: they are matched by name.
    return Metadata(class_names=["background", "dog", "cat", "void"], thing_class_ids=[1, 2], ignore_class_ids=[3])


def _write_dataset(root, categories=None):
    images = root / "images"
    sem = root / "sem"
    images.mkdir()
    sem.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((16, 20, 3), 90, np.uint8))
    cv2.imwrite(str(images / "b.jpg"), np.full((4, 5, 3), 200, np.uint8))
    cv2.imwrite(str(sem / "a.png"), np.zeros((16, 20), np.uint8))
    cv2.imwrite(str(sem / "b.png"), B_MASK)
    compressed = mask_util.encode(np.asfortranarray(B_MASK))
    coco = {
        "images": [
            {"id": 11, "file_name": "a.png", "height": 16, "width": 20},
            {"id": 12, "file_name": "b.jpg", "height": 4, "width": 5},
        ],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 7, "bbox": [2, 3, 6, 5], "iscrowd": 0, "area": 15,
             # the second polygon has only two points and is dropped
             "segmentation": [[2, 3, 8, 3, 8, 8, 2, 8], [1, 1, 2, 2]]},
            # uncompressed RLE, no bbox: the loader computes it from the mask
            {"id": 2, "image_id": 12, "category_id": 3, "iscrowd": 0, "area": 6,
             "segmentation": {"size": [4, 5], "counts": B_COUNTS}},
            {"id": 3, "image_id": 12, "category_id": 7, "bbox": [1, 1, 3, 2], "iscrowd": 1, "area": 6,
             "segmentation": {"size": [4, 5], "counts": compressed["counts"].decode("ascii")}},
        ],
        "categories": categories or [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
    }
    json_file = root / "instances.json"
    json_file.write_text(json.dumps(coco))
    return str(json_file), str(images), str(sem)


def test_loads_images_annotations_and_maps_categories_by_name(tmp_path):
    json_file, images, sem = _write_dataset(tmp_path)
    dicts = load_coco_semantic(json_file, images, sem, _metadata())
    assert [d["image_id"] for d in dicts] == ["a", "b"]
    a, b = dicts
    assert a["file_name"] == os.path.join(images, "a.png") and os.path.isabs(a["file_name"])
    assert (a["height"], a["width"], a["coco_image_id"]) == (16, 20, 11)
    assert (b["height"], b["width"], b["coco_image_id"]) == (4, 5, 12)
    assert a["sem_seg_file_name"] == os.path.join(sem, "a.png")
    assert b["sem_seg_file_name"] == os.path.join(sem, "b.png")

    (ann_a,) = a["annotations"]
    assert ann_a["category_id"] == 2  # json category 7 "cat" is class 2
    assert ann_a["segmentation"] == [[2.0, 3.0, 8.0, 3.0, 8.0, 8.0, 2.0, 8.0]]
    assert ann_a["bbox"] == [2.0, 3.0, 6.0, 5.0]
    assert ann_a["bbox_mode"] == BoxMode.XYWH_ABS
    assert ann_a["iscrowd"] == 0

    rle_ann, crowd_ann = b["annotations"]
    assert rle_ann["category_id"] == 1  # json category 3 "dog" is class 1
    seg = rle_ann["segmentation"]
    assert isinstance(seg["counts"], str) and seg["size"] == [4, 5]
    np.testing.assert_array_equal(mask_util.decode(seg), B_MASK)
    assert rle_ann["bbox"] == [1.0, 1.0, 3.0, 2.0]  # x, y, w, h of rows 1-2, columns 1-3
    assert crowd_ann["category_id"] == 2 and crowd_ann["iscrowd"] == 1
    np.testing.assert_array_equal(mask_util.decode(crowd_ann["segmentation"]), B_MASK)


def test_split_file_keeps_one_split(tmp_path):
    json_file, images, sem = _write_dataset(tmp_path)
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": ["b"], "val": ["a"]}))
    dicts = load_coco_semantic(json_file, images, sem, _metadata(), split_file=str(split_file), split="train")
    assert [d["image_id"] for d in dicts] == ["b"]


def test_missing_and_corrupt_json(tmp_path):
    _, images, sem = _write_dataset(tmp_path)
    missing = str(tmp_path / "nope.json")
    with pytest.raises(DataError, match="nope.json"):
        load_coco_semantic(missing, images, sem, _metadata())
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"images": [')
    with pytest.raises(DataError, match="corrupt.json"):
        load_coco_semantic(str(corrupt), images, sem, _metadata())
    not_coco = tmp_path / "list.json"
    not_coco.write_text("[1, 2]")
    with pytest.raises(DataError, match="list.json"):
        load_coco_semantic(str(not_coco), images, sem, _metadata())


@pytest.mark.parametrize("categories, problem", [
    ([{"id": 7, "name": "cat"}, {"id": 3, "name": "bird"}], "'bird'"),   # not a class at all
    ([{"id": 7, "name": "cat"}, {"id": 3, "name": "void"}], "'void'"),   # a class, but not a thing
])
def test_category_that_is_not_a_thing_class(tmp_path, categories, problem):
    json_file, images, sem = _write_dataset(tmp_path, categories)
    with pytest.raises(DataError, match=problem) as info:
        load_coco_semantic(json_file, images, sem, _metadata())
    assert json_file in str(info.value)


def test_missing_image_or_semantic_png(tmp_path):
    json_file, images, sem = _write_dataset(tmp_path)
    os.remove(os.path.join(sem, "b.png"))
    with pytest.raises(DataError, match=re.escape(os.path.join(sem, "b.png"))):
        load_coco_semantic(json_file, images, sem, _metadata())
    os.remove(os.path.join(images, "a.png"))
    with pytest.raises(DataError, match=re.escape(os.path.join(images, "a.png"))):
        load_coco_semantic(json_file, images, sem, _metadata())


def test_register_with_classes_file(tmp_path):
    json_file, images, sem = _write_dataset(tmp_path)
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": [
        {"id": 0, "name": "background"}, {"id": 1, "name": "dog", "thing": True},
        {"id": 2, "name": "cat", "thing": True}, {"id": 3, "name": "void", "ignore": True},
    ]}))
    name = "test_coco_semantic_tmp"
    try:
        meta = register_coco_semantic(name, json_file, images, sem, classes_file=str(classes))
        assert MetadataCatalog.get(name) is meta and meta.json_file == json_file
        assert meta.thing_class_ids == [1, 2] and meta.ignore_class_ids == [3]
        dicts = DatasetCatalog.get(name)
        assert [ann["category_id"] for ann in dicts[1]["annotations"]] == [1, 2]
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    with pytest.raises(DataError, match="classes file"):
        register_coco_semantic(name, json_file, images, sem)


def test_rle_of_another_size_than_its_image(tmp_path):
    json_file, images, sem = _write_dataset(tmp_path)
    coco = json.loads(open(json_file).read())
    coco["annotations"][1]["segmentation"] = {"size": [5, 4], "counts": B_COUNTS}
    with open(json_file, "w") as f:
        json.dump(coco, f)
    with pytest.raises(DataError, match=r"annotation 2 has an RLE of size \[5, 4\]"):
        load_coco_semantic(json_file, images, sem, _metadata())
