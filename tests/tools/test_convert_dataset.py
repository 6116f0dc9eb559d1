"""tools/convert_dataset.py: registered datasets -> images, gray labels, COCO json, classes and split
files, read back by image_folder and coco_semantic to the same labels and instances."""
import json
from pathlib import Path

import numpy as np
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.cityscapes import register_cityscapes
from segdet.data.formats.coco_semantic import load_coco_semantic
from segdet.data.formats.image_folder import load_image_folder
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import segmentation_to_mask
from segdet.structures.metadata import load_classes_file
from tests.data.format_files import H, W, write_cityscapes, write_labelme
from tests.tools.tool_loader import tool_main as run_tool

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def tool_main(*args):
    return run_tool("convert_dataset", *args)


def _masks(d):
    return [(a["category_id"], a["iscrowd"], segmentation_to_mask(a["segmentation"], H, W).tobytes())
            for a in d["annotations"]]


def test_cityscapes_leaves_in_the_plain_layout_and_reads_back_the_same(tmp_path, capsys):
    case = write_cityscapes(tmp_path / "cs")
    names = register_cityscapes(str(tmp_path / "cs"), "conv_cs")
    out = tmp_path / "plain"
    try:
        assert tool_main("--dataset", *names, "--splits", "train", "val", "--output", out) == 0
        source = {d["image_id"]: d for name in names for d in DatasetCatalog.get(name)}
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    assert "wrote 4 images (train 2, val 2) and 14 instances" in capsys.readouterr().out
    meta = load_classes_file(str(out / "classes.json"))
    assert meta.num_classes == 20 and meta.ignore_class_ids == [19] and meta.thing_class_ids == list(range(11, 19))
    assert meta.label_map is None and meta.label_format == "gray"
    assert json.loads((out / "split.json").read_text())["val"] == ["ulm_000000_000020", "ulm_000001_000020"]
    plain = load_image_folder(str(out / "images"), str(out / "labels"), meta, str(out / "split.json"), "train")
    assert [d["image_id"] for d in plain] == ["ulm_000000_000019", "ulm_000001_000019"]
    for d in plain:
        np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), case.expected[d["image_id"]])
        assert Path(d["file_name"]).read_bytes() == Path(source[d["image_id"]]["file_name"]).read_bytes()
    with_instances = load_coco_semantic(str(out / "instances.json"), str(out / "images"), str(out / "labels"), meta)
    assert len(with_instances) == 4
    for d in with_instances:
        assert _masks(d) == _masks(source[d["image_id"]])


def test_dataset_of_a_config_with_a_label_map(tmp_path):
    case = write_labelme(tmp_path / "lm")
    config = tmp_path / "cfg.yaml"
    config.write_text("DATASETS:\n  CUSTOM:\n    conv_lm:\n      FORMAT: labelme\n"
                      f"      FOLDER: {case.entry['FOLDER']}\n      LABEL_MAP: {{grass: background}}\n")
    try:
        assert tool_main("--config-file", config, "--dataset", "conv_lm", "--output", tmp_path / "plain") == 0
    finally:
        DatasetCatalog.remove("conv_lm")
        MetadataCatalog.remove("conv_lm")
    meta = load_classes_file(str(tmp_path / "plain" / "classes.json"))
    assert meta.class_names == ["background", "cat"]
    d = load_image_folder(str(tmp_path / "plain" / "images"), str(tmp_path / "plain" / "labels"), meta)[0]
    expected = case.expected["a"].copy()
    expected[expected == 2] = 0  # grass is background now
    np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), expected)


def test_bad_requests_are_named(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(DataError, match="is not empty"):
        tool_main("--dataset", "demo_fruit_val", "--output", tmp_path / "full")
    with pytest.raises(DataError, match="--splits gives 2 names for 1 datasets"):
        tool_main("--dataset", "demo_fruit_val", "--splits", "a", "b", "--output", tmp_path / "o")
    with pytest.raises(DataError, match="unknown dataset 'no_such'"):
        tool_main("--dataset", "no_such", "--output", tmp_path / "o")
