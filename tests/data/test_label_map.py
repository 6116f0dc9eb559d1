"""The value map (`label_map`): raw label values -> class ids, many to one, for every format."""
import json

import cv2
import numpy as np
import pytest
from fvcore.common.config import CfgNode

from segdet.config import get_cfg
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.data.label_codec import LabelCodec
from segdet.errors import ConfigError, DataError
from segdet.data.label_codec import segmentation_codec
from segdet.structures.metadata import Metadata, load_classes_file


def _meta(**kwargs):
    return Metadata(["background", "part", "void"], ignore_class_ids=[2], **kwargs)


def test_many_values_to_one_class_and_to_the_ignore_class():
    meta = _meta(label_map={3: 0, "4": "part", 255: "void"})
    assert meta.label_map == {"3": 0, "4": 1, "255": 2}
    codec = LabelCodec(meta)
    raw = np.array([[0, 1, 2, 3, 4, 255]], np.uint8)
    np.testing.assert_array_equal(codec.decode(raw), [[0, 1, 2, 0, 1, 2]])
    with pytest.raises(DataError, match=r"f\.png: value\(s\) \[5\] are not declared classes"):
        codec.decode(np.array([[5]], np.uint8), "f.png")
    # Each class is written as its own value, which still decodes to it.
    np.testing.assert_array_equal(codec.encode(np.array([[0, 1, 2]])), [[0, 1, 2]])


def test_reordered_classes_round_trip():
    codec = LabelCodec(Metadata(["a", "b", "c"], label_map={0: 2, 1: 0, 2: 1}))
    np.testing.assert_array_equal(codec.decode(np.array([[0, 1, 2]], np.uint8)), [[2, 0, 1]])
    # Class 0's own value 0 now decodes to class 2: it is written as 1, the value mapped to it.
    np.testing.assert_array_equal(codec.encode(np.array([[0, 1, 2]])), [[1, 2, 0]])


def test_colors_to_classes():
    meta = Metadata(["sky", "road"], class_colors=[(0, 0, 255), (128, 64, 128)], label_format="rgb",
                    label_map={"10, 10, 10": "road", (1, 2, 3): 0})
    assert meta.label_map == {"10,10,10": 1, "1,2,3": 0}
    rgb = np.array([[[0, 0, 255], [128, 64, 128], [10, 10, 10], [1, 2, 3]]], np.uint8)
    np.testing.assert_array_equal(LabelCodec(meta).decode(rgb), [[0, 1, 1, 0]])


def test_a_class_nothing_decodes_to_cannot_be_written():
    # Value 1 (class "part") is sent to background: no raw value is left for "part".
    codec = LabelCodec(_meta(label_map={1: 0}))
    np.testing.assert_array_equal(codec.decode(np.array([[1, 2]], np.uint8)), [[0, 2]])
    with pytest.raises(DataError, match=r"class\(es\) \[1\] have no raw value"):
        codec.encode(np.array([[1]]))


def test_writers_in_another_format_use_the_class_colors():
    meta = _meta(label_map={9: 1})
    written = segmentation_codec(meta, "rgb").encode(np.array([[0, 1]]))
    np.testing.assert_array_equal(written, [[meta.class_colors[0], meta.class_colors[1]]])


def test_bad_maps_are_named():
    with pytest.raises(DataError, match=r"label_map sends 3 to 'wheel', which is not a class"):
        _meta(label_map={3: "wheel"})
    with pytest.raises(DataError, match=r"label_map sends 3 to 7, which is not a class"):
        _meta(label_map={3: 7})
    with pytest.raises(DataError, match="label_map mixes color and value keys"):
        _meta(label_map={3: 0, "1,2,3": 1})
    with pytest.raises(DataError, match="label_map keys are colors .* but label format 'gray' holds values"):
        _meta().with_label_map({"1,2,3": 1})
    with pytest.raises(DataError, match="label format 'instance_ids' holds instance ids"):
        Metadata(["bg", "person"], thing_class_ids=[1], label_format="instance_ids").with_label_map({3: 0})
    with pytest.raises(DataError, match=r"label_map keys \['car'\] are label names"):
        LabelCodec(_meta(label_map={"car": 1}))


def test_classes_file_declares_the_map(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"label_map": {"3": "background", "4": 1},
                                "classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "part"}]}))
    meta = load_classes_file(str(path))
    assert meta.label_map == {"3": 0, "4": 1}
    # JSON round trip (model files keep the metadata as a dict).
    assert Metadata.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta
    path.write_text(json.dumps({"label_map": {"1,2,3": 1}, "classes": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]}))
    with pytest.raises(DataError, match=r"classes file .*classes\.json: label_map: label_map keys are colors"):
        load_classes_file(str(path))


def test_label_map_of_a_config_entry_for_a_format_without_one(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((2, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.array([[0, 1, 2, 3], [7, 7, 3, 0]], np.uint8))
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": [{"id": 0, "name": "bg"}, {"id": 1, "name": "defect"},
                                               {"id": 2, "name": "void", "ignore": True}]}))
    cfg = get_cfg()
    entry = {"FORMAT": "image_folder", "IMAGE_DIR": str(tmp_path / "images"), "LABEL_DIR": str(tmp_path / "labels"),
             "CLASSES_FILE": str(classes), "LABEL_MAP": {3: "defect", 7: "void"}}
    cfg.DATASETS.CUSTOM["lm_folder"] = CfgNode(entry)
    try:
        assert register_from_config(cfg) == ["lm_folder"]
        meta = MetadataCatalog.get("lm_folder")
        assert meta.label_map == {"3": 1, "7": 2} and meta.name == "lm_folder"
        (d,) = DatasetCatalog.get("lm_folder")
        np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), [[0, 1, 2, 1], [2, 2, 1, 0]])
        cfg.DATASETS.CUSTOM["lm_folder"]["LABEL_MAP"] = {3: "scratch"}
        with pytest.raises(ConfigError, match=r"DATASETS\.CUSTOM\.lm_folder\.LABEL_MAP: .*'scratch'"):
            register_from_config(cfg)
    finally:
        DatasetCatalog.remove("lm_folder")
        MetadataCatalog.remove("lm_folder")
