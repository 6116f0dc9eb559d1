"""`cityscapes` (labelId -> trainId through the value map, instances from instanceIds) and `ade20k`
(value 0 ignored, the rest shifted down by one), and their built-in names."""
import numpy as np
import pytest

from segdet.data.builtin import register_builtin_datasets
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.ade20k import ade20k_metadata
from segdet.data.formats.cityscapes import cityscapes_metadata, load_cityscapes, register_cityscapes
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import segmentation_to_mask
from tests.data.format_files import CATS, H, W, box_mask, write_ade20k, write_cityscapes

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# Official Cityscapes facts, written out here independently of the module: labelId -> trainId.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
             27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def test_cityscapes_classes_are_the_official_training_classes():
    meta = cityscapes_metadata()
    assert meta.num_classes == 20 and meta.ignore_class_ids == [19] and meta.class_names[19] == "ignore"
    assert meta.class_names[:3] == ["road", "sidewalk", "building"] and meta.class_names[18] == "bicycle"
    assert meta.thing_classes == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    # Every labelId 0..33 decodes: the training ones to their trainId, all others to ignore.
    ids = LabelCodec(meta).decode(np.arange(34, dtype=np.uint8).reshape(1, 34))[0]
    assert ids.tolist() == [TRAIN_IDS.get(label_id, 19) for label_id in range(34)]
    with pytest.raises(DataError, match=r"value\(s\) \[34\] are not declared"):
        LabelCodec(meta).decode(np.array([[34]], np.uint8))


def test_cityscapes_labels_and_instances(tmp_path):
    case = write_cityscapes(tmp_path)
    meta = cityscapes_metadata()
    dicts = load_cityscapes(str(tmp_path / "leftImg8bit" / "train"), str(tmp_path / "gtFine" / "train"), meta)
    assert [d["image_id"] for d in dicts] == ["ulm_000000_000019", "ulm_000001_000019"]
    for d, image_id in zip(dicts, ("a", "b")):
        np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), case.expected[d["image_id"]])
        anns = d["annotations"]
        # person instances 24000, 24001, ... in value order, then nothing else but the car crowd (value 26).
        persons = [a for a in anns if not a["iscrowd"]]
        assert [a["category_id"] for a in persons] == [11] * len(CATS[image_id])
        for ann, box in zip(persons, CATS[image_id]):
            np.testing.assert_array_equal(segmentation_to_mask(ann["segmentation"], H, W), box_mask(box))
        (crowd,) = [a for a in anns if a["iscrowd"]]
        assert crowd["category_id"] == 13 and crowd["bbox"] == [50.0, 56.0, 14.0, 8.0]
    semantic_only = load_cityscapes(str(tmp_path / "leftImg8bit" / "val"), str(tmp_path / "gtFine" / "val"), meta,
                                    instances=False)
    assert [sorted(d) for d in semantic_only] == [["file_name", "height", "image_id", "sem_seg_file_name", "width"]] * 2


def test_cityscapes_label_map_and_bad_input(tmp_path):
    write_cityscapes(tmp_path)
    names = register_cityscapes(str(tmp_path), "cs_test", label_map={24: "ignore"})  # persons dropped
    try:
        assert names == ["cs_test_train", "cs_test_val"]
        d = DatasetCatalog.get("cs_test_val")[0]
        ids = LabelCodec(MetadataCatalog.get("cs_test_val")).read(d["sem_seg_file_name"])
        assert (ids[box_mask(CATS["a"][0])] == 19).all()
        assert all(a["iscrowd"] for a in d["annotations"])  # only the car crowd is left
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    label = next((tmp_path / "gtFine" / "val" / "ulm").glob("*_instanceIds.png"))
    label.unlink()
    with pytest.raises(DataError, match=r"Cityscapes image .*_leftImg8bit\.png has no .*_instanceIds\.png"):
        load_cityscapes(str(tmp_path / "leftImg8bit" / "val"), str(tmp_path / "gtFine" / "val"), cityscapes_metadata())
    with pytest.raises(DataError, match="no Cityscapes images"):
        load_cityscapes(str(tmp_path / "leftImg8bit" / "test"), str(tmp_path / "gtFine" / "test"), cityscapes_metadata())


def test_ade20k_reduces_the_zero_label():
    meta = ade20k_metadata()
    assert meta.num_classes == 151 and meta.ignore_class_ids == [150]
    assert meta.class_names[0] == "wall" and meta.class_names[149] == "flag" and meta.class_names[150] == "ignore"
    ids = LabelCodec(meta).decode(np.arange(151, dtype=np.uint8).reshape(1, 151))[0]
    assert ids.tolist() == [150] + list(range(150))
    np.testing.assert_array_equal(LabelCodec(meta).encode(np.array([[150, 0, 149]])), [[0, 1, 150]])


def test_builtin_names_under_segdet_datasets(tmp_path):
    cityscapes = write_cityscapes(tmp_path / "cityscapes")
    ade = write_ade20k(tmp_path / "ADEChallengeData2016")
    register_builtin_datasets(str(tmp_path))
    try:
        for name, case in (("cityscapes_fine_train", cityscapes), ("cityscapes_fine_val", cityscapes),
                           ("ade20k_train", ade), ("ade20k_val", ade)):
            dicts = DatasetCatalog.get(name)
            codec = LabelCodec(MetadataCatalog.get(name))
            assert len(dicts) == 2
            for d in dicts:
                np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), case.expected[d["image_id"]])
        register_builtin_datasets(str(tmp_path / "empty"))
        with pytest.raises(DataError, match=r"Cityscapes not found at .*empty/cityscapes"):
            DatasetCatalog.get("cityscapes_fine_val")
        with pytest.raises(DataError, match=r"ADE20K \(ADEChallengeData2016\) not found"):
            DatasetCatalog.get("ade20k_train")
        assert MetadataCatalog.get("ade20k_train").num_classes == 151
    finally:
        register_builtin_datasets()
