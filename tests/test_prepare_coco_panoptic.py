"""COCO panoptic -> segdet semantic PNGs, on a hand-made two-image panoptic dataset, and the COCO config."""
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from segdet.config import load_config
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.converters.coco_panoptic import check_instances_categories, convert_coco_panoptic
from segdet.data.formats import register_from_config
from segdet.data.formats.coco_semantic import register_coco_semantic
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import load_classes_file
from segdet.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO_CONFIG = os.path.join(REPO, "configs", "coco", "panoptic_fpn_R_50_1x.yaml")

# pycocotools' decode trips a numpy 2 deprecation warning; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# Json order is not id order on purpose: class ids follow the json order.
CATEGORIES = [
    {"id": 7, "name": "cat", "isthing": 1, "color": [255, 0, 0], "supercategory": "animal"},
    {"id": 1, "name": "person", "isthing": 1, "color": [0, 255, 0], "supercategory": "person"},
    {"id": 184, "name": "tree-merged", "isthing": 0, "color": [0, 0, 255], "supercategory": "plant"},
]
# Expected class ids: cat 0, person 1, tree-merged 2, unlabeled 3 (ignore).

# Segment-id maps, 6 rows x 8 columns. Ids above 255 need the G and B channels:
# 300 = 44 + 256 * 1; 70000 = 112 + 256 * 17 + 65536 * 1.
SEG_A = np.array([
    [0, 0, 1, 1, 1, 70000, 70000, 70000],
    [0, 1, 1, 1, 1, 70000, 70000, 70000],
    [300, 300, 5, 5, 9, 70000, 70000, 70000],
    [300, 300, 5, 5, 9, 9, 70000, 70000],
    [300, 300, 0, 0, 0, 0, 70000, 70000],
    [300, 300, 0, 0, 0, 0, 0, 0],
])
SEGMENTS_A = [
    {"id": 1, "category_id": 7, "iscrowd": 0, "area": 7},
    {"id": 300, "category_id": 1, "iscrowd": 0, "area": 8},
    {"id": 5, "category_id": 1, "iscrowd": 1, "area": 4},  # a crowd keeps its category
    {"id": 70000, "category_id": 184, "iscrowd": 0, "area": 13},
    # segment 9 is in the PNG but not listed: unlabeled
]
EXPECTED_A = np.array([
    [3, 3, 0, 0, 0, 2, 2, 2],
    [3, 0, 0, 0, 0, 2, 2, 2],
    [1, 1, 1, 1, 3, 2, 2, 2],
    [1, 1, 1, 1, 3, 3, 2, 2],
    [1, 1, 3, 3, 3, 3, 2, 2],
    [1, 1, 3, 3, 3, 3, 3, 3],
], np.uint8)

SEG_B = np.array([
    [70000] * 8,
    [70000] * 8,
    [70000, 70000, 2, 2, 70000, 70000, 70000, 70000],
    [70000, 70000, 2, 2, 0, 70000, 70000, 70000],
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0],
])
SEGMENTS_B = [
    {"id": 70000, "category_id": 184, "iscrowd": 0, "area": 27},
    {"id": 2, "category_id": 7, "iscrowd": 0, "area": 4},
]
EXPECTED_B = np.array([
    [2, 2, 2, 2, 2, 2, 2, 2],
    [2, 2, 2, 2, 2, 2, 2, 2],
    [2, 2, 0, 0, 2, 2, 2, 2],
    [2, 2, 0, 0, 3, 2, 2, 2],
    [3, 3, 3, 3, 3, 3, 3, 3],
    [3, 3, 3, 3, 3, 3, 3, 3],
], np.uint8)


def _id_png(seg: np.ndarray, path) -> None:
    rgb = np.stack([seg % 256, (seg // 256) % 256, seg // 65536], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def _write_panoptic(root, categories=CATEGORIES):
    """annotations/panoptic_x.json + annotations/panoptic_x/{a,b}.png under root."""
    png_dir = root / "annotations" / "panoptic_x"
    png_dir.mkdir(parents=True)
    _id_png(SEG_A, png_dir / "a.png")
    _id_png(SEG_B, png_dir / "b.png")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 6, "width": 8},
                   {"id": 2, "file_name": "b.jpg", "height": 6, "width": 8}],
        "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": SEGMENTS_A},
                        {"image_id": 2, "file_name": "b.png", "segments_info": SEGMENTS_B}],
        "categories": categories,
    }
    json_file = root / "annotations" / "panoptic_x.json"
    json_file.write_text(json.dumps(data))
    return str(json_file), str(png_dir)


def _convert(tmp_path, **kwargs):
    json_file, png_dir = _write_panoptic(tmp_path)
    out = tmp_path / "semseg"
    classes = tmp_path / "classes.json"
    summary = convert_coco_panoptic(json_file, png_dir, str(out), str(classes), **kwargs)
    return summary, out, classes


