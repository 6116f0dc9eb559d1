"""The stitching rule of tiled instances (segdet.inference.tile_instances) on hand-made detections:
each tile "detects" the part of an object it sees, as a detector does at a tile border."""
import numpy as np
import pytest
import torch

from segdet.errors import ConfigError, DataError
from segdet.inference.tile_instances import InstanceStitcher, band_iou, clearance
from segdet.structures.cropped_masks import CroppedMasks, instance_mask_crops
from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes

H, W = 40, 60
A, B = (0, 0, 40, 40), (0, 20, 40, 60)  # two tiles sharing columns 20..39


def rect(y0, x0, y1, x1, height=H, width=W):
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def seen(window, objects, cropped=True):
    """A tile's detections of (full-image mask, class, score) objects: the visible part of each, in
    the tile's coordinates, boxed by that part (objects the tile does not see are left out)."""
    y0, x0, y1, x1 = window
    parts = [(m[y0:y1, x0:x1], c, s) for m, c, s in objects if m[y0:y1, x0:x1].any()]
    masks = np.stack([p for p, _, _ in parts]) if parts else np.zeros((0, y1 - y0, x1 - x0), bool)
    fields = {"pred_mask_crops": CroppedMasks.from_masks(masks)} if cropped else {"pred_masks": torch.from_numpy(masks)}
    return Instances((y1 - y0, x1 - x0), pred_boxes=torch.from_numpy(mask_boxes(masks)),
                     scores=torch.tensor([s for _, _, s in parts], dtype=torch.float32),
                     pred_classes=torch.tensor([c for _, c, _ in parts], dtype=torch.int64), **fields)


def stitch(tiles, image_size=(H, W), **kwargs):
    stitcher = InstanceStitcher(image_size, **kwargs)
    for window, objects in tiles:
        stitcher.add_tile(window, seen(window, objects))
    return stitcher.result()


def as_list(instances):
    crops = instance_mask_crops(instances)
    return [(crops.paste(k), int(instances.pred_classes[k]), round(float(instances.scores[k]), 4),
             instances.pred_boxes[k].tolist()) for k in range(len(instances))]


def test_an_object_cut_by_one_tile_is_taken_from_the_tile_that_sees_it_whole():
    obj = rect(10, 32, 20, 48)  # tile A ends at column 40: it sees columns 32..39
    out = as_list(stitch([(A, [(obj, 1, 0.95)]), (B, [(obj, 1, 0.8)])]))
    assert len(out) == 1
    mask, class_id, score, box = out[0]
    assert np.array_equal(mask, obj) and class_id == 1 and score == 0.8  # B's, not A's higher score
    assert box == [32.0, 10.0, 48.0, 20.0]  # in image coordinates


def test_an_object_both_tiles_see_whole_is_kept_once_from_the_better_view():
    obj = rect(5, 25, 15, 34)  # clearance 40 - 34 = 6 in A, 25 - 20 = 5 in B
    assert clearance(np.array([25, 5, 34, 15]), A, (H, W)) == 6 and clearance(np.array([25, 5, 34, 15]), B, (H, W)) == 5
    thinner = obj.copy()
    thinner[5:15, 33] = False  # B's mask differs (its clearance stays 5), so that the result shows whose it is
    out = as_list(stitch([(A, [(obj, 2, 0.6)]), (B, [(thinner, 2, 0.9)])]))
    assert len(out) == 1 and out[0][2] == 0.9 and np.array_equal(out[0][0], thinner)  # the higher score
    out = as_list(stitch([(A, [(obj, 2, 0.9)]), (B, [(thinner, 2, 0.9)])]))
    assert len(out) == 1 and np.array_equal(out[0][0], obj)  # equal scores: the larger clearance


def test_an_object_no_tile_sees_whole_is_the_union_of_its_parts():
    obj = rect(8, 10, 30, 55)
    obj[8:12, 10:14] = False  # not a plain rectangle
    out = as_list(stitch([(A, [(obj, 1, 0.7)]), (B, [(obj, 1, 0.85)])]))
    assert len(out) == 1
    mask, _, score, box = out[0]
    assert np.array_equal(mask, obj) and score == 0.85 and box == [10.0, 8.0, 55.0, 30.0]


def test_three_tiles_in_a_row_make_one_instance():
    width = 80
    windows = [(0, 0, 40, 40), (0, 20, 40, 60), (0, 40, 40, 80)]
    obj = rect(5, 3, 25, 77, width=width)
    out = as_list(stitch([(w, [(obj, 3, 0.5 + 0.1 * i)]) for i, w in enumerate(windows)], (H, width)))
    assert len(out) == 1 and np.array_equal(out[0][0], obj) and out[0][2] == 0.7


def test_neighbours_in_the_band_and_other_classes_stay_apart():
    left, right = rect(10, 22, 20, 29), rect(10, 29, 20, 36)  # side by side, both in the shared columns
    out = as_list(stitch([(A, [(left, 1, 0.9), (right, 1, 0.8)]), (B, [(left, 1, 0.9), (right, 1, 0.8)])]))
    assert sorted(m.sum() for m, *_ in out) == [70, 70] and len(out) == 2
    assert {tuple(np.flatnonzero(m.any(0))[[0, -1]]) for m, *_ in out} == {(22, 28), (29, 35)}
    # B boxes the two as one blob (IoU 0.5 with each, in the band): A's two objects stay two, as a
    # group holds one detection per tile.
    out = as_list(stitch([(A, [(left, 1, 0.9), (right, 1, 0.8)]), (B, [(left | right, 1, 0.95)])]))
    assert len(out) == 2 and sum(np.array_equal(m, right) for m, *_ in out) == 1
    # One object that the two tiles call different classes: two instances, as whole-image inference
    # keeps one detection per class.
    obj = rect(10, 24, 20, 36)
    out = as_list(stitch([(A, [(obj, 1, 0.9)]), (B, [(obj, 2, 0.7)])]))
    assert sorted(c for _, c, _, _ in out) == [1, 2]


