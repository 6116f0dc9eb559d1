"""`coco`: a COCO instances json and its images, nothing else; the segmentation_images are drawn
from the annotations into a cache next to the json."""
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.coco import coco_classes, load_coco, register_coco
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import segmentation_to_mask
from tests.data.format_files import CATS, H, W, box_mask, coco_polygon, write_coco, write_image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _decoded(d, metadata):
    return LabelCodec(metadata).read(d["sem_seg_file_name"])


def test_polygons_only_json_gives_classes_labels_and_instances(tmp_path):
    case = write_coco(tmp_path)
    classes = coco_classes(case.entry["JSON_FILE"], thing_classes=["cat"])
    assert classes.metadata.class_names == ["background", "cat", "grass"]
    assert classes.metadata.thing_class_ids == [1] and classes.metadata.ignore_class_ids == []
    dicts = load_coco(case.entry["JSON_FILE"], case.entry["IMAGE_ROOT"], classes)
    assert [d["image_id"] for d in dicts] == ["a", "b"]
    for d in dicts:
        assert (d["height"], d["width"]) == (H, W)
        assert d["file_name"] == os.path.join(case.entry["IMAGE_ROOT"], d["image_id"] + ".png")
        # The cache lies next to the json.
        assert os.path.dirname(os.path.dirname(d["sem_seg_file_name"])) == str(tmp_path / ".segdet_cache")
        np.testing.assert_array_equal(_decoded(d, classes.metadata), case.expected[d["image_id"]])
        # grass is stuff: only the cats are instances, the small one (on the grass) first.
        cats = [box_mask(b) for b in CATS[d["image_id"]]]
        assert [a["category_id"] for a in d["annotations"]] == [1] * len(cats)
        masks = [segmentation_to_mask(a["segmentation"], H, W) for a in d["annotations"]]
        np.testing.assert_array_equal(masks[0], cats[1])
        assert sorted(int(m.sum()) for m in masks) == sorted(int(m.sum()) for m in cats)


def test_default_things_are_all_categories(tmp_path):
    case = write_coco(tmp_path)
    classes = coco_classes(case.entry["JSON_FILE"])
    assert classes.metadata.thing_class_ids == [1, 2]
    d = load_coco(case.entry["JSON_FILE"], case.entry["IMAGE_ROOT"], classes)[1]
    assert sorted(a["category_id"] for a in d["annotations"]) == [1, 1, 2]


def _one_image_json(tmp_path, annotations, categories=None):
    write_image(tmp_path / "images" / "x.png")
    for k, ann in enumerate(annotations, 1):
        ann.setdefault("id", k)
        ann.setdefault("image_id", 1)
        ann.setdefault("iscrowd", 0)
    coco = {"images": [{"id": 1, "file_name": "x.png", "height": H, "width": W}], "annotations": annotations,
            "categories": categories or [{"id": 5, "name": "table"}, {"id": 9, "name": "cup"}]}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(coco))
    return str(path), str(tmp_path / "images")


TABLE = (10, 50, 10, 50)
CUP = (20, 29, 20, 29)


def test_smaller_region_is_drawn_over_the_larger_whatever_the_json_order(tmp_path):
    # The cup comes first in the json, the table (larger, under it) second.
    json_file, images = _one_image_json(tmp_path, [
        {"category_id": 9, "segmentation": [coco_polygon(CUP)]},
        {"category_id": 5, "segmentation": [coco_polygon(TABLE)]},
    ])
    classes = coco_classes(json_file)
    assert classes.metadata.class_names == ["background", "table", "cup"]  # categories in id order
    (d,) = load_coco(json_file, images, classes)
    expected = np.zeros((H, W), np.uint8)
    expected[box_mask(TABLE)] = 1
    expected[box_mask(CUP)] = 2
    np.testing.assert_array_equal(_decoded(d, classes.metadata), expected)
    assert [a["category_id"] for a in d["annotations"]] == [2, 1]  # top first


@pytest.mark.parametrize("crowd, crowd_pixels, kept", [("ignore", 3, 2), ("category", 1, 2), ("drop", 0, 1)])
def test_crowd_regions(tmp_path, crowd, crowd_pixels, kept):
    crowd_box = (40, 60, 40, 60)
    rle = mask_util.encode(np.asfortranarray(box_mask(crowd_box).astype(np.uint8)))
    json_file, images = _one_image_json(tmp_path, [
        {"category_id": 5, "segmentation": [coco_polygon(TABLE)]},
        # Crowd regions lie under the other annotations: the table keeps the overlap.
        {"category_id": 5, "iscrowd": 1, "segmentation": {"size": [H, W], "counts": rle["counts"].decode()}},
    ])
    classes = coco_classes(json_file, crowd=crowd)
    names = ["background", "table", "cup"] + (["ignore"] if crowd == "ignore" else [])
    assert classes.metadata.class_names == names
    (d,) = load_coco(json_file, images, classes, crowd=crowd)
    expected = np.zeros((H, W), np.uint8)
    expected[box_mask(crowd_box)] = crowd_pixels
    expected[box_mask(TABLE)] = 1
    np.testing.assert_array_equal(_decoded(d, classes.metadata), expected)
    assert [a["iscrowd"] for a in d["annotations"]] == [0, 1][:kept]