def _gray(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.array(im)


@pytest.mark.parametrize("workers", [1, 2])
def test_converted_pngs_hold_class_ids(tmp_path, workers):
    summary, out, _ = _convert(tmp_path, workers=workers)
    assert (summary.total, summary.converted, summary.skipped, summary.failed) == (2, 2, 0, [])
    assert summary.images_with_unknown_segments == 1  # segment 9 of image a
    np.testing.assert_array_equal(_gray(out / "a.png"), EXPECTED_A)
    np.testing.assert_array_equal(_gray(out / "b.png"), EXPECTED_B)
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]  # no temp files left


def test_classes_file_loads_with_thing_and_ignore_flags(tmp_path):
    summary, _, classes = _convert(tmp_path)
    md = load_classes_file(str(classes))
    assert md.class_names == ["cat", "person", "tree-merged", "unlabeled"]
    assert md.thing_class_ids == [0, 1]
    assert md.ignore_class_ids == [3]
    assert md.stuff_class_ids == [2]
    assert md.class_colors == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)]
    assert md.label_format == "gray" and md.label_values is None
    assert (summary.num_classes, summary.num_thing_classes) == (4, 2)
    coco_ids = [c.get("coco_id") for c in json.loads(classes.read_text())["classes"]]
    assert coco_ids == [7, 1, 184, None]


def test_second_run_skips_converted_images(tmp_path):
    json_file, png_dir = _write_panoptic(tmp_path)
    out, classes = tmp_path / "semseg", tmp_path / "classes.json"
    convert_coco_panoptic(json_file, png_dir, str(out), str(classes))
    # A marker in place of a's output: a skipped image is not written again.
    Image.fromarray(np.full((6, 8), 9, np.uint8)).save(out / "a.png")
    os.remove(out / "b.png")
    (out / ".tmp-123-b.png").write_bytes(b"left by a killed run")
    summary = convert_coco_panoptic(json_file, png_dir, str(out), str(classes))
    assert (summary.converted, summary.skipped, summary.failed) == (1, 1, [])
    assert (_gray(out / "a.png") == 9).all()
    np.testing.assert_array_equal(_gray(out / "b.png"), EXPECTED_B)
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]


def test_existing_classes_file_with_other_classes_is_an_error(tmp_path):
    summary, out, classes = _convert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    json_file, png_dir = _write_panoptic(other, categories=CATEGORIES[::-1])
    with pytest.raises(DataError, match="classes.json exists and holds other classes"):
        convert_coco_panoptic(json_file, png_dir, str(other / "semseg"), str(classes))


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "prepare_coco_panoptic", os.path.join(REPO, "datasets", "prepare_coco_panoptic.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corrupt_and_missing_pngs_are_reported_by_name(tmp_path, capsys):
    json_file, png_dir = _write_panoptic(tmp_path)
    (tmp_path / "annotations" / "panoptic_x" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "semseg"
    summary = convert_coco_panoptic(json_file, png_dir, str(out), str(tmp_path / "classes.json"))
    assert summary.converted == 1
    ((path, problem),) = summary.failed
    assert path.endswith("b.png") and "corrupt" in problem and "b.png" in problem
    np.testing.assert_array_equal(_gray(out / "a.png"), EXPECTED_A)
    assert not (out / "b.png").exists()

    # The script: exit status 1 and the file named; a missing PNG likewise.
    os.remove(os.path.join(png_dir, "b.png"))
    script = _load_script()
    status = script.main(["--panoptic-json", json_file, "--panoptic-root", png_dir, "--output-root", str(out),
                          "--classes-out", str(tmp_path / "classes.json"), "--workers", "1"])
    assert status == 1
    err = capsys.readouterr().err
    assert "1 of 2 images failed" in err
    assert f"panoptic PNG not found: {os.path.join(png_dir, 'b.png')}" in err


def test_segment_of_unknown_category_fails_that_image_only(tmp_path):
    bad = [dict(SEGMENTS_B[0]), {"id": 2, "category_id": 99, "iscrowd": 0}]
    json_file, png_dir = _write_panoptic(tmp_path)
    data = json.loads(open(json_file).read())
    data["annotations"][1]["segments_info"] = bad
    open(json_file, "w").write(json.dumps(data))
    summary = convert_coco_panoptic(json_file, png_dir, str(tmp_path / "semseg"), str(tmp_path / "classes.json"))
    assert summary.converted == 1
    ((path, problem),) = summary.failed
    assert path.endswith("b.png") and "category_id 99" in problem


def _write_instances(root) -> str:
    """Images and a COCO instances json matching the panoptic data (category ids differ on purpose)."""
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(np.full((6, 8, 3), 128, np.uint8)).save(root / "images" / name)
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 6, "width": 8},
                   {"id": 2, "file_name": "b.jpg", "height": 6, "width": 8}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 17, "iscrowd": 0, "area": 6, "bbox": [1, 0, 4, 2],
             "segmentation": [[1, 0, 5, 0, 5, 2, 1, 2]]},
            {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 8, "bbox": [0, 2, 2, 4],
             "segmentation": [[0, 2, 2, 2, 2, 6, 0, 6]]},
            {"id": 12, "image_id": 2, "category_id": 17, "iscrowd": 0, "area": 4, "bbox": [2, 2, 2, 2],
             "segmentation": [[2, 2, 4, 2, 4, 4, 2, 4]]},
        ],
        "categories": [{"id": 3, "name": "person"}, {"id": 17, "name": "cat"}],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_full_path_to_coco_semantic_dataset(tmp_path):
    (tmp_path / "images").mkdir()
    instances = _write_instances(tmp_path)
    _, out, classes = _convert(tmp_path)
    classes_list = json.loads(classes.read_text())["classes"]
    assert check_instances_categories(instances, classes_list) == []

    name = "_test_coco_panoptic_full_path"
    register_coco_semantic(name, instances, str(tmp_path / "images"), str(out), classes_file=str(classes))
    try:
        dicts = DatasetCatalog.get(name)
        metadata = MetadataCatalog.get(name)
        assert [d["image_id"] for d in dicts] == ["a", "b"]
        # Category ids of the instances json become class ids, by name: cat 0, person 1.
        assert [a["category_id"] for a in dicts[0]["annotations"]] == [0, 1]
        assert [a["category_id"] for a in dicts[1]["annotations"]] == [0]
        codec = LabelCodec(metadata)
        np.testing.assert_array_equal(codec.read(dicts[0]["sem_seg_file_name"]), EXPECTED_A)
        np.testing.assert_array_equal(codec.read(dicts[1]["sem_seg_file_name"]), EXPECTED_B)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_instances_category_check_names_mismatches(tmp_path):
    (tmp_path / "images").mkdir()
    instances = _write_instances(tmp_path)
    data = json.loads(open(instances).read())
    data["categories"] = [{"id": 3, "name": "human"}, {"id": 17, "name": "cat"}, {"id": 5, "name": "tree-merged"}]
    open(instances, "w").write(json.dumps(data))
    _, _, classes = _convert(tmp_path)
    problems = check_instances_categories(instances, json.loads(classes.read_text())["classes"])
    assert problems == [
        "instances category 'human' (id 3) is not a panoptic category",
        "instances category 'tree-merged' (id 5) is a stuff class in the panoptic json",
        "panoptic thing class 'person' has no category in the instances json (no instances)",
    ]


