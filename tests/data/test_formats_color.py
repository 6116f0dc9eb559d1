"""Color-coded labels: the shipped palettes, RGB color labels, and VOC's indexed palette PNGs."""
import os

import numpy as np
import pytest
from PIL import Image

from segdet.data import DatasetCatalog, LabelCodec, MetadataCatalog
from segdet.data.formats.image_folder import load_image_folder, register_image_folder
from segdet.data.formats.voc import load_voc, register_voc
from segdet.data.palettes import camvid_metadata, voc2012_metadata
from segdet.errors import DataError

H, W = 6, 8

# The VOC colormap as the d2l book lists it (classes 0..20).
VOC_COLORMAP = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128],
                [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128],
                [192, 0, 128], [64, 128, 128], [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0],
                [128, 192, 0], [0, 64, 128]]


def _cleanup(names):
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_voc2012_metadata():
    meta = voc2012_metadata()
    assert meta.num_classes == 22
    assert meta.class_names[0] == "background" and meta.class_names[15] == "person"
    assert meta.class_names[21] == "void"
    assert [list(c) for c in meta.class_colors[:21]] == VOC_COLORMAP
    assert meta.class_colors[21] == (224, 224, 192)  # VOC's border color, palette index 255
    assert meta.ignore_class_ids == [21]
    assert meta.label_values == list(range(21)) + [255]
    assert meta.label_format == "palette"
    assert voc2012_metadata("rgb").label_format == "rgb"


def test_camvid_metadata():
    meta = camvid_metadata()
    assert meta.class_names == ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                                "Car", "Pedestrian", "Bicyclist", "Void"]
    assert meta.class_colors[4] == (60, 40, 222)
    assert meta.class_colors[10] == (0, 128, 192)
    assert meta.class_colors[11] == (0, 0, 0)
    assert meta.ignore_class_ids == [11]
    assert meta.label_format == "gray"
    assert meta.label_values is None


def _image(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)


def test_rgb_color_labels_through_image_folder(tmp_path):
    images, labels = tmp_path / "img", tmp_path / "lbl"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(3)
    palette = np.array(VOC_COLORMAP + [[224, 224, 192]], dtype=np.uint8)
    truth = {}
    for i, stem in enumerate(["x1", "x2", "x3"]):
        _image(images / f"{stem}.jpg", i)
        ids = rng.choice([0, 7, 15, 21], size=(H, W)).astype(np.uint8)
        Image.fromarray(palette[ids]).save(labels / f"{stem}.png")  # an RGB PNG painted with class colors
        truth[stem] = ids
    name = "fmt_color_rgb"
    register_image_folder(name, str(images), str(labels), metadata=voc2012_metadata("rgb"))
    try:
        dicts = DatasetCatalog.get(name)
        assert [d["image_id"] for d in dicts] == ["x1", "x2", "x3"]
        assert dicts[1]["sem_seg_file_name"] == os.path.join(os.path.abspath(labels), "x2.png")
        assert (dicts[1]["height"], dicts[1]["width"]) == (H, W)
        codec = LabelCodec(MetadataCatalog.get(name))
        for d in dicts:
            np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), truth[d["image_id"]])
    finally:
        _cleanup([name])


def test_rgb_label_with_undeclared_color_names_file_and_color(tmp_path):
    images, labels = tmp_path / "img", tmp_path / "lbl"
    images.mkdir()
    labels.mkdir()
    _image(images / "a.png", 0)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[2, 3] = (1, 2, 3)
    Image.fromarray(rgb).save(labels / "a.png")
    meta = camvid_metadata("rgb")
    (d,) = load_image_folder(str(images), str(labels), meta)
    with pytest.raises(DataError, match=r"a\.png.*\(1, 2, 3\)"):
        LabelCodec(meta).read(d["sem_seg_file_name"])


def _voc_palette_png(path, indices):
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[:21] = VOC_COLORMAP
    palette[255] = (224, 224, 192)
    image.putpalette(palette.reshape(-1).tolist())
    image.save(path)


@pytest.fixture
def fmt_voc(tmp_path):
    """A tiny VOC2012 folder: 3 images, palette PNG labels with indices 0, 1, 15 and 255 (void)."""
    root = tmp_path / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(7)
    truth = {}
    for i, image_id in enumerate(["2007_000032", "2007_000039", "2007_000063"]):
        _image(root / "JPEGImages" / f"{image_id}.jpg", i)
        indices = rng.choice([0, 1, 15, 255], size=(H, W))
        _voc_palette_png(root / "SegmentationClass" / f"{image_id}.png", indices)
        truth[image_id] = np.where(indices == 255, 21, indices)  # void is class 21
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000039\n2007_000032\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("2007_000063\n")
    return {"root": str(root), "truth": truth}


def test_register_voc_palette_pngs(fmt_voc):
    names = register_voc(fmt_voc["root"], name_prefix="fmt_voc")
    try:
        assert names == ["fmt_voc_train", "fmt_voc_val"]
        root = os.path.abspath(fmt_voc["root"])
        assert DatasetCatalog.get("fmt_voc_train") == [
            {"file_name": os.path.join(root, "JPEGImages", f"{i}.jpg"), "height": H, "width": W, "image_id": i,
             "sem_seg_file_name": os.path.join(root, "SegmentationClass", f"{i}.png")}
            for i in ["2007_000039", "2007_000032"]
        ]
        meta = MetadataCatalog.get("fmt_voc_val")
        assert meta.label_format == "palette" and meta.ignore_class_ids == [21]
        codec = LabelCodec(meta)
        for name in names:
            for d in DatasetCatalog.get(name):
                np.testing.assert_array_equal(codec.read(d["sem_seg_file_name"]), fmt_voc["truth"][d["image_id"]])
    finally:
        _cleanup(names)


def test_voc_missing_label_is_an_error(fmt_voc):
    os.remove(os.path.join(fmt_voc["root"], "SegmentationClass", "2007_000063.png"))
    with pytest.raises(DataError, match="2007_000063.png not found"):
        load_voc(fmt_voc["root"], "val")


def test_voc_palette_reader_rejects_rgb_png(fmt_voc):
    path = os.path.join(fmt_voc["root"], "SegmentationClass", "2007_000063.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    (d,) = load_voc(fmt_voc["root"], "val")
    with pytest.raises(DataError, match="not an indexed"):
        LabelCodec(voc2012_metadata()).read(d["sem_seg_file_name"])
