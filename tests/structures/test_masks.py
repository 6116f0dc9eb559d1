"""One rule for instance masks of annotations, checked against pycocotools called directly."""
import numpy as np
import pycocotools.mask as mask_util
import pytest

from segdet.errors import DataError
from segdet.structures.masks import mask_boxes, masks_to_rles, rle_box, segmentation_to_mask, segmentation_to_rle

# pycocotools' decode trips numpy 2's copy-keyword deprecation (harmless).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 12, 16
SQUARE = [2.0, 2.0, 8.0, 2.0, 8.0, 6.0, 2.0, 6.0]  # x0 y0 x1 y1 ... a 6x4 rectangle


def coco_decode(polygons):
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygons, H, W))).astype(bool)


def test_polygons_shorter_than_three_points_are_dropped():
    two_points = [10.0, 10.0, 12.0, 11.0]
    odd = [1.0, 1.0, 3.0, 1.0, 3.0]
    mask = segmentation_to_mask([SQUARE, two_points, odd], H, W)
    assert np.array_equal(mask, coco_decode([SQUARE]))
    with pytest.raises(DataError, match="annotation 3: no polygon with at least 3 points"):
        segmentation_to_mask([two_points], H, W, "annotation 3")


def test_rle_forms_agree_and_a_wrong_size_is_named():
    mask = coco_decode([SQUARE])
    compressed = masks_to_rles(mask[None])[0]
    assert isinstance(compressed["counts"], str)
    uncompressed = {"size": [H, W], "counts": [int(v) for v in _runs(mask)]}
    for rle in (compressed, uncompressed, dict(compressed, counts=compressed["counts"].encode())):
        assert np.array_equal(segmentation_to_mask(rle, H, W), mask)
    with pytest.raises(DataError, match=r"RLE size \[12, 16\] differs from the image size \[10, 16\]"):
        segmentation_to_rle(compressed, 10, W)
    with pytest.raises(DataError, match="must be polygons"):
        segmentation_to_rle("not a mask", H, W)


def _runs(mask):
    """Column-major run lengths starting with background, as COCO's uncompressed RLE."""
    flat = mask.T.ravel().astype(np.int64)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes]))


def test_boxes_are_one_past_the_last_pixel():
    masks = np.zeros((3, H, W), bool)
    masks[0, 2:6, 3:9] = True
    masks[1, 11, 15] = True
    boxes = mask_boxes(masks)
    assert boxes.tolist() == [[3, 2, 9, 6], [15, 11, 16, 12], [0, 0, 0, 0]]
    assert rle_box(masks_to_rles(masks[:1])[0]) == [3.0, 2.0, 6.0, 4.0]