def test_coco_config_loads_with_detectron2_1x_schedule():
    cfg = load_config(COCO_CONFIG)
    assert cfg.MODEL.META_ARCHITECTURE == "PanopticFPN" and cfg.MODEL.RESNETS.DEPTH == 50
    assert (cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, cfg.MODEL.ROI_HEADS.NUM_CLASSES) == (134, 80)
    assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, tuple(cfg.SOLVER.STEPS), cfg.SOLVER.MAX_ITER) == (
        16, 0.02, (60000, 80000), 90000)
    assert cfg.MODEL.WEIGHTS == ""
    assert cfg.DATASETS.TRAIN == ("coco_2017_train_panoptic",) and cfg.DATASETS.TEST == ("coco_2017_val_panoptic",)
    # The ImageNet start the config's comment gives.
    cfg = load_config(COCO_CONFIG, ["MODEL.WEIGHTS", "resnet50.pth", "MODEL.BACKBONE.FREEZE_AT", "2",
                                    "MODEL.RESNETS.NORM", "FrozenBN"])
    assert (cfg.MODEL.BACKBONE.FREEZE_AT, cfg.MODEL.RESNETS.NORM) == (2, "FrozenBN")


def test_coco_config_registers_its_datasets_lazily(tmp_path, monkeypatch):
    cfg = load_config(COCO_CONFIG)
    monkeypatch.chdir(tmp_path)  # the config's paths are relative to the working directory
    # Only the classes file is read at registration; without it, the error names it.
    with pytest.raises(DataError, match="classes file not found: datasets/coco/classes.json"):
        register_from_config(cfg)
    # Classes as the preparation script writes them; no images, jsons or PNGs exist.
    json_file, png_dir = _write_panoptic(tmp_path)
    convert_coco_panoptic(json_file, png_dir, str(tmp_path / "semseg"), "datasets/coco/classes.json")
    names = ["coco_2017_train_panoptic", "coco_2017_val_panoptic"]
    try:
        assert register_from_config(cfg) == names
        assert MetadataCatalog.get(names[0]).json_file == "datasets/coco/annotations/instances_train2017.json"
        assert MetadataCatalog.get(names[1]).class_names[-1] == "unlabeled"
        assert sorted(os.listdir(tmp_path / "datasets" / "coco")) == ["classes.json"]
        with pytest.raises(DataError, match="COCO json not found: datasets/coco/annotations/instances_val2017.json"):
            DatasetCatalog.get(names[1])
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
