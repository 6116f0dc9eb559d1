"""image_folder format: images + label images matched by stem."""
import inspect
import json
import os

import cv2
import numpy as np
import pytest

from segdet.config import CfgNode, get_cfg
from segdet.data import DatasetCatalog, LabelCodec, Metadata, MetadataCatalog
from segdet.data.formats import DATASET_FORMAT_REGISTRY, register_from_config
from segdet.data.formats.image_folder import list_image_files, load_image_folder, register_image_folder
from segdet.data.split import write_split_file
from segdet.errors import DataError
from tests.logs import captured_warnings

H, W = 6, 8


def _write_rgb(path, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    # cv2 writes BGR; the channel order is irrelevant to these tests.
    assert cv2.imwrite(str(path), rgb)


@pytest.fixture
def fmt_folder(tmp_path):
    """3 images (png, jpg, bmp) with gray labels of classes 0..2, one orphan label, a classes file."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    truth = {}
    for stem, ext in [("b", ".jpg"), ("a", ".png"), ("c", ".bmp")]:
        _write_rgb(images / f"{stem}{ext}", seed=len(truth))
        ids = rng.integers(0, 3, (H, W), dtype=np.uint8)
        assert cv2.imwrite(str(labels / f"{stem}.png"), ids)
        truth[stem] = ids
    assert cv2.imwrite(str(labels / "orphan.png"), np.zeros((H, W), np.uint8))
    (images / "notes.txt").write_text("not an image")
    (images / "sub").mkdir()
    _write_rgb(images / "sub" / "deep.png", seed=9)  # subfolders are not searched
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({
        "classes": [{"id": 0, "name": "bg"}, {"id": 1, "name": "part"}, {"id": 2, "name": "edge", "ignore": True}],
    }))
    return {"images": str(images), "labels": str(labels), "classes": str(classes), "truth": truth,
            "ext": {"a": ".png", "b": ".jpg", "c": ".bmp"}}


def _expected(folder, stems):
    return [
        {
            "file_name": os.path.join(os.path.abspath(folder["images"]), stem + folder["ext"][stem]),
            "height": H,
            "width": W,
            "image_id": stem,
            "sem_seg_file_name": os.path.join(os.path.abspath(folder["labels"]), stem + ".png"),
        }
        for stem in stems
    ]


def test_load_exact_dicts_and_decoded_labels(fmt_folder):
    meta = Metadata(class_names=["bg", "part", "edge"], ignore_class_ids=[2])
    with captured_warnings("segdet.data.formats.image_folder") as messages:
        dicts = load_image_folder(fmt_folder["images"], fmt_folder["labels"], meta)
    assert dicts == _expected(fmt_folder, ["a", "b", "c"])
    codec = LabelCodec(meta)
    for d in dicts:
        np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), fmt_folder["truth"][d["image_id"]])
    assert any("1 label file(s)" in m for m in messages), messages


def test_register_with_classes_file(fmt_folder):
    name = "fmt_test_image_folder_classes"
    register_image_folder(name, fmt_folder["images"], fmt_folder["labels"], classes_file=fmt_folder["classes"])
    try:
        assert DatasetCatalog.get(name) == _expected(fmt_folder, ["a", "b", "c"])
        meta = MetadataCatalog.get(name)
        assert meta.class_names == ["bg", "part", "edge"]
        assert meta.ignore_class_ids == [2]
        assert meta.label_format == "gray"
        assert meta.name == name
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_label_format_overrides_classes_file(tmp_path, fmt_folder):
    # Same classes, but the labels are DeepDIVA-style: class id in the blue channel, noise in red/green.
    blue_dir = tmp_path / "blue"
    blue_dir.mkdir()
    rng = np.random.default_rng(5)
    for stem, ids in fmt_folder["truth"].items():
        bgr = np.stack([ids, rng.integers(0, 256, ids.shape), rng.integers(0, 256, ids.shape)], -1).astype(np.uint8)
        assert cv2.imwrite(str(blue_dir / f"{stem}.png"), bgr)  # OpenCV channel 0 is blue
    name = "fmt_test_image_folder_blue"
    register_image_folder(name, fmt_folder["images"], str(blue_dir), classes_file=fmt_folder["classes"],
                          label_format="blue")
    try:
        meta = MetadataCatalog.get(name)
        assert meta.label_format == "blue"
        codec = LabelCodec(meta)
        for d in DatasetCatalog.get(name):
            np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), fmt_folder["truth"][d["image_id"]])
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_register_with_metadata_leaves_caller_object_alone(fmt_folder):
    meta = Metadata(class_names=["bg", "part", "edge"])
    name = "fmt_test_image_folder_meta"
    register_image_folder(name, fmt_folder["images"], fmt_folder["labels"], metadata=meta)
    try:
        assert MetadataCatalog.get(name).name == name
        assert meta.name == ""
        assert len(DatasetCatalog.get(name)) == 3
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_register_without_classes_is_an_error(fmt_folder):
    with pytest.raises(DataError, match="no classes given"):
        register_image_folder("fmt_test_none", fmt_folder["images"], fmt_folder["labels"])
    assert "fmt_test_none" not in DatasetCatalog


def test_split_file_keeps_one_split(tmp_path, fmt_folder):
    split_file = str(tmp_path / "split.json")
    write_split_file(split_file, {"train": ["a", "c"], "val": ["b"]}, seed=0)
    meta = Metadata(class_names=["bg", "part", "edge"])
    assert load_image_folder(fmt_folder["images"], fmt_folder["labels"], meta, split_file, "train") == \
        _expected(fmt_folder, ["a", "c"])
    assert load_image_folder(fmt_folder["images"], fmt_folder["labels"], meta, split_file, "val") == \
        _expected(fmt_folder, ["b"])


def test_same_stem_twice_names_both_files(fmt_folder):
    _write_rgb(os.path.join(fmt_folder["images"], "a.jpg"), seed=3)
    with pytest.raises(DataError) as info:
        list_image_files(fmt_folder["images"])
    assert os.path.join(fmt_folder["images"], "a.jpg") in str(info.value)
    assert os.path.join(fmt_folder["images"], "a.png") in str(info.value)


def test_label_of_other_size_is_an_error(fmt_folder):
    path = os.path.join(fmt_folder["labels"], "b.png")
    assert cv2.imwrite(path, np.zeros((H + 1, W), np.uint8))
    meta = Metadata(class_names=["bg", "part", "edge"])
    with pytest.raises(DataError, match="b.png is 8x7"):
        load_image_folder(fmt_folder["images"], fmt_folder["labels"], meta)


def test_missing_label_folder(fmt_folder, tmp_path):
    meta = Metadata(class_names=["bg", "part"])
    with pytest.raises(DataError, match="label file folder not found"):
        load_image_folder(fmt_folder["images"], str(tmp_path / "nope"), meta)


def test_registry_lists_the_formats():
    names = {name for name, _ in DATASET_FORMAT_REGISTRY}
    assert names >= {"image_folder", "deepdiva", "voc", "instance_masks", "camvid", "coco_semantic"}
    params = list(inspect.signature(DATASET_FORMAT_REGISTRY.get("coco_semantic")).parameters)
    assert params == ["name", "json_file", "image_root", "sem_seg_root", "metadata", "classes_file",
                      "split_file", "split"]
    assert list(inspect.signature(DATASET_FORMAT_REGISTRY.get("image_folder")).parameters) == \
        list(inspect.signature(register_image_folder).parameters)


def test_register_from_config(tmp_path, fmt_folder):
    split_file = str(tmp_path / "split.json")
    write_split_file(split_file, {"train": ["b", "c"], "val": ["a"]})
    cfg = get_cfg()
    cfg.DATASETS.CUSTOM["fmt_cfg_folder"] = CfgNode({
        "FORMAT": "image_folder", "IMAGE_DIR": fmt_folder["images"], "LABEL_DIR": fmt_folder["labels"],
        "CLASSES_FILE": fmt_folder["classes"], "SPLIT_FILE": split_file, "SPLIT": "train",
    })
    try:
        assert register_from_config(cfg) == ["fmt_cfg_folder"]
        assert DatasetCatalog.get("fmt_cfg_folder") == _expected(fmt_folder, ["b", "c"])
        assert MetadataCatalog.get("fmt_cfg_folder").ignore_class_ids == [2]
    finally:
        DatasetCatalog.remove("fmt_cfg_folder")
        MetadataCatalog.remove("fmt_cfg_folder")


def test_metadata_as_config_dict(fmt_folder):
    name = "fmt_test_image_folder_dict"
    register_image_folder(name, fmt_folder["images"], fmt_folder["labels"],
                          metadata={"CLASS_NAMES": ["bg", "part", "edge"], "IGNORE_CLASS_IDS": [2]})
    try:
        assert MetadataCatalog.get(name).class_names == ["bg", "part", "edge"]
        assert MetadataCatalog.get(name).ignore_class_ids == [2]
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    with pytest.raises(DataError, match=r"unknown keys \['class_nams'\]"):
        register_image_folder(name, fmt_folder["images"], fmt_folder["labels"], metadata={"class_nams": ["a"]})