def test_label_map_merges_and_drops_categories(tmp_path):
    json_file, images = _one_image_json(tmp_path, [
        {"category_id": 5, "segmentation": [coco_polygon(TABLE)]},
        {"category_id": 9, "segmentation": [coco_polygon(CUP)]},
        {"category_id": 7, "segmentation": [coco_polygon((0, 5, 0, 5))]},
    ], categories=[{"id": 5, "name": "table"}, {"id": 9, "name": "cup"}, {"id": 7, "name": "shadow"}])
    classes = coco_classes(json_file, label_map={"table": "furniture", "cup": "furniture", "shadow": "background"})
    assert classes.metadata.class_names == ["background", "furniture"]
    (d,) = load_coco(json_file, images, classes)
    expected = np.zeros((H, W), np.uint8)
    expected[box_mask(TABLE)] = 1
    np.testing.assert_array_equal(_decoded(d, classes.metadata), expected)
    assert [a["category_id"] for a in d["annotations"]] == [1, 1]


def test_classes_file_with_label_map_to_an_ignore_class(tmp_path):
    json_file, images = _one_image_json(tmp_path, [
        {"category_id": 5, "segmentation": [coco_polygon(TABLE)]},
        {"category_id": 9, "segmentation": [coco_polygon(CUP)]},
    ])
    classes_file = tmp_path / "classes.json"
    classes_file.write_text(json.dumps({"label_map": {"cup": "unsure"}, "classes": [
        {"id": 0, "name": "floor"}, {"id": 1, "name": "table", "thing": True},
        {"id": 2, "name": "unsure", "ignore": True}]}))
    name = "test_coco_classes_file"
    try:
        meta = register_coco(name, json_file, images, classes_file=str(classes_file))
        assert meta.label_map is None and meta.json_file is None and meta.class_names == ["floor", "table", "unsure"]
        (d,) = DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    expected = np.zeros((H, W), np.uint8)
    expected[box_mask(TABLE)] = 1
    expected[box_mask(CUP)] = 2
    np.testing.assert_array_equal(_decoded(d, meta), expected)
    assert [a["category_id"] for a in d["annotations"]] == [1]


def test_cache_is_reused_and_follows_the_json(tmp_path):
    case = write_coco(tmp_path)
    json_file, images = case.entry["JSON_FILE"], case.entry["IMAGE_ROOT"]
    classes = coco_classes(json_file)
    first = load_coco(json_file, images, classes)[0]["sem_seg_file_name"]
    mtime = os.stat(first).st_mtime_ns
    assert load_coco(json_file, images, classes)[0]["sem_seg_file_name"] == first
    assert os.stat(first).st_mtime_ns == mtime  # not drawn again
    coco = json.loads(open(json_file).read())
    coco["annotations"] = [a for a in coco["annotations"] if not (a["image_id"] == 1 and a["category_id"] == 2)]
    open(json_file, "w").write(json.dumps(coco))
    again = load_coco(json_file, images, classes)[0]
    assert again["sem_seg_file_name"] != first and not os.path.exists(first)  # the stale picture is gone
    assert not (_decoded(again, classes.metadata) == 2).any()  # no grass left in image a
    other = load_coco(json_file, images, classes, cache_dir=str(tmp_path / "elsewhere"))[0]
    assert other["sem_seg_file_name"].startswith(str(tmp_path / "elsewhere"))


def test_bad_input_is_named(tmp_path):
    json_file, images = _one_image_json(tmp_path, [{"category_id": 5, "segmentation": [coco_polygon(TABLE)]}])
    with pytest.raises(DataError, match="crowd mode 'maybe'"):
        coco_classes(json_file, crowd="maybe")
    classes_file = tmp_path / "classes.json"
    classes_file.write_text(json.dumps({"classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "chair"}]}))
    with pytest.raises(DataError, match=r"x\.json: category 5: label 'table' is not a class"):
        load_coco(json_file, images, coco_classes(json_file, classes_file=str(classes_file)))
    with pytest.raises(DataError, match="not found"):
        coco_classes(str(tmp_path / "missing.json"))
    crowd_json, _ = _one_image_json(tmp_path, [{"category_id": 5, "iscrowd": 1, "segmentation": [coco_polygon(CUP)]}])
    with_file = coco_classes(crowd_json, classes_file=str(tmp_path / "classes.json"),
                             label_map={"table": "chair", "cup": "chair"})
    with pytest.raises(DataError, match=r"x\.json has crowd regions and CROWD is 'ignore': the dataset has no ignore"):
        load_coco(crowd_json, images, with_file)
    os.remove(os.path.join(images, "x.png"))
    with pytest.raises(DataError, match=r"image listed in .*x\.json not found"):
        load_coco(json_file, images, coco_classes(json_file))



def test_two_jsons_of_one_folder_keep_their_own_pictures(tmp_path):
    first, images = _one_image_json(tmp_path, [{"category_id": 5, "segmentation": [coco_polygon(TABLE)]}])
    other = tmp_path / "other.json"
    coco = json.loads(open(first).read())
    coco["annotations"][0]["segmentation"] = [coco_polygon(CUP)]
    other.write_text(json.dumps(coco))
    (a,) = load_coco(first, images, coco_classes(first))
    (b,) = load_coco(str(other), images, coco_classes(str(other)))
    # Same image stem, same cache root: both pictures stay, each with its own annotations.
    assert os.path.isfile(a["sem_seg_file_name"]) and os.path.isfile(b["sem_seg_file_name"])
    assert int((_decoded(a, coco_classes(first).metadata) == 1).sum()) == box_mask(TABLE).sum()
    assert int((_decoded(b, coco_classes(first).metadata) == 1).sum()) == box_mask(CUP).sum()
