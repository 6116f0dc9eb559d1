"""CamVid, SegNet tutorial layout: {train,val,test} + {train,val,test}annot, gray labels, 11 = Void."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from segdet.data import DatasetCatalog, LabelCodec, MetadataCatalog
from segdet.data.formats.camvid import register_camvid
from segdet.errors import DataError

H, W = 6, 8


@pytest.fixture
def fmt_camvid(tmp_path):
    """train (2 frames) and val (1 frame); gray labels with values 0..11."""
    root = tmp_path / "camvid"
    rng = np.random.default_rng(11)
    truth = {}
    for split, stems in [("train", ["0001TP_006720", "0001TP_006690"]), ("val", ["0016E5_07959"])]:
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / split / f"{stem}.png")
            ids = rng.integers(0, 12, (H, W), dtype=np.uint8)
            ids[0, 0] = 11  # at least one Void pixel
            Image.fromarray(ids).save(root / f"{split}annot" / f"{stem}.png")
            truth[stem] = ids
    # A pair list naming one frame only: register_camvid matches folders by stem and ignores it.
    (root / "train.txt").write_text("".join(f"train/{s}.png trainannot/{s}.png\n" for s in ["0001TP_006690"]))
    return {"root": str(root), "truth": truth}


def _cleanup(names):
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_register_camvid_default_classes(fmt_camvid):
    names = register_camvid(fmt_camvid["root"], name_prefix="fmt_camvid")
    try:
        assert names == ["fmt_camvid_train", "fmt_camvid_val"]
        root = os.path.abspath(fmt_camvid["root"])
        assert DatasetCatalog.get("fmt_camvid_train") == [
            {"file_name": os.path.join(root, "train", f"{s}.png"), "height": H, "width": W, "image_id": s,
             "sem_seg_file_name": os.path.join(root, "trainannot", f"{s}.png")}
            for s in ["0001TP_006690", "0001TP_006720"]
        ]
        meta = MetadataCatalog.get("fmt_camvid_val")
        assert meta.num_classes == 12
        assert meta.class_names[11] == "Void"
        assert meta.ignore_class_ids == [11]
        assert meta.label_format == "gray"
        codec = LabelCodec(meta)
        for name in names:
            for d in DatasetCatalog.get(name):
                np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), fmt_camvid["truth"][d["image_id"]])
    finally:
        _cleanup(names)


def test_classes_json_is_used(fmt_camvid):
    classes = [{"id": i, "name": f"c{i}", "color": [i, i, i]} for i in range(12)]
    with open(os.path.join(fmt_camvid["root"], "classes.json"), "w") as f:
        json.dump({"name": "my CamVid", "ignore_class_ids": [11], "classes": classes}, f)
    names = register_camvid(fmt_camvid["root"], name_prefix="fmt_camvid_json")
    try:
        meta = MetadataCatalog.get("fmt_camvid_json_train")
        assert meta.class_names == [f"c{i}" for i in range(12)]
        assert meta.class_colors[5] == (5, 5, 5)
        assert meta.ignore_class_ids == [11]
    finally:
        _cleanup(names)


def test_test_split_is_registered_when_present(fmt_camvid):
    root = fmt_camvid["root"]
    os.makedirs(os.path.join(root, "test"))
    os.makedirs(os.path.join(root, "testannot"))
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(os.path.join(root, "test", "t.png"))
    Image.fromarray(np.full((H, W), 3, np.uint8)).save(os.path.join(root, "testannot", "t.png"))
    names = register_camvid(root, name_prefix="fmt_camvid_t")
    try:
        assert names == ["fmt_camvid_t_train", "fmt_camvid_t_val", "fmt_camvid_t_test"]
        assert [d["image_id"] for d in DatasetCatalog.get("fmt_camvid_t_test")] == ["t"]
    finally:
        _cleanup(names)


def test_split_without_annotations_is_an_error(fmt_camvid):
    os.makedirs(os.path.join(fmt_camvid["root"], "test"))
    with pytest.raises(DataError, match="no testannot/"):
        register_camvid(fmt_camvid["root"], name_prefix="fmt_camvid_bad")
    assert "fmt_camvid_bad_train" not in DatasetCatalog


def test_label_value_above_void_is_an_error(fmt_camvid):
    path = os.path.join(fmt_camvid["root"], "valannot", "0016E5_07959.png")
    ids = np.zeros((H, W), np.uint8)
    ids[1, 1] = 12
    Image.fromarray(ids).save(path)
    names = register_camvid(fmt_camvid["root"], name_prefix="fmt_camvid_v")
    try:
        (d,) = DatasetCatalog.get("fmt_camvid_v_val")
        with pytest.raises(DataError, match=r"0016E5_07959\.png: value\(s\) \[12\]"):
            LabelCodec(MetadataCatalog.get("fmt_camvid_v_val")).read(d["sem_seg_file_name"])
    finally:
        _cleanup(names)
