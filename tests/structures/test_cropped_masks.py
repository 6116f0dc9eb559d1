"""Masks held as crops: RLE at image coordinates, boxes, pasting and indexing, checked against
the same masks held whole (pycocotools called directly on the full-size mask)."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from segdet.errors import DataError
from segdet.structures.cropped_masks import CroppedMasks, has_instance_masks, instance_mask_crops
from segdet.structures.instances import Instances
from segdet.structures.masks import crop_to_rle, mask_boxes


def coco_rle(full):
    rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def test_crop_rle_equals_pycocotools_on_the_full_mask():
    rng = np.random.default_rng(0)
    cases = 0
    for _ in range(400):
        height, width = rng.integers(1, 14, 2)
        h, w = rng.integers(0, height + 1), rng.integers(0, width + 1)
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        crop = rng.random((h, w)) < rng.random()
        full = np.zeros((height, width), bool)
        full[top:top + h, left:left + w] = crop
        assert crop_to_rle(crop, top, left, height, width) == coco_rle(full)
        cases += h == height and crop.any()  # full-height crops: runs continue into the next column
    assert cases > 10
    # A mask ending on the image's last pixel, and one starting on its first.
    full = np.zeros((4, 3), bool)
    full[2:, 2] = True
    assert crop_to_rle(full[2:, 2:], 2, 2, 4, 3) == coco_rle(full)
    assert crop_to_rle(np.ones((1, 1), bool), 0, 0, 4, 3) == coco_rle(np.pad(np.ones((1, 1), bool), ((0, 3), (0, 2))))
    with pytest.raises(DataError, match="does not fit a 4x3 image"):
        crop_to_rle(np.ones((2, 2), bool), 3, 0, 4, 3)


def masks_of(height=20, width=30):
    masks = np.zeros((4, height, width), bool)
    masks[0, 2:7, 3:9] = True
    masks[0, 4, 3] = False
    masks[1, 0:20, 29] = True  # full height, last column
    masks[2, 10, 10] = True
    return masks  # mask 3 is empty


def test_from_masks_trims_each_mask_to_its_extent():
    masks = masks_of()
    crops = CroppedMasks.from_masks(torch.from_numpy(masks))
    assert len(crops) == 4 and crops.image_size == (20, 30)
    assert [crops.region(k) for k in range(3)] == [(2, 3, 7, 9), (0, 29, 20, 30), (10, 10, 11, 11)]
    assert crops.crop(0).shape == (5, 6) and crops.crop(3).shape == (0, 0)
    assert np.array_equal(crops.boxes()[:3], mask_boxes(masks[:3]))
    assert crops.areas().tolist() == [int(m.sum()) for m in masks]
    for k in range(4):
        assert np.array_equal(crops.paste(k), masks[k])
        assert np.array_equal(crops.paste(k, (1, 2, 6, 29)), masks[k][1:6, 2:29])
    assert crops.rles() == [coco_rle(m) for m in masks]
    assert np.array_equal(crops.dense(), masks) and crops.dense().dtype == bool
    assert crops.nbytes < masks[:1].nbytes  # the point of it


def test_indexing_as_instances_does_and_numpy_keeps_the_crops():
    masks = masks_of()
    crops = CroppedMasks.from_masks(masks)
    for index, expected in ((slice(1, 3), [1, 2]), (np.array([2, 0]), [2, 0]), (torch.tensor([3, 1]), [3, 1]),
                            (np.array([True, False, False, True]), [0, 3]), (torch.tensor([False, True, True, False]), [1, 2]),
                            (2, [2])):
        picked = crops[index]
        assert [np.array_equal(picked.paste(i), masks[k]) for i, k in enumerate(expected)] == [True] * len(expected)
        assert len(picked) == len(expected)
    instances = Instances((20, 30), scores=torch.tensor([0.9, 0.2, 0.7, 0.4]), pred_mask_crops=crops)
    kept = instances[instances.scores > 0.5].numpy()
    assert isinstance(kept.pred_mask_crops, CroppedMasks) and isinstance(kept.scores, np.ndarray)
    assert np.array_equal(kept.pred_mask_crops.paste(1), masks[2])


def test_instance_mask_crops_reads_either_field():
    masks = masks_of()
    whole = Instances((20, 30), pred_masks=torch.from_numpy(masks))
    cropped = Instances((20, 30), pred_mask_crops=CroppedMasks.from_masks(masks))
    for instances in (whole, cropped):
        assert has_instance_masks(instances)
        crops = instance_mask_crops(instances)
        assert all(np.array_equal(crops.paste(k), masks[k]) for k in range(4))
    scores = Instances((20, 30), pred_masks=masks.astype(np.float32) * 0.6)  # mask probabilities: >= 0.5
    assert np.array_equal(instance_mask_crops(scores).paste(0), masks[0])
    none = Instances((20, 30), scores=torch.ones(2))
    assert instance_mask_crops(none) is None and not has_instance_masks(none)


def test_crops_that_do_not_fit_the_image_are_named():
    with pytest.raises(DataError, match="mask crop 1 of 3x3 at row 18, column 0 does not fit the 20x30 image"):
        CroppedMasks((20, 30), [np.ones((2, 2), bool), np.ones((3, 3), bool)], [[0, 0], [18, 0]])
    with pytest.raises(DataError, match="2 mask crops with 1 origins"):
        CroppedMasks((20, 30), [np.ones((2, 2), bool)] * 2, [[0, 0]])
    with pytest.raises(DataError, match="expected N x H x W"):
        CroppedMasks.from_masks(np.ones((3, 3), bool))
