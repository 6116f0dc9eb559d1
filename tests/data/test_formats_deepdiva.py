"""DeepDIVA layout: root/{train,val,test}/{data,gt}, class id in the blue channel."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from segdet.config import CfgNode, get_cfg
from segdet.data import DatasetCatalog, LabelCodec, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.data.formats.deepdiva import register_deepdiva
from segdet.errors import DataError

H, W = 6, 8


@pytest.fixture
def fmt_diva(tmp_path):
    """train (2 pages) and val (1 page); jpg images, png gt with ids 0..3 in blue and flags in red."""
    root = tmp_path / "diva"
    rng = np.random.default_rng(1)
    truth = {}
    for split, stems in [("train", ["page2", "page1"]), ("val", ["page9"])]:
        (root / split / "data").mkdir(parents=True)
        (root / split / "gt").mkdir(parents=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / split / "data" / f"{stem}.jpg")
            ids = rng.integers(0, 4, (H, W), dtype=np.uint8)
            gt = np.zeros((H, W, 3), np.uint8)
            gt[..., 2] = ids  # Pillow writes RGB: index 2 is blue
            gt[..., 0] = rng.integers(0, 2, (H, W)) * 128  # HisDB-style boundary flag in red
            Image.fromarray(gt).save(root / split / "gt" / f"{stem}.png")
            truth[stem] = ids
    return {"root": str(root), "truth": truth}


def _cleanup(names):
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_register_splits_that_exist_with_class_names(fmt_diva):
    root = fmt_diva["root"]
    names = register_deepdiva(root, "fmt_diva_names", class_names=["bg", "comment", "decoration", "text"])
    try:
        assert names == ["fmt_diva_names_train", "fmt_diva_names_val"]
        assert "fmt_diva_names_test" not in DatasetCatalog
        train = DatasetCatalog.get("fmt_diva_names_train")
        absroot = os.path.abspath(root)
        assert train == [
            {"file_name": os.path.join(absroot, "train", "data", f"{s}.jpg"), "height": H, "width": W,
             "image_id": s, "sem_seg_file_name": os.path.join(absroot, "train", "gt", f"{s}.png")}
            for s in ["page1", "page2"]
        ]
        assert [d["image_id"] for d in DatasetCatalog.get("fmt_diva_names_val")] == ["page9"]
        meta = MetadataCatalog.get("fmt_diva_names_train")
        assert meta.label_format == "blue"
        assert meta.class_names == ["bg", "comment", "decoration", "text"]
        assert MetadataCatalog.get("fmt_diva_names_val").name == "fmt_diva_names_val"
        codec = LabelCodec(meta)
        for d in train + DatasetCatalog.get("fmt_diva_names_val"):
            np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), fmt_diva["truth"][d["image_id"]])
    finally:
        _cleanup(names)


def test_classes_json_in_root_is_used(fmt_diva):
    root = fmt_diva["root"]
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump({"classes": [{"id": i, "name": n} for i, n in enumerate(["a", "b", "c", "d"])],
                   "ignore_class_ids": [0]}, f)
    names = register_deepdiva(root, "fmt_diva_json", class_names=["x", "y", "z", "w"])
    try:
        meta = MetadataCatalog.get("fmt_diva_json_train")
        assert meta.class_names == ["a", "b", "c", "d"]
        assert meta.ignore_class_ids == [0]
        assert meta.label_format == "blue"
    finally:
        _cleanup(names)


def test_explicit_classes_file_wins(fmt_diva, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("classes:\n  - {id: 0, name: p}\n  - {id: 1, name: q}\n  - {id: 2, name: r}\n"
                     "  - {id: 3, name: s}\n")
    with open(os.path.join(fmt_diva["root"], "classes.json"), "w") as f:
        json.dump({"classes": [{"id": 0, "name": "ignored"}]}, f)
    names = register_deepdiva(fmt_diva["root"], "fmt_diva_file", classes_file=str(other))
    try:
        assert MetadataCatalog.get("fmt_diva_file_val").class_names == ["p", "q", "r", "s"]
    finally:
        _cleanup(names)


def test_no_classes_is_an_error(fmt_diva):
    with pytest.raises(DataError, match="no classes given"):
        register_deepdiva(fmt_diva["root"], "fmt_diva_none")
    assert "fmt_diva_none_train" not in DatasetCatalog


def test_no_split_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="none of the split folders"):
        register_deepdiva(str(tmp_path), "fmt_diva_empty", class_names=["a", "b"])


def test_split_without_gt_is_an_error(fmt_diva):
    os.makedirs(os.path.join(fmt_diva["root"], "test", "data"))
    with pytest.raises(DataError, match="needs both data/ and gt/"):
        register_deepdiva(fmt_diva["root"], "fmt_diva_nogt", class_names=["a", "b", "c", "d"])
    assert "fmt_diva_nogt_train" not in DatasetCatalog


def test_register_from_config_uses_entry_as_prefix(fmt_diva):
    cfg = get_cfg()
    cfg.DATASETS.CUSTOM["fmt_diva_cfg"] = CfgNode({"FORMAT": "deepdiva", "ROOT": fmt_diva["root"],
                                                   "CLASS_NAMES": ("bg", "comment", "decoration", "text")})
    names = register_from_config(cfg)
    try:
        assert names == ["fmt_diva_cfg_train", "fmt_diva_cfg_val"]
        assert MetadataCatalog.get("fmt_diva_cfg_train").class_names == ["bg", "comment", "decoration", "text"]
        assert [d["image_id"] for d in DatasetCatalog.get("fmt_diva_cfg_train")] == ["page1", "page2"]
    finally:
        _cleanup(names)
