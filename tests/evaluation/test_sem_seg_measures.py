"""Semantic measures against hand-computed values and a straightforward per-class loop."""
import numpy as np
import pytest

from segdet.errors import DataError
from segdet.evaluation.sem_seg_measures import (
    boundary_counts,
    boundary_iou_measures,
    confusion_matrix,
    detectron2_keys,
    inner_boundary,
    segmentation_measures,
)

# HALCON's example classes: 0 background, 1 orange, 2 lemon, 3 apple, 4 border (ignore).
NAMES = ["background", "orange", "lemon", "apple", "border"]
HALCON_GT = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 4, 4, 4, 4, 0],
    [0, 4, 1, 1, 4, 0],
    [0, 4, 1, 1, 4, 0],
    [0, 4, 4, 4, 4, 0],
    [2, 2, 2, 0, 0, 0],
])
HALCON_PRED = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 0, 3, 0],
    [0, 0, 0, 0, 0, 0],
    [2, 2, 0, 3, 0, 0],
])


def measures(gt, pred, n, ignore):
    return segmentation_measures(confusion_matrix(gt, pred, n, ignore), ignore)


def loop_reference(gt, pred, n, ignore):
    """Per-class definitions written out directly, one class at a time."""
    valid = ~np.isin(gt, list(ignore))
    total = valid.sum()
    acc, iou = [], []
    for c in range(n):
        g = (gt == c) & valid
        p = (pred == c) & valid
        if c in ignore or g.sum() == 0:
            acc.append(-1.0)
            iou.append(-1.0)
            continue
        acc.append((g & p).sum() / g.sum())
        iou.append((g & p).sum() / (g | p).sum())
    present = [c for c in range(n) if acc[c] >= 0]
    return {
        "pixel_accuracy": (gt == pred)[valid].sum() / total,
        "class_pixel_accuracy": acc,
        "mean_accuracy": np.mean([acc[c] for c in present]),
        "class_iou": iou,
        "mean_iou": np.mean([iou[c] for c in present]),
        "frequency_weighted_iou": sum(((gt == c) & valid).sum() / total * iou[c] for c in present),
    }


def assert_same(result, expected):
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


