"""Output files: each segmentation format reads back to the same ids, confidence values,
overlay picture size, COCO results json."""
import dataclasses
import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError
from segdet.inference.writers import CocoResultsWriter, write_confidence, write_overlay, write_segmentation
from segdet.structures.cropped_masks import CroppedMasks
from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes
from tests.modeling.test_meta_arch import METADATA

IDS = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.int64)


@pytest.mark.parametrize("fmt", ["gray", "blue", "palette", "rgb"])
def test_segmentation_formats_read_back_to_the_same_ids(tmp_path, fmt):
    path = str(tmp_path / f"seg_{fmt}.png")
    write_segmentation(path, torch.from_numpy(IDS), METADATA, fmt)
    codec = LabelCodec(dataclasses.replace(METADATA, label_format=fmt))
    assert np.array_equal(codec.read(path), IDS)


def test_raw_pixel_values_of_each_format(tmp_path):
    write_segmentation(str(tmp_path / "g.png"), IDS, METADATA, "gray")
    assert np.array_equal(cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED), IDS)
    write_segmentation(str(tmp_path / "b.png"), IDS, METADATA, "blue")
    bgr = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(bgr[..., 0], IDS) and not bgr[..., 1:].any()  # DeepDIVA: class in the blue channel
    write_segmentation(str(tmp_path / "p.png"), IDS, METADATA, "palette")
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P" and np.array_equal(np.array(im), IDS)
        assert tuple(im.getpalette()[3:6]) == METADATA.class_colors[1]


def test_default_format_is_the_datasets_with_its_label_values(tmp_path):
    voc_like = Metadata(["bg", "cat", "void"], ignore_class_ids=[2], label_values=[0, 1, 255])
    write_segmentation(str(tmp_path / "v.png"), np.array([[0, 1, 2]]), voc_like)
    assert cv2.imread(str(tmp_path / "v.png"), cv2.IMREAD_UNCHANGED).tolist() == [[0, 1, 255]]
    blue = dataclasses.replace(METADATA, label_format="blue")
    write_segmentation(str(tmp_path / "d.png"), IDS, blue)
    assert np.array_equal(cv2.imread(str(tmp_path / "d.png"))[..., 0], IDS)
    # A dataset of instance-id masks has no class encoding: class ids in gray.
    masks = Metadata(["background", "person"], thing_class_ids=[1], label_format="instance_ids")
    write_segmentation(str(tmp_path / "i.png"), np.array([[0, 1]]), masks)
    assert cv2.imread(str(tmp_path / "i.png"), cv2.IMREAD_UNCHANGED).tolist() == [[0, 1]]
    with pytest.raises(ConfigError, match="instance_ids"):
        write_segmentation(str(tmp_path / "x.png"), IDS, METADATA, "instance_ids")