def test_a_second_partial_box_of_a_cut_object_is_dropped():
    obj = rect(10, 30, 26, 50)
    fragment = rect(10, 34, 14, 50)  # the detector's extra box on the cut part: A sees columns 34..39
    out = as_list(stitch([(A, [(obj, 1, 0.9), (fragment, 1, 0.6)]), (B, [(obj, 1, 0.9)])]))
    assert len(out) == 1 and np.array_equal(out[0][0], obj)
    # A tile's two detections never become one group, even when both match the neighbour's object.
    half = rect(10, 30, 18, 50)
    out = as_list(stitch([(A, [(obj, 1, 0.9), (half, 1, 0.8)]), (B, [(obj, 1, 0.9)])]))
    assert len(out) == 1 and np.array_equal(out[0][0], obj)


def test_a_partial_view_that_no_other_tile_holds_is_kept():
    obj = rect(8, 10, 30, 55)  # B (columns 20..59) does not hold its part in A (columns 10..39)
    out = as_list(stitch([(A, [(obj, 1, 0.7)]), (B, [])]))
    assert len(out) == 1 and np.array_equal(out[0][0], rect(8, 10, 30, 40))
    # Without overlap nothing can be compared: the two parts stay two instances.
    left, right = (0, 0, 40, 30), (0, 30, 40, 60)
    out = as_list(stitch([(left, [(obj, 1, 0.7)]), (right, [(obj, 1, 0.7)])]))
    assert len(out) == 2


def test_band_iou_counts_only_where_both_tiles_see():
    stitcher = InstanceStitcher((H, W))
    obj = rect(10, 32, 20, 48)
    stitcher.add_tile(A, seen(A, [(obj, 1, 0.9)]))
    stitcher.add_tile(B, seen(B, [(obj, 1, 0.9)]))
    a, b = stitcher._live.values()
    # Over the whole image the cut part (80 px) and the whole object (160 px) have IoU 0.5;
    # in the band (columns 20..39) they are the same 80 pixels.
    assert band_iou(a, b, (0, 20, 40, 40)) == 1.0
    assert band_iou(a, b, (0, 0, 40, 60)) == 0.5
    assert band_iou(a, b, (0, 0, 40, 20)) == 0.0


def test_rows_are_resolved_as_the_tiles_move_down_with_the_same_result():
    height = 80
    windows = [(y, x, y + 40, x + 40) for y in (0, 20, 40) for x in (0, 20)]
    rng = np.random.default_rng(5)
    objects = [(rect(y, x, y + 9, x + 9, height, W), int(rng.integers(1, 3)), float(rng.uniform(0.3, 1)))
               for y, x in ((2, 3), (15, 25), (33, 5), (36, 48), (60, 30), (70, 50))]
    objects.append((rect(10, 5, 70, 15, height, W), 1, 0.99))  # taller than a tile: cut in every row
    expected = [m for m, _, _ in objects]

    stitcher = InstanceStitcher((height, W))
    open_after_rows = []
    for row in (0, 20, 40):
        for w in windows:
            if w[0] == row:
                stitcher.add_tile(w, seen(w, objects))
        stitcher.finish_above(row + 20 if row < 40 else height)
        open_after_rows.append(stitcher.num_open)
    early = as_list(stitcher.result())
    late = as_list(stitch([(w, objects) for w in windows], (height, W)))
    assert len(early) == len(objects) == len(late)
    for got in (early, late):
        assert all(any(np.array_equal(m, e) for m, *_ in got) for e in expected)
    # After the first row only the detections reaching row 20 or below are held; at the end none.
    assert 0 < open_after_rows[0] < sum(len(seen(w, objects)) for w in windows if w[0] == 0)
    assert open_after_rows[-1] == 0


def test_full_tile_masks_are_read_as_well():
    obj = rect(10, 32, 20, 48)
    stitcher = InstanceStitcher((H, W))
    stitcher.add_tile(A, seen(A, [(obj, 1, 0.95)], cropped=False))
    stitcher.add_tile(B, seen(B, [(obj, 1, 0.8)], cropped=False))
    out = stitcher.result()
    assert len(out) == 1 and np.array_equal(out.pred_mask_crops.paste(0), obj)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="match IoU"):
        InstanceStitcher((H, W), match_iou=0)
    with pytest.raises(ConfigError, match="edge margin"):
        InstanceStitcher((H, W), edge_margin=-1)


def test_detections_without_masks_are_named():
    boxes_only = Instances((40, 40), pred_boxes=torch.tensor([[1.0, 1.0, 5.0, 5.0]]), scores=torch.tensor([0.9]),
                           pred_classes=torch.tensor([1]))
    with pytest.raises(DataError, match=r"tile \(0, 20, 40, 60\): detections without masks"):
        InstanceStitcher((H, W)).add_tile(B, boxes_only)