def test_halcon_like_case_with_border_ignored_by_hand():
    conf = confusion_matrix(HALCON_GT, HALCON_PRED, 5, [4])
    # Counted by hand over the 24 non-border pixels; border pixels (whatever their
    # prediction, even apple at row 3) are not counted at all.
    expected_conf = np.array([
        [16, 0, 0, 1, 0],
        [1, 3, 0, 0, 0],
        [1, 0, 2, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(conf, expected_conf)
    m = segmentation_measures(conf, [4])
    assert m["pixel_confusion_matrix"] == expected_conf.tolist()
    assert all(isinstance(v, int) for row in m["pixel_confusion_matrix"] for v in row)
    assert m["pixel_accuracy"] == pytest.approx(21 / 24)
    # apple: predicted but absent from the ground truth -> -1; border: ignore -> -1
    assert m["class_pixel_accuracy"] == pytest.approx([16 / 17, 3 / 4, 2 / 3, -1, -1])
    assert m["mean_accuracy"] == pytest.approx((16 / 17 + 3 / 4 + 2 / 3) / 3)
    # orange predicted on border pixels is not a false positive: IoU 3 / 4.
    assert m["class_iou"] == pytest.approx([16 / 19, 3 / 4, 2 / 3, -1, -1])
    assert m["mean_iou"] == pytest.approx((16 / 19 + 3 / 4 + 2 / 3) / 3)
    assert m["frequency_weighted_iou"] == pytest.approx((17 * 16 / 19 + 4 * 3 / 4 + 3 * 2 / 3) / 24)


def test_4x4_case_by_hand_without_ignore():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 2, 1, 0], [2, 2, 2, 2]])
    m = measures(gt, pred, 3, [])
    # class 0: 6 gt, 4 right, pred 5 -> IoU 4/7; class 1: 6 gt, 5 right, pred 6 -> 5/7;
    # class 2: 4 gt, 4 right, pred 5 -> 4/5.
    assert m["pixel_accuracy"] == pytest.approx(13 / 16)
    assert m["class_pixel_accuracy"] == pytest.approx([4 / 6, 5 / 6, 1.0])
    assert m["class_iou"] == pytest.approx([4 / 7, 5 / 7, 4 / 5])
    assert m["mean_iou"] == pytest.approx((4 / 7 + 5 / 7 + 4 / 5) / 3)
    assert m["mean_accuracy"] == pytest.approx((4 / 6 + 5 / 6 + 1) / 3)
    assert m["frequency_weighted_iou"] == pytest.approx((6 * 4 / 7 + 6 * 5 / 7 + 4 * 4 / 5) / 16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_maps_match_per_class_loop_with_several_ignore_classes(seed):
    rng = np.random.default_rng(seed)
    n, ignore = 7, [2, 5]
    gt = rng.choice([0, 1, 2, 3, 5, 6], size=(23, 31))  # class 4 absent from the ground truth
    pred = rng.choice([0, 1, 3, 4, 6], size=gt.shape)  # never an ignore class
    # Make the prediction partly right so that values are not all tiny.
    right = rng.random(gt.shape) < 0.5
    pred[right & ~np.isin(gt, ignore)] = gt[right & ~np.isin(gt, ignore)]
    m = measures(gt, pred, n, ignore)
    expected = loop_reference(gt, pred, n, ignore)
    assert_same(m, expected)
    assert m["class_iou"][4] == -1 and m["class_pixel_accuracy"][4] == -1
    assert m["class_iou"][2] == m["class_iou"][5] == -1


def test_accumulating_images_equals_one_concatenated_image():
    rng = np.random.default_rng(3)
    images = [(rng.integers(0, 5, (h, w)), rng.integers(0, 4, (h, w))) for h, w in [(5, 7), (9, 3), (4, 4)]]
    total = sum(confusion_matrix(g, p, 5, [4]) for g, p in images)
    gt_all = np.concatenate([g.ravel() for g, _ in images])
    pred_all = np.concatenate([p.ravel() for _, p in images])
    np.testing.assert_array_equal(total, confusion_matrix(gt_all, pred_all, 5, [4]))
    assert_same(segmentation_measures(total, [4]), loop_reference(gt_all, pred_all, 5, [4]))


def test_empty_prediction_everything_background():
    gt = HALCON_GT
    pred = np.zeros_like(gt)
    m = measures(gt, pred, 5, [4])
    assert m["pixel_accuracy"] == pytest.approx(17 / 24)
    assert m["class_pixel_accuracy"] == pytest.approx([1.0, 0.0, 0.0, -1, -1])
    assert m["class_iou"] == pytest.approx([17 / 24, 0.0, 0.0, -1, -1])
    assert m["mean_iou"] == pytest.approx(17 / 24 / 3)
    assert m["frequency_weighted_iou"] == pytest.approx(17 / 24 * 17 / 24)


def test_perfect_prediction_gives_one_everywhere_but_absent_classes():
    pred = np.where(HALCON_GT == 4, 1, HALCON_GT)  # any class on border pixels
    m = measures(HALCON_GT, pred, 5, [4])
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert m[key] == 1.0
    assert m["class_iou"] == [1.0, 1.0, 1.0, -1.0, -1.0]
    assert m["class_pixel_accuracy"] == [1.0, 1.0, 1.0, -1.0, -1.0]


def test_detectron2_keys_are_percentages():
    m = measures(HALCON_GT, HALCON_PRED, 5, [4])
    d2 = detectron2_keys(m, NAMES)
    assert d2["mIoU"] == pytest.approx(100 * (16 / 19 + 3 / 4 + 2 / 3) / 3)
    assert d2["fwIoU"] == pytest.approx(100 * m["frequency_weighted_iou"])
    assert d2["mACC"] == pytest.approx(100 * (16 / 17 + 3 / 4 + 2 / 3) / 3)
    assert d2["pACC"] == pytest.approx(100 * 21 / 24)
    assert d2["IoU-orange"] == pytest.approx(75.0)
    assert d2["ACC-lemon"] == pytest.approx(100 * 2 / 3)
    assert d2["IoU-apple"] == -1 and d2["IoU-border"] == -1
    assert "BoundaryIoU" not in d2


def test_only_ignore_pixels_gives_undefined_measures():
    gt = np.full((3, 3), 4)
    m = measures(gt, np.zeros_like(gt), 5, [4])
    assert m["pixel_accuracy"] == m["mean_iou"] == m["mean_accuracy"] == m["frequency_weighted_iou"] == -1


def test_bad_inputs_are_clear_errors():
    gt = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(DataError, match="size"):
        confusion_matrix(gt, np.zeros((2, 3)), 3)
    with pytest.raises(DataError, match=r"prediction holds value\(s\) \[7\]"):
        confusion_matrix(gt, np.array([[0, 7], [1, 1]]), 3)
    with pytest.raises(DataError, match=r"ignore class id\(s\) \[2\]"):
        confusion_matrix(gt, np.array([[0, 2], [1, 1]]), 3, ignore_class_ids=[2])
    # Negative values in every signed width, and 3 = N, are found in either array.
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        with pytest.raises(DataError, match=r"prediction holds value\(s\) \[-1\]"):
            confusion_matrix(gt, np.array([[0, -1], [1, 1]], dtype=dtype), 3)
        with pytest.raises(DataError, match=r"ground truth holds value\(s\) \[-2, 3\]"):
            confusion_matrix(np.array([[0, -2], [3, 1]], dtype=dtype), np.zeros((2, 2), dtype=np.int64), 3)
    with pytest.raises(DataError, match=r"prediction holds value\(s\) \[-1\]"):
        confusion_matrix(gt, np.array([[0.0, -1.0], [1.0, 1.0]]), 3)
    # Other tools may predict an ignore class: then it counts as a wrong prediction.
    conf = confusion_matrix(gt, np.array([[0, 2], [1, 1]]), 3, [2], allow_predicted_ignore=True)
    assert conf.tolist() == [[1, 2, 1], [0, 0, 0], [0, 0, 0]]


# ---------------------------------------------------------------------------
# Boundary IoU
# ---------------------------------------------------------------------------

def test_boundary_iou_hand_case():
    gt = np.zeros((8, 8), dtype=np.uint8)
    gt[2:6, 2:6] = 1
    pred = np.zeros_like(gt)
    pred[2:6, 3:7] = 1  # shifted right by one pixel
    inter, union = boundary_counts(gt, pred, 2, [], width=1)
    # Class 1: each square's band is its 12 outer pixels; they share the 3 top and
    # the 3 bottom pixels of columns 3-5: 6 / (12 + 12 - 6).
    # Class 0: each band is the 20-pixel ring around its square; they share 5 pixels
    # of the ring's top row and 5 of its bottom row: 10 / (20 + 20 - 10).
    assert inter.tolist() == [10, 6]
    assert union.tolist() == [30, 18]
    b = boundary_iou_measures(inter, union, np.array([True, True]))
    assert b["class_boundary_iou"] == pytest.approx([1 / 3, 1 / 3])
    assert b["boundary_iou"] == pytest.approx(1 / 3)


def test_boundary_band_width_two_and_frame_is_not_a_boundary():
    mask = np.zeros((7, 9), dtype=bool)
    mask[:, :5] = True  # touches the frame on three sides
    band = inner_boundary(mask, 2)
    expected = np.zeros_like(mask)
    expected[:, 3:5] = True  # only the two columns next to the right edge of the region
    np.testing.assert_array_equal(band, expected)


def test_boundary_iou_ignores_ignore_pixels_and_absent_classes():
    gt = HALCON_GT
    pred = np.where(gt == 4, 1, gt)  # right on every evaluated pixel
    inter, union = boundary_counts(gt, pred, 5, [4], width=1)
    present = confusion_matrix(gt, pred, 5, [4]).sum(axis=1) > 0
    b = boundary_iou_measures(inter, union, present)
    assert b["class_boundary_iou"] == [1.0, 1.0, 1.0, -1.0, -1.0]
    assert b["boundary_iou"] == 1.0


def _band_reference(mask, d):
    """Pixels of mask with a non-mask pixel of the image within chessboard distance d."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                window = mask[max(0, y - d):y + d + 1, max(0, x - d):x + d + 1]
                out[y, x] = not window.all()
    return out


def test_boundary_counts_match_a_pixel_loop_on_random_maps():
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 4, (12, 14))
    gt[3:9, 4:10] = 1  # a larger region so that bands differ from whole regions
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 3, gt.shape))
    ignore = [3]
    inter, union = boundary_counts(gt, pred, 4, ignore, width=1)
    valid = gt != 3
    for c in range(3):
        g = _band_reference(gt == c, 1)
        p = _band_reference((pred == c) & valid, 1)
        assert inter[c] == (g & p).sum()
        assert union[c] == (g | p).sum()
    assert inter[3] == union[3] == 0
