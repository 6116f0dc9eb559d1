"""Drawing functions of segdet.utils.visualizer, on tiny arrays whose expected pixels are known."""
import time

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from segdet.structures.boxes import BoxMode
from segdet.structures.instances import Instances
from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.visualization.legend import draw_legend, legend_entries, legend_image
from segdet.visualization.overlays import draw_ground_truth, draw_overlay, error_map, error_rate
from segdet.visualization.panels import side_by_side
from segdet.visualization.primitives import NOT_A_CLASS_COLOR, WRONG_COLOR, colorize

COLORS = [(10, 20, 30), (200, 40, 40), (40, 200, 40), (230, 230, 230)]
# 0 background, 1 orange, 2 lemon (things), 3 border (ignore).
MD = Metadata(["background", "orange", "lemon", "border"], class_colors=COLORS, ignore_class_ids=[3],
              thing_class_ids=[1, 2])
BLACK = (0, 0, 0)


def colors_of(rgb, mask):
    return {tuple(int(v) for v in p) for p in rgb[mask]}


def inner_boundary(mask):
    """Mask pixels with a 4- or 8-neighbour outside the mask (a 3x3 erosion removes them)."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (m > 0) & (eroded == 0)


def test_colorize_class_pixels_have_their_class_color():
    seg = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    out = colorize(seg, MD)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    for k in range(3):
        assert colors_of(out, seg == k) == {COLORS[k]}
    # Any integer type and a list of lists give the same picture.
    assert np.array_equal(colorize(seg.astype(np.int64), MD), out)
    assert np.array_equal(colorize(seg.tolist(), MD), out)


def test_colorize_hatches_ignore_class_with_alternating_stripes():
    seg = np.full((16, 16), 3, dtype=np.int32)
    seg[:, :4] = 0
    out = colorize(seg, MD)
    ignore = seg == 3
    assert colors_of(out, ignore) == {COLORS[3], BLACK}
    # Along a row the two colors alternate several times (stripes, not two blocks).
    row = [tuple(p) for p in out[5, 4:]]
    changes = sum(a != b for a, b in zip(row, row[1:]))
    assert changes >= 3
    assert colors_of(out, ~ignore) == {COLORS[0]}


def test_dark_ignore_class_stripes_are_not_black_on_black():
    md = Metadata(["a", "void"], class_colors=[(200, 0, 0), (0, 0, 0)], ignore_class_ids=[1])
    out = colorize(np.ones((8, 8), np.uint8), md)
    found = colors_of(out, np.ones((8, 8), bool))
    assert len(found) == 2 and BLACK in found


def test_colorize_marks_values_that_are_not_classes_with_a_checker():
    seg = np.zeros((12, 12), dtype=np.int64)
    seg[:6, :6] = 7      # beyond the classes
    seg[6:, 6:] = 255    # the ignore value of model inputs
    seg[:6, 6:] = -1
    out = colorize(seg, MD)
    other = seg != 0
    assert colors_of(out, other) == {NOT_A_CLASS_COLOR, BLACK}
    assert colors_of(out, ~other) == {COLORS[0]}


def test_colorize_rejects_non_integer_maps():
    with pytest.raises(DataError, match="integer class ids"):
        colorize(np.zeros((4, 4), np.float32), MD)
    with pytest.raises(DataError, match="HxW"):
        colorize(np.zeros((4, 4, 3), np.uint8), MD)


def test_legend_entries_name_ignored_and_non_class_values():
    entries = legend_entries(MD, [3, 0, 1], other_values=[9, 7])
    assert entries == [("background", COLORS[0], "solid"), ("orange", COLORS[1], "solid"),
                       ("border (ignored)", COLORS[3], "hatched"), ("not a class: 7, 9", NOT_A_CLASS_COLOR, "checker")]


def test_draw_legend_top_right_with_swatch_colors():
    image = np.full((120, 200, 3), 128, np.uint8)
    out = draw_legend(image, [("orange", (200, 40, 40)), ("border (ignored)", (230, 230, 230), "hatched")])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(image, np.full((120, 200, 3), 128, np.uint8))  # input untouched
    changed = (out != image).any(axis=2)
    assert changed[:, 100:].any() and not changed[60:, :100].any()  # top-right, nothing bottom-left
    assert (200, 40, 40) in colors_of(out, changed)
    assert (230, 230, 230) in colors_of(out, changed) and BLACK in colors_of(out, changed)


def test_legend_image_has_requested_height_and_colors():
    out = legend_image([("orange", (200, 40, 40)), ("lemon", (40, 200, 40))], 150)
    assert out.shape[0] == 150 and out.shape[2] == 3 and out.shape[1] > 20
    found = colors_of(out, np.ones(out.shape[:2], bool))
    assert (200, 40, 40) in found and (40, 200, 40) in found
    # Too many entries for one column: more columns, same height.
    many = legend_image([(f"class {i}", (i, 100, 100)) for i in range(30)], 150)
    assert many.shape[0] == 150 and many.shape[1] > out.shape[1]


def test_draw_overlay_blends_with_alpha():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    seg = rng.integers(0, 3, (10, 12)).astype(np.int64)
    assert np.array_equal(draw_overlay(image, seg, MD, alpha=0.0, draw_legend=False), image)
    assert np.array_equal(draw_overlay(image, seg, MD, alpha=1.0, draw_legend=False), colorize(seg, MD))
    half = draw_overlay(image, seg, MD, alpha=0.5, draw_legend=False).astype(int)
    expected = (image.astype(int) + colorize(seg, MD).astype(int)) / 2
    assert np.abs(half - expected).max() <= 1


def test_draw_overlay_outlines_instances_on_their_mask_boundary():
    h, w = 80, 200
    image = np.full((h, w, 3), 90, np.uint8)
    seg = np.zeros((h, w), np.int64)
    masks = np.zeros((2, h, w), bool)
    masks[0, 40:70, 20:60] = True   # orange, score 0.9: drawn
    masks[1, 45:60, 150:180] = True   # lemon, score 0.2: below the threshold
    seg[masks[0]] = 1
    instances = Instances((h, w), pred_masks=masks, pred_classes=np.array([1, 2]), scores=np.array([0.9, 0.2]),
                          pred_boxes=np.array([[20, 40, 60, 70], [150, 45, 180, 60]], np.float32))
    plain = draw_overlay(image, seg, MD, draw_legend=False)
    out = draw_overlay(image, seg, MD, instances=instances, score_threshold=0.5, draw_legend=False)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    changed = (out != plain).any(axis=2)
    # Below the box top (the label sits above it) only the outline changed: exactly the mask boundary.
    boundary = inner_boundary(masks[0])
    assert np.array_equal(changed[40:], boundary[40:])
    assert changed[:40].any()  # the label "orange 0.90" above the box
    assert not changed[:, 140:].any()  # the low-score lemon: no outline, no label


def test_draw_overlay_legend_lists_classes_present():
    image = np.zeros((200, 300, 3), np.uint8)
    seg = np.zeros((200, 300), np.int64)
    seg[150:, :100] = 3
    with_legend = draw_overlay(image, seg, MD)
    without = draw_overlay(image, seg, MD, draw_legend=False)
    diff = (with_legend != without).any(axis=2)
    assert diff[:100, 150:].any() and not diff[100:, :150].any()


def test_draw_overlay_size_mismatch_is_a_clear_error():
    with pytest.raises(DataError, match="12x10"):
        draw_overlay(np.zeros((8, 8, 3), np.uint8), np.zeros((10, 12), np.uint8), MD)


def test_draw_overlay_of_a_big_image_is_fast():
    # A per-pixel Python loop would take minutes here; the vectorized drawing a fraction of a second.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
    seg = np.zeros((2000, 2000), np.int64)
    seg[200:900, 300:1200] = 1
    seg[1000:1400] = 3
    masks = np.zeros((5, 2000, 2000), bool)
    for i in range(5):
        masks[i, 100 + 300 * i:300 + 300 * i, 100:600] = True
    instances = {"pred_masks": masks, "pred_classes": np.array([1, 2, 1, 2, 1]), "scores": np.full(5, 0.9),
                 "pred_boxes": np.array([[100, 100 + 300 * i, 600, 300 + 300 * i] for i in range(5)], float)}
    draw_overlay(image[:64, :64], seg[:64, :64], MD)  # first-call set-up of OpenCV
    start = time.perf_counter()
    out = draw_overlay(image, seg, MD, instances)
    elapsed = time.perf_counter() - start
    assert out.shape == (2000, 2000, 3)
    assert elapsed < 2.0, f"2000x2000 overlay took {elapsed:.2f} s"


def test_draw_ground_truth_outlines_polygon_and_rle_annotations():
    h, w = 60, 80
    image = np.full((h, w, 3), 100, np.uint8)
    seg = np.zeros((h, w), np.uint8)
    square = np.zeros((h, w), bool)
    square[30:50, 10:30] = True
    blob = np.zeros((h, w), bool)
    blob[35:55, 45:70] = True
    seg[square] = 1
    seg[blob] = 2
    rle = mask_util.encode(np.asfortranarray(blob.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    # pycocotools' polygon convention: pixel (x, y) is covered by [x, x+1); this polygon covers `square`.
    polygon = [[10, 30, 30, 30, 30, 50, 10, 50]]
    annotations = [
        {"category_id": 1, "segmentation": polygon, "bbox": [10, 30, 20, 20], "bbox_mode": BoxMode.XYWH_ABS},
        {"category_id": 2, "segmentation": rle, "bbox": [45, 35, 70, 55], "bbox_mode": BoxMode.XYXY_ABS},
    ]
    plain = draw_ground_truth(image, seg, MD, draw_legend=False)
    out = draw_ground_truth(image, seg, MD, annotations, draw_legend=False)
    assert out.shape == (h, w, 3)
    changed = (out != plain).any(axis=2)
    below_labels = np.zeros((h, w), bool)
    below_labels[35:] = True  # both box tops are at or above row 35; labels are above them
    outline = changed & below_labels
    drawn_mask = np.zeros((h, w), bool)
    drawn_mask[30:51, 10:31] = True  # cv2.fillPoly includes the polygon's far edge
    allowed = inner_boundary(drawn_mask) | inner_boundary(square) | inner_boundary(blob)
    assert outline.any() and not (outline & ~allowed).any()
    assert (outline & inner_boundary(blob)).sum() >= inner_boundary(blob)[35:].sum() - 2


def test_draw_ground_truth_enlarges_and_accepts_no_segmentation():
    image = np.zeros((20, 30, 3), np.uint8)
    ann = [{"category_id": 1, "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]], "bbox": [5, 5, 10, 10],
            "bbox_mode": 1, "iscrowd": 0}]
    out = draw_ground_truth(image, None, MD, ann, scale=3)
    assert out.shape == (60, 90, 3)
    assert (out != 0).any()


def test_draw_ground_truth_bad_annotation_names_the_problem():
    with pytest.raises(DataError, match="annotation 0.*polygons.*RLE"):
        draw_ground_truth(np.zeros((8, 8, 3), np.uint8), None, MD, [{"category_id": 1, "segmentation": 5}])
    rle = {"size": [4, 4], "counts": "0"}
    with pytest.raises(DataError, match="RLE size"):
        draw_ground_truth(np.zeros((8, 8, 3), np.uint8), None, MD, [{"category_id": 1, "segmentation": rle}])


def test_error_map_marks_exactly_the_wrong_pixels_red():
    gt = np.array([[0, 1, 2, 3],
                   [1, 1, 3, 0],
                   [2, 2, 2, 0]])
    pred = np.array([[0, 2, 2, 0],
                     [1, 0, 1, 0],
                     [2, 2, 1, 1]])
    image = np.random.default_rng(0).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    for img in (None, image):
        out = error_map(gt, pred, [3], image=img)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
        red = np.all(out == WRONG_COLOR, axis=2)
        expected = np.array([[0, 1, 0, 0],
                             [0, 1, 0, 0],
                             [0, 0, 1, 1]], bool)
        assert np.array_equal(red, expected)
        correct = (gt == pred)
        assert np.all(out[correct][:, 0] == out[correct][:, 1])  # gray
        assert np.all(out[correct][:, 1] == out[correct][:, 2])
    assert error_rate(gt, pred, [3]) == pytest.approx(4 / 10)  # 4 wrong of 10 evaluated


def test_error_map_hatches_ignore_pixels_neutrally():
    gt = np.full((12, 12), 3)
    gt[:, :2] = 0
    out = error_map(gt, np.zeros((12, 12), int), [3])
    found = colors_of(out, gt == 3)
    assert len(found) == 2 and all(c[0] == c[1] == c[2] for c in found)
    assert not np.all(out == WRONG_COLOR, axis=2).any()


def test_side_by_side_scales_panels_to_one_height():
    a = np.full((10, 10, 3), 200, np.uint8)
    b = np.full((20, 30), 50, np.uint8)  # gray is accepted
    out = side_by_side([("a", a), ("b", b)], gap=4)
    # a is scaled to 20x20; widths 20 + 30 plus three gaps.
    assert out.shape[1] == 20 + 30 + 3 * 4 and out.dtype == np.uint8
    top = out.shape[0] - 20 - 4  # title bar height
    assert top > 0
    assert np.all(out[top:top + 20, 4:24] == 200)
    assert np.all(out[top:top + 20, 28:58] == 50)
    # The title bar holds text (white pixels).
    assert np.any(np.all(out[:top] == 255, axis=2))


def test_side_by_side_needs_a_panel():
    with pytest.raises(DataError):
        side_by_side([])
