"""Instance-mask images (Penn-Fudan style): RLE annotations and boxes derived from the masks."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from segdet.data import DatasetCatalog, LabelCodec, MetadataCatalog
from segdet.data.formats.instance_masks import load_instance_masks, register_instance_masks, register_pennfudan
from segdet.data.split import write_split_file
from segdet.errors import DataError

H, W = 6, 8

# pycocotools' decode trips numpy 2's __array__ deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _masks():
    """Three instance maps: two instances (one L-shaped), none, one touching the corner."""
    a = np.zeros((H, W), np.uint8)
    a[1:3, 1:4] = 1
    a[3, 1] = 1  # L shape: box rows 1..3, cols 1..3
    a[2:6, 5:7] = 2
    b = np.zeros((H, W), np.uint8)
    c = np.zeros((H, W), np.uint8)
    c[4:, 6:] = 3  # instance ids need not start at 1
    return {"FudanPed00001": a, "FudanPed00002": b, "PennPed00003": c}


@pytest.fixture
def fmt_penn(tmp_path):
    root = tmp_path / "PennFudanPed"
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    masks = _masks()
    for i, (stem, instance_map) in enumerate(masks.items()):
        rgb = np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "PNGImages" / f"{stem}.png")
        Image.fromarray(instance_map).save(root / "PedMasks" / f"{stem}_mask.png")
    return {"root": str(root), "masks": masks}


def _mask_extent_xywh(binary):
    rows, cols = np.nonzero(binary)
    return [float(cols.min()), float(rows.min()),
            float(cols.max() - cols.min() + 1), float(rows.max() - rows.min() + 1)]


def _check_dicts(dicts, root, masks):
    root = os.path.abspath(root)
    assert [d["image_id"] for d in dicts] == sorted(masks)
    for d in dicts:
        stem = d["image_id"]
        assert d["file_name"] == os.path.join(root, "PNGImages", f"{stem}.png")
        assert d["sem_seg_file_name"] == os.path.join(root, "PedMasks", f"{stem}_mask.png")
        assert (d["height"], d["width"]) == (H, W)
        instance_map = masks[stem]
        ids = [k for k in np.unique(instance_map) if k > 0]
        assert len(d["annotations"]) == len(ids)
        for k, ann in zip(ids, d["annotations"]):
            binary = instance_map == k
            np.testing.assert_array_equal(mask_util.decode(ann["segmentation"]).astype(bool), binary)
            assert ann["bbox"] == pytest.approx(_mask_extent_xywh(binary))
            assert ann["bbox_mode"] == 1  # XYWH_ABS
            assert ann["category_id"] == 1
            assert ann["iscrowd"] == 0
    json.dumps(dicts)  # RLE counts are str: the dicts can be cached as JSON


def test_load_instance_masks(fmt_penn):
    root = fmt_penn["root"]
    name = "fmt_inst_plain"
    register_instance_masks(name, os.path.join(root, "PNGImages"), os.path.join(root, "PedMasks"))
    try:
        meta = MetadataCatalog.get(name)
        assert meta.class_names == ["background", "person"]
        assert meta.thing_class_ids == [1]
        assert meta.label_format == "instance_ids"
        dicts = DatasetCatalog.get(name)
        _check_dicts(dicts, root, fmt_penn["masks"])
        codec = LabelCodec(meta)
        for d in dicts:
            expected = (fmt_penn["masks"][d["image_id"]] > 0).astype(np.uint8)
            np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), expected)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_custom_class_names_and_suffix(tmp_path, fmt_penn):
    images, masks = tmp_path / "img", tmp_path / "msk"
    images.mkdir()
    masks.mkdir()
    instance_map = fmt_penn["masks"]["FudanPed00001"]
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / "part.jpg")
    Image.fromarray(instance_map).save(masks / "part.png")
    name = "fmt_inst_suffix"
    register_instance_masks(name, str(images), str(masks), thing_class="screw", background_class="tray",
                            mask_suffix="")
    try:
        assert MetadataCatalog.get(name).class_names == ["tray", "screw"]
        (d,) = DatasetCatalog.get(name)
        assert d["sem_seg_file_name"] == os.path.join(os.path.abspath(masks), "part.png")
        assert [a["bbox"] for a in d["annotations"]] == [[1.0, 1.0, 3.0, 3.0], [5.0, 2.0, 2.0, 4.0]]
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_register_pennfudan_with_split_file(tmp_path, fmt_penn):
    split_file = str(tmp_path / "split.json")
    write_split_file(split_file, {"train": ["FudanPed00001", "PennPed00003"], "val": ["FudanPed00002"]}, seed=1)
    names = register_pennfudan(fmt_penn["root"], split_file, name_prefix="fmt_penn")
    try:
        assert names == ["fmt_penn_train", "fmt_penn_val"]
        train = DatasetCatalog.get("fmt_penn_train")
        _check_dicts(train, fmt_penn["root"], {k: fmt_penn["masks"][k] for k in ["FudanPed00001", "PennPed00003"]})
        assert [d["image_id"] for d in DatasetCatalog.get("fmt_penn_val")] == ["FudanPed00002"]
        assert MetadataCatalog.get("fmt_penn_val").thing_classes == ["person"]
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_missing_mask_is_an_error(fmt_penn):
    root = fmt_penn["root"]
    os.remove(os.path.join(root, "PedMasks", "FudanPed00002_mask.png"))
    name = "fmt_inst_missing"
    register_instance_masks(name, os.path.join(root, "PNGImages"), os.path.join(root, "PedMasks"))
    try:
        with pytest.raises(DataError, match=r"FudanPed00002\.png has no mask file.*FudanPed00002_mask"):
            DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_mask_of_other_size_is_an_error(fmt_penn):
    root = fmt_penn["root"]
    Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(os.path.join(root, "PedMasks", "PennPed00003_mask.png"))
    name = "fmt_inst_size"
    register_instance_masks(name, os.path.join(root, "PNGImages"), os.path.join(root, "PedMasks"))
    try:
        with pytest.raises(DataError, match=r"PennPed00003_mask\.png is 10x6"):
            load_instance_masks(os.path.join(root, "PNGImages"), os.path.join(root, "PedMasks"),
                                MetadataCatalog.get(name))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
