"""Bad input to the dataset formats: each is a DataError/ConfigError naming the file (or key) and the problem."""
import os

import numpy as np
import pytest
from PIL import Image

from segdet.config import CfgNode, get_cfg
from segdet.data import DatasetCatalog, LabelCodec, Metadata, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.data.formats.image_folder import load_image_folder, register_image_folder
from segdet.errors import ConfigError, DataError
from segdet.utils.image_io import image_size

H, W = 6, 8


@pytest.fixture
def fmt_bad_folder(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for stem in ("a", "b"):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / f"{stem}.png")
        Image.fromarray(np.ones((H, W), np.uint8)).save(labels / f"{stem}.png")
    return str(images), str(labels)


def _meta():
    return Metadata(class_names=["bg", "fg"])


def test_missing_label_file_names_image_and_folder(fmt_bad_folder):
    images, labels = fmt_bad_folder
    os.remove(os.path.join(labels, "b.png"))
    with pytest.raises(DataError) as info:
        load_image_folder(images, labels, _meta())
    message = str(info.value)
    assert os.path.join(images, "b.png") in message
    assert labels in message and "no label file" in message


def test_empty_dataset_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DataError, match=r"no images .* in .*images"):
        load_image_folder(str(tmp_path / "images"), str(tmp_path / "labels"), _meta())


def test_missing_image_folder(tmp_path):
    with pytest.raises(DataError, match=r"image folder not found: .*nowhere"):
        load_image_folder(str(tmp_path / "nowhere"), str(tmp_path), _meta())


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown dataset 'fmt_never_registered'"):
        DatasetCatalog.get("fmt_never_registered")


def test_undeclared_label_value_names_file_and_value(fmt_bad_folder):
    images, labels = fmt_bad_folder
    ids = np.ones((H, W), np.uint8)
    ids[2, 2] = 7
    Image.fromarray(ids).save(os.path.join(labels, "a.png"))
    dicts = load_image_folder(images, labels, _meta())
    codec = LabelCodec(_meta())
    with pytest.raises(DataError) as info:
        codec.read(dicts[0]["sem_seg_file_name"])
    assert dicts[0]["sem_seg_file_name"] in str(info.value)
    assert "[7]" in str(info.value)
    np.testing.assert_array_equal(codec.read(dicts[1]["sem_seg_file_name"]), np.ones((H, W)))


def test_corrupt_image(fmt_bad_folder, tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x00\x01 this is not a png \xff" * 5)
    with pytest.raises(DataError, match=r"corrupt.*garbage\.png"):
        image_size(str(garbage))
    images, labels = fmt_bad_folder
    with open(os.path.join(images, "b.png"), "wb") as f:
        f.write(b"garbage")
    with pytest.raises(DataError, match=r"corrupt.*b\.png"):
        load_image_folder(images, labels, _meta())


def _cfg(entry, spec):
    cfg = get_cfg()
    cfg.DATASETS.CUSTOM[entry] = CfgNode(spec)
    return cfg


def test_unknown_format_in_config():
    with pytest.raises(ConfigError) as info:
        register_from_config(_cfg("fmt_cfg_a", {"FORMAT": "image_foldr", "IMAGE_DIR": "x", "LABEL_DIR": "y"}))
    message = str(info.value)
    assert "DATASETS.CUSTOM.fmt_cfg_a.FORMAT" in message and "image_foldr" in message
    assert "did you mean 'image_folder'" in message
    assert "fmt_cfg_a" not in DatasetCatalog


def test_misspelled_argument_in_config(fmt_bad_folder):
    images, labels = fmt_bad_folder
    spec = {"FORMAT": "image_folder", "IMAGE_DIR": images, "LABEL_DIRS": labels, "CLASSES_FILE": "c.json"}
    with pytest.raises(ConfigError) as info:
        register_from_config(_cfg("fmt_cfg_b", spec))
    message = str(info.value)
    assert "DATASETS.CUSTOM.fmt_cfg_b.LABEL_DIRS" in message
    assert "did you mean 'LABEL_DIR'" in message
    assert "fmt_cfg_b" not in DatasetCatalog


def test_missing_argument_in_config(fmt_bad_folder):
    images, _ = fmt_bad_folder
    with pytest.raises(ConfigError, match=r"DATASETS\.CUSTOM\.fmt_cfg_c: .*needs LABEL_DIR"):
        register_from_config(_cfg("fmt_cfg_c", {"FORMAT": "image_folder", "IMAGE_DIR": images}))


def test_missing_format_in_config():
    with pytest.raises(ConfigError, match=r"DATASETS\.CUSTOM\.fmt_cfg_d: no FORMAT"):
        register_from_config(_cfg("fmt_cfg_d", {"IMAGE_DIR": "x"}))


def test_no_classes_for_image_folder(fmt_bad_folder):
    images, labels = fmt_bad_folder
    with pytest.raises(DataError, match="'fmt_bad_noclasses': no classes given"):
        register_image_folder("fmt_bad_noclasses", images, labels)
    assert "fmt_bad_noclasses" not in MetadataCatalog
