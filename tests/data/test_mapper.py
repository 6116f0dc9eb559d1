"""DatasetMapper: output contract, ignore/merge handling, instances, and errors that name the file."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from fvcore.transforms.transform import CropTransform
from PIL import Image

from segdet.config import get_cfg
from segdet.data.mapper import DatasetMapper
from segdet.structures.metadata import Metadata
from segdet.data.transforms import Augmentation, RandomCrop, RandomFlip
from segdet.errors import ConfigError, DataError

IGNORE = 255
H, W = 8, 10


def _metadata():
    return Metadata(["bg", "a", "b", "border"], ignore_class_ids=[3], thing_class_ids=[1, 2])


def _label():
    label = np.zeros((H, W), dtype=np.uint8)
    label[1:4, 1:5] = 1  # an "a" object
    label[5:7, 6:9] = 2  # a "b" object
    label[0, :] = 3  # border (ignore)
    return label


def _image():
    return np.random.default_rng(0).integers(0, 256, size=(H, W, 3)).astype(np.uint8)


def _write(tmp_path, image=None, label=None, name="img"):
    image = _image() if image is None else image
    label = _label() if label is None else label
    img_path = tmp_path / f"{name}.png"
    lbl_path = tmp_path / f"{name}_label.png"
    Image.fromarray(image).save(img_path)
    Image.fromarray(label, mode="L").save(lbl_path)
    return {
        "file_name": str(img_path),
        "sem_seg_file_name": str(lbl_path),
        "height": image.shape[0],
        "width": image.shape[1],
        "image_id": name,
    }


def _annotations():
    return [
        {"bbox": [1, 1, 4, 3], "bbox_mode": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]]},  # polygon of label[1:4, 1:5]
        {"bbox": [6, 5, 3, 2], "bbox_mode": 1, "category_id": 2, "iscrowd": 0,
         "segmentation": _rle(_label() == 2)},
        {"bbox": [0, 0, 2, 2], "bbox_mode": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": _rle(np.pad(np.ones((2, 2), bool), ((0, H - 2), (0, W - 2))))},
    ]


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # as in a COCO json
    return rle


class _FixedCrop(Augmentation):
    def __init__(self, x0, y0, w, h):
        self.box = (x0, y0, w, h)

    def get_transform(self, image, rng):
        return CropTransform(*self.box)


def test_output_keys_dtypes_shapes_ignore_and_weights(tmp_path):
    d = _write(tmp_path)
    mapper = DatasetMapper(True, [], _metadata(), ignore_class_ids=[3], class_weights=[1.0, 2.0, 3.0, 5.0])
    out = mapper(d)
    assert set(out) == {"image", "sem_seg", "weight", "height", "width", "file_name", "image_id", "sem_seg_file_name"}
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, H, W)
    assert np.array_equal(out["image"].permute(1, 2, 0).numpy(), _image())
    assert out["sem_seg"].dtype == torch.int64 and out["weight"].dtype == torch.float32
    label = _label().astype(np.int64)
    expected = np.where(label == 3, IGNORE, label)
    assert np.array_equal(out["sem_seg"].numpy(), expected)
    expected_weight = np.array([1.0, 2.0, 3.0, 0.0], np.float32)[label]
    assert np.array_equal(out["weight"].numpy(), expected_weight)
    assert (out["height"], out["width"], out["image_id"]) == (H, W, "img")
    assert out["file_name"] == d["file_name"] and out["sem_seg_file_name"] == d["sem_seg_file_name"]
    assert d == _write(tmp_path)  # the dataset dict is not modified


def test_merge_into_background(tmp_path):
    d = _write(tmp_path)
    mapper = DatasetMapper(True, [], _metadata(), ignore_class_ids=[3], merge_into_background=[2],
                           background_class_id=0)
    sem_seg = mapper(d)["sem_seg"].numpy()
    label = _label()
    assert (sem_seg[label == 2] == 0).all()
    assert (sem_seg[label == 1] == 1).all() and (sem_seg[label == 3] == IGNORE).all()


def test_instances_after_horizontal_flip(tmp_path):
    d = _write(tmp_path)
    d["annotations"] = _annotations()
    mapper = DatasetMapper(True, [RandomFlip("horizontal", prob=1.0)], _metadata(), ignore_class_ids=[3],
                           instances_on=True)
    out = mapper(d, np.random.default_rng(0))
    assert np.array_equal(out["sem_seg"].numpy(), np.fliplr(np.where(_label() == 3, IGNORE, _label())))
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [1, 2]  # the crowd annotation is dropped
    assert inst.gt_masks.dtype == torch.uint8 and inst.gt_masks.shape == (2, H, W)
    assert np.array_equal(inst.gt_masks[0].numpy(), np.fliplr(_label() == 1).astype(np.uint8))
    assert np.array_equal(inst.gt_masks[1].numpy(), np.fliplr(_label() == 2).astype(np.uint8))
    assert inst.gt_boxes.dtype == torch.float32
    # XYXY before the flip: a = (1, 1, 5, 4), b = (6, 5, 9, 7); x -> W - x.
    assert inst.gt_boxes.tolist() == [[W - 5, 1, W - 1, 4], [W - 9, 5, W - 6, 7]]


def test_instances_cropped_out_are_dropped_and_padding_is_ignore(tmp_path):
    d = _write(tmp_path)
    d["annotations"] = _annotations()
    # Crop columns 0..5 (object b at columns 6..8 leaves the image) ...
    mapper = DatasetMapper(True, [_FixedCrop(0, 0, 6, H)], _metadata(), [3], instances_on=True)
    inst = mapper(d)["instances"]
    assert inst.gt_classes.tolist() == [1] and inst.gt_boxes.tolist() == [[1, 1, 5, 4]]
    # ... and a crop larger than the image pads labels with the ignore value, masks with 0.
    mapper = DatasetMapper(True, [RandomCrop(12, 10)], _metadata(), [3], instances_on=True)
    out = mapper(d, np.random.default_rng(0))
    assert out["sem_seg"].shape == (12, 10)
    assert (out["sem_seg"][H:] == IGNORE).all() and (out["weight"][H:] == 0).all()
    assert (out["image"][:, H:] == 0).all()
    assert set(np.unique(out["instances"].gt_masks.numpy())) == {0, 1}
    assert (out["instances"].gt_masks[:, H:] == 0).all()


def test_test_mapper_without_label_gives_image_keys_only(tmp_path):
    d = _write(tmp_path)
    del d["sem_seg_file_name"]
    out = DatasetMapper(False, [], _metadata(), [3])(d)
    assert set(out) == {"image", "height", "width", "file_name", "image_id"}


def test_from_config_reads_ignore_ids_and_mask_on(tmp_path):
    cfg = get_cfg()
    cfg.INPUT.RANDOM_FLIP = "none"
    mapper = DatasetMapper.from_config(cfg, True, _metadata(), class_weights=[1, 1, 2, 1])
    assert mapper.ignore_class_ids == [3] and mapper.instances_on
    assert mapper.class_weights == [1.0, 1.0, 2.0, 0.0]
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = [2, 3]
    cfg.MODEL.META_ARCHITECTURE = "SemanticSegmentor"
    cfg.MODEL.MASK_ON = False
    mapper = DatasetMapper.from_config(cfg, True, _metadata())
    assert mapper.ignore_class_ids == [2, 3] and not mapper.instances_on
    out = mapper(_write(tmp_path))
    assert (out["sem_seg"].numpy()[_label() == 2] == IGNORE).all()


def test_bad_configuration_is_reported():
    with pytest.raises(ConfigError, match="ignore value"):
        DatasetMapper(True, [], _metadata(), [3], ignore_value=2)
    with pytest.raises(ConfigError, match="class weights"):
        DatasetMapper(True, [], _metadata(), [3], class_weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="7"):
        DatasetMapper(True, [], _metadata(), [7])


def test_image_label_size_mismatch_names_both_files(tmp_path):
    d = _write(tmp_path, label=np.zeros((H, W - 2), np.uint8))
    with pytest.raises(DataError) as e:
        DatasetMapper(True, [], _metadata(), [3])(d)
    msg = str(e.value)
    assert d["file_name"] in msg and d["sem_seg_file_name"] in msg
    assert f"{H}x{W - 2}" in msg and f"{H}x{W}" in msg


def test_image_size_differs_from_dataset_dict(tmp_path):
    d = _write(tmp_path)
    d["height"] = H + 1
    with pytest.raises(DataError, match=d["file_name"]):
        DatasetMapper(True, [], _metadata(), [3])(d)


def test_undeclared_label_value_names_file(tmp_path):
    label = _label()
    label[4, 4] = 7
    d = _write(tmp_path, label=label)
    with pytest.raises(DataError, match=r"\[7\]") as e:
        DatasetMapper(True, [], _metadata(), [3])(d)
    assert d["sem_seg_file_name"] in str(e.value)


def test_missing_label_file_names_it(tmp_path):
    d = _write(tmp_path)
    d["sem_seg_file_name"] = str(tmp_path / "nope.png")
    with pytest.raises(DataError, match="nope.png"):
        DatasetMapper(True, [], _metadata(), [3])(d)


def test_corrupt_image_names_it(tmp_path):
    d = _write(tmp_path)
    with open(d["file_name"], "wb") as f:
        f.write(b"not a png at all")
    with pytest.raises(DataError, match=d["file_name"]):
        DatasetMapper(True, [], _metadata(), [3])(d)


def test_bad_annotations_name_the_image(tmp_path):
    d = _write(tmp_path)
    mapper = DatasetMapper(True, [], _metadata(), [3], instances_on=True)
    d["annotations"] = [{"bbox": [0, 0, 1, 1], "bbox_mode": 1, "category_id": 0, "segmentation": [[0, 0, 1, 0, 1, 1]]}]
    with pytest.raises(DataError, match="not a thing class") as e:
        mapper(d)
    assert d["file_name"] in str(e.value)
    d["annotations"] = [{"bbox": [0, 0, 1, 1], "bbox_mode": 1, "category_id": 1, "segmentation": [[0, 0, 1]]}]
    with pytest.raises(DataError, match=d["file_name"]):
        mapper(d)
    d["annotations"] = [{"bbox": [0, 0, 1, 1], "bbox_mode": 1, "category_id": 1,
                         "segmentation": _rle(np.ones((H + 1, W), bool))}]
    with pytest.raises(DataError, match="RLE size"):
        mapper(d)
