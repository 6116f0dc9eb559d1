"""`cvat_mask`: CVAT's "Segmentation mask 1.1" export (labelmap.txt, class and object color PNGs)."""
import json

import numpy as np
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.cvat_mask import cvat_metadata, load_cvat_mask, read_labelmap, register_cvat_mask
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import segmentation_to_mask
from tests.data.format_files import CATS, CVAT_COLORS, GRASS, INSTANCE_COLORS, H, W, box_mask, write_cvat_mask

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_labelmap_classes_colors_and_instances(tmp_path):
    case = write_cvat_mask(tmp_path)
    assert read_labelmap(str(tmp_path / "labelmap.txt")) == list(CVAT_COLORS.items())
    meta = cvat_metadata(str(tmp_path), thing_classes=["cat"])
    assert meta.class_names == ["background", "cat", "grass"] and meta.thing_class_ids == [1]
    assert meta.class_colors == list(CVAT_COLORS.values()) and meta.label_format == "rgb"
    dicts = load_cvat_mask(str(tmp_path), "default", meta)
    assert [d["image_id"] for d in dicts] == ["a", "b"]
    for d in dicts:
        np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), case.expected[d["image_id"]])
        # grass has an object color too, but it is stuff: only the cats are instances.
        # One instance per object color, in color order: (128, 0, 0) is the grass, then the cats.
        masks = [segmentation_to_mask(a["segmentation"], H, W) for a in d["annotations"]]
        assert [a["category_id"] for a in d["annotations"]] == [1] * len(CATS[d["image_id"]])
        by_color = {color: box_mask(box) for color, box in zip(INSTANCE_COLORS[1:], CATS[d["image_id"]])}
        expected = [by_color[c] for c in sorted(by_color, key=lambda c: c[0] * 65536 + c[1] * 256 + c[2])]
        for mask, e in zip(masks, expected):
            np.testing.assert_array_equal(mask, e)


def test_label_map_merges_labels_by_name(tmp_path):
    write_cvat_mask(tmp_path)
    meta = cvat_metadata(str(tmp_path), label_map={"grass": "background"})
    assert meta.class_names == ["background", "cat"] and meta.thing_class_ids == [1]
    (a, _) = load_cvat_mask(str(tmp_path), "default", meta)
    ids = LabelCodec(meta).read(a["sem_seg_file_name"])
    assert (ids[box_mask(GRASS) & ~(ids == 1)] == 0).all()
    assert ids.max() == 1 and len(a["annotations"]) == len(CATS["a"])


def test_classes_file_and_register_names_each_subset(tmp_path):
    write_cvat_mask(tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("b\n")
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": [
        {"id": 0, "name": "grass"}, {"id": 1, "name": "background"}, {"id": 2, "name": "cat", "thing": True}]}))
    names = register_cvat_mask(str(tmp_path), "parts", classes_file=str(classes))
    try:
        assert names == ["parts_default", "parts_val"]
        (b,) = DatasetCatalog.get("parts_val")
        meta = MetadataCatalog.get("parts_val")
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    expected = np.ones((H, W), np.uint8)  # class ids of the file: grass 0, background 1, cat 2
    expected[box_mask(GRASS)] = 0
    for box in CATS["b"]:
        expected[box_mask(box)] = 2
    np.testing.assert_array_equal(LabelCodec(meta).read(b["sem_seg_file_name"]), expected)


def test_bad_input_is_named(tmp_path):
    write_cvat_mask(tmp_path)
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncat:250,50::\n")
    with pytest.raises(DataError, match=r"labelmap\.txt, line 2: expected 'name:r,g,b:parts:actions'"):
        cvat_metadata(str(tmp_path))
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncat:250,50,83::\ngrass:60,200,60::\n")
    meta = cvat_metadata(str(tmp_path))
    with pytest.raises(DataError, match="has no subset 'train'"):
        load_cvat_mask(str(tmp_path), "train", meta)
    (tmp_path / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DataError, match=r"image 'b' of .*default\.txt has no class mask: .*b\.png not found"):
        load_cvat_mask(str(tmp_path), "default", meta)
    (tmp_path / "JPEGImages" / "a.png").unlink()
    with pytest.raises(DataError, match=r"image 'a' of .*default\.txt not found in .*JPEGImages"):
        load_cvat_mask(str(tmp_path), "default", meta)


def test_undeclared_color_names_the_file(tmp_path):
    write_cvat_mask(tmp_path)
    # grass is no longer in the labelmap: its color in the class masks is unknown.
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncat:250,50,83::\n")
    meta = cvat_metadata(str(tmp_path))
    with pytest.raises(DataError, match=r"SegmentationClass/a\.png: \d+ pixels have colors .*\(60, 200, 60\)"):
        load_cvat_mask(str(tmp_path), "default", meta)