def test_confidence_formats(tmp_path):
    conf = np.array([[0.0, 0.5, 1.0], [0.25, 0.999, 0.1234567]], dtype=np.float32)
    write_confidence(str(tmp_path / "c.png"), torch.from_numpy(conf), "png")
    png = cv2.imread(str(tmp_path / "c.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.tolist() == [[0, 128, 255], [64, 255, 31]]  # round(255 * c)
    write_confidence(str(tmp_path / "c.tiff"), conf, "tiff")
    tiff = cv2.imread(str(tmp_path / "c.tiff"), cv2.IMREAD_UNCHANGED)
    assert tiff.dtype == np.float32 and np.array_equal(tiff, conf)
    write_confidence(str(tmp_path / "c.npy"), conf, "npy")
    assert np.array_equal(np.load(tmp_path / "c.npy"), conf)
    with pytest.raises(ConfigError, match="confidence format"):
        write_confidence(str(tmp_path / "c.bmp"), conf, "bmp")


def test_overlay_is_a_jpeg_of_the_image_size(tmp_path):
    image = np.full((48, 64, 3), 200, dtype=np.uint8)
    seg = np.zeros((48, 64), dtype=np.int64)
    seg[10:30, 10:40] = 1
    masks = torch.zeros(1, 48, 64, dtype=torch.bool)
    masks[0, 10:30, 10:40] = True
    output = {"segmentation_image": torch.from_numpy(seg),
              "instances": Instances((48, 64), pred_boxes=torch.tensor([[10.0, 10.0, 40.0, 30.0]]),
                                     scores=torch.tensor([0.9]), pred_classes=torch.tensor([1]), pred_masks=masks)}
    path = write_overlay(str(tmp_path / "o.jpg"), image, output, METADATA)
    with open(path, "rb") as f:
        assert f.read(3) == b"\xff\xd8\xff"  # JPEG signature
    picture = cv2.imread(path)
    assert picture.shape == (48, 64, 3)
    # Background stays close to the image; the orange region is tinted toward the class color.
    assert not np.allclose(picture[20, 25].astype(int), picture[45, 2].astype(int), atol=10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
def test_coco_results_json(tmp_path):
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[0, 1:3, 1:4] = True
    masks[1, 4:6, 5:8] = True
    instances = Instances((6, 8), pred_boxes=torch.tensor([[1.0, 1.0, 4.0, 3.0], [5.0, 4.0, 8.0, 6.0]]),
                          scores=torch.tensor([0.9, 0.4]), pred_classes=torch.tensor([1, 2]), pred_masks=masks)
    writer = CocoResultsWriter(str(tmp_path / "out" / "coco.json"))
    assert writer.add("img_a", instances) == 2
    assert writer.add("img_b", instances[:0]) == 0
    path = writer.write()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coco.json"]  # no temporary file left
    with open(path) as f:
        results = json.load(f)
    assert [r["image_id"] for r in results] == ["img_a", "img_a"]
    assert [r["category_id"] for r in results] == [1, 2]
    assert results[0]["bbox"] == [1.0, 1.0, 3.0, 2.0]  # XYWH
    assert results[1]["score"] == pytest.approx(0.4)
    decoded = mask_util.decode({"size": results[1]["segmentation"]["size"],
                                "counts": results[1]["segmentation"]["counts"].encode()})
    assert np.array_equal(decoded.astype(bool), masks[1].numpy())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
def test_cropped_masks_give_the_same_overlay_and_coco_results(tmp_path):
    # What tiled inference outputs: masks as crops. The files must be those of full-image masks.
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    seg = rng.integers(0, 3, (60, 80))
    masks = np.zeros((3, 60, 80), bool)
    masks[0, 5:20, 8:30] = True
    masks[1, 30:59, 40:80] = rng.random((29, 40)) < 0.8
    masks[2, 0:60, 0:3] = True
    fields = dict(pred_boxes=torch.from_numpy(mask_boxes(masks)), scores=torch.tensor([0.9, 0.7, 0.6]),
                  pred_classes=torch.tensor([1, 2, 1]))
    whole = Instances((60, 80), pred_masks=torch.from_numpy(masks), **fields)
    cropped = Instances((60, 80), pred_mask_crops=CroppedMasks.from_masks(masks), **fields)
    pictures = []
    for name, instances in (("whole", whole), ("cropped", cropped)):
        path = write_overlay(str(tmp_path / f"{name}.png"), image, {"segmentation_image": seg, "instances": instances},
                             METADATA)
        pictures.append(cv2.imread(path))
    assert np.array_equal(pictures[0], pictures[1])
    no_instances = write_overlay(str(tmp_path / "none.png"), image, {"segmentation_image": seg}, METADATA)
    assert not np.array_equal(cv2.imread(no_instances), pictures[1])  # the outlines are drawn
    writer = CocoResultsWriter(str(tmp_path / "coco.json"))
    writer.add("whole", whole)
    writer.add("cropped", cropped)
    with open(writer.write()) as f:
        results = json.load(f)
    assert [dict(r, image_id=0) for r in results[:3]] == [dict(r, image_id=0) for r in results[3:]]
    for r, mask in zip(results[3:], masks):
        assert np.array_equal(mask_util.decode(dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())),
                              mask)
