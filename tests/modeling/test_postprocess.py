import math

import numpy as np
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from segdet.structures.cropped_masks import CroppedMasks
from segdet.structures.instances import Instances
from segdet.modeling.postprocess import (
    class_score_offsets,
    class_scores,
    combine_semantic_and_instances,
    detector_postprocess,
    ignore_class_mask,
    paste_mask_crops,
    segmentation_from_scores,
)


def test_segmentation_matches_argmax_and_skips_ignore_classes():
    torch.manual_seed(0)
    scores = torch.rand(5, 7, 9)
    labels, conf = segmentation_from_scores(scores)
    assert torch.equal(labels, scores.argmax(0))
    assert torch.equal(conf, scores.max(0).values)
    masked = scores.clone()
    masked[[1, 3]] = -1
    labels, conf = segmentation_from_scores(scores, ignore_class_ids=[1, 3])
    assert torch.equal(labels, masked.argmax(0))
    assert not ((labels == 1) | (labels == 3)).any()


def test_ties_keep_lower_class_id():
    scores = torch.full((3, 2, 2), 0.5)
    labels, _ = segmentation_from_scores(scores)
    assert (labels == 0).all()
    scores = torch.full((5, 2, 2), 0.5)
    scores[3] = 0.9  # class 3 is best but ignored: the tie between 1, 2 and 4 goes to 1
    scores[0] = 0.1
    labels, conf = segmentation_from_scores(scores, ignore_class_ids=[3])
    assert (labels == 1).all() and (conf == 0.5).all()


def test_scores_are_probabilities_with_zero_for_ignore_classes():
    logits = torch.tensor([[[1.0]], [[2.0]], [[9.0]]])
    scores = class_scores(logits, ignore_class_mask(3, [2]))
    e1, e2 = torch.exp(torch.tensor(1.0)), torch.exp(torch.tensor(2.0))
    assert torch.allclose(scores[:, 0, 0], torch.stack([e1 / (e1 + e2), e2 / (e1 + e2), torch.tensor(0.0)]))
    labels, conf = segmentation_from_scores(scores, [2])
    assert labels.item() == 1 and abs(conf.item() - (e2 / (e1 + e2)).item()) < 1e-6
    assert ignore_class_mask(3, []) is None  # nothing to mask: the logits are not copied
    assert torch.equal(class_scores(logits, ignore_class_mask(3, [])), torch.softmax(logits, dim=0))


def test_segmentation_of_a_batch_equals_each_image_alone():
    torch.manual_seed(1)
    scores = torch.rand(2, 4, 5, 6)
    labels, conf = segmentation_from_scores(scores, [2])
    for i in range(2):
        one_labels, one_conf = segmentation_from_scores(scores[i], [2])
        assert torch.equal(labels[i], one_labels) and torch.equal(conf[i], one_conf)


def test_class_weight_correction_offsets_by_hand():
    weights = torch.tensor([1.0, 4.0, 0.5, 0.0])
    offsets = class_score_offsets(weights, 0.5)
    # 0.5 * log(w); the weight-0 (ignore) class gets no offset.
    assert torch.allclose(offsets.flatten(), torch.tensor([0.0, 0.5 * math.log(4.0), 0.5 * math.log(0.5), 0.0]))
    assert class_score_offsets(weights, 0.0) is None
    # Scores divided by w ** 0.5 and renormalized, the ignore class at 0.
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(4, 1, 1)
    scores = class_scores(logits, ignore_class_mask(4, [3]), offsets).flatten()
    raw = torch.exp(torch.tensor([0.0, 1.0, 2.0])) / torch.sqrt(weights[:3])
    assert torch.allclose(scores, torch.cat([raw / raw.sum(), torch.zeros(1)]))


def test_detector_postprocess_scales_boxes_and_maps_labels_to_class_ids():
    det = {"boxes": torch.tensor([[10.0, 20.0, 30.0, 40.0]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([2]), "masks": torch.ones(1, 1, 28, 28)}
    out = detector_postprocess(det, (50, 100), 100, 200, thing_class_ids=[1, 3])
    assert torch.allclose(out.pred_boxes, torch.tensor([[20.0, 40.0, 60.0, 80.0]]))
    assert out.pred_classes.tolist() == [3]
    assert out.pred_masks.shape == (1, 100, 200)
    inside = out.pred_masks[0, 45:75, 25:55]
    assert inside.all() and not out.pred_masks[0, :30].any()


def test_panoptic_fusion_by_hand():
    seg = torch.zeros(4, 6, dtype=torch.int64)
    seg[:, 3:] = 2  # stuff class 2 on the right half, stuff 0 on the left
    masks = torch.zeros(3, 4, 6, dtype=torch.bool)
    masks[0, 0:2, 0:2] = True      # score 0.9: kept, 4 px
    masks[1, 0:2, 1:3] = True      # score 0.8: 2 of its 4 px are free -> 0.5 >= 0.5 kept with 2 px
    masks[2, 3, 5] = True          # score 0.3: below the score threshold
    instances = Instances((4, 6), pred_masks=masks, scores=torch.tensor([0.9, 0.8, 0.3]),
                          pred_classes=torch.tensor([1, 1, 1]))
    pan, info = combine_semantic_and_instances(instances, seg, overlap_threshold=0.5, stuff_area_threshold=5,
                                              instances_score_threshold=0.5, stuff_class_ids=[0, 2])
    assert [(s["category_id"], s["isthing"], s["area"]) for s in info] == [(1, True, 4), (1, True, 2), (0, False, 6),
                                                                           (2, False, 12)]
    assert (pan[0:2, 0:2] == 1).all() and (pan[0:2, 2] == 2).all()
    assert (pan[:, 3:] == 4).all()
    # stuff 0 keeps the 6 free pixels of the left half
    assert int((pan == 3).sum()) == 6


def test_panoptic_fusion_overlap_threshold_has_detectron2_meaning():
    # An instance of 10 px, 3 of them taken by a better one: detectron2 drops it when
    # taken / area = 0.3 > threshold, i.e. at 0.25, and keeps it at 0.5.
    seg = torch.zeros(4, 10, dtype=torch.int64)
    masks = torch.zeros(2, 4, 10, dtype=torch.bool)
    masks[0, 0, 0:3] = True
    masks[1, 0, 0:10] = True
    instances = Instances((4, 10), pred_masks=masks, scores=torch.tensor([0.9, 0.8]),
                          pred_classes=torch.tensor([1, 1]))
    for threshold, kept in ((0.25, 1), (0.3, 2), (0.5, 2)):
        _, info = combine_semantic_and_instances(instances, seg, overlap_threshold=threshold, stuff_area_threshold=1,
                                                 instances_score_threshold=0.5, stuff_class_ids=[0])
        assert sum(s["isthing"] for s in info) == kept, threshold


def test_mask_crops_hold_exactly_the_pixels_torchvision_pastes():
    torch.manual_seed(0)
    height, width = 40, 50
    # Boxes inside, on each border, tiny (< 1 px) and the whole image; mask probabilities around 0.5.
    boxes = torch.tensor([[5.3, 7.8, 20.1, 30.6], [0.0, 0.0, 12.0, 9.0], [41.2, 30.0, 50.0, 40.0],
                          [10.0, 10.0, 10.4, 10.3], [0.0, 0.0, 50.0, 40.0], [30.5, 0.0, 49.9, 17.2]])
    masks = torch.rand(len(boxes), 1, 28, 28)
    expected = paste_masks_in_image(masks, boxes, (height, width), padding=1)[:, 0] > 0.5
    crops = paste_mask_crops(masks, boxes, (height, width))
    assert len(crops) == len(boxes)
    for k in range(len(boxes)):
        assert np.array_equal(crops.paste(k), expected[k].numpy()), k
    det = {"boxes": boxes, "scores": torch.linspace(0.9, 0.4, len(boxes)), "labels": torch.ones(len(boxes), dtype=torch.int64),
           "masks": masks}
    whole = detector_postprocess(det, (height, width), height, width, [1])
    assert whole.pred_masks.dtype == torch.bool and torch.equal(whole.pred_masks, expected)
    cropped = detector_postprocess(det, (height, width), height, width, [1], cropped=True)
    assert not cropped.has("pred_masks") and torch.equal(cropped.pred_boxes, whole.pred_boxes)
    assert all(np.array_equal(cropped.pred_mask_crops.paste(k), whole.pred_masks[k].numpy()) for k in range(len(boxes)))
    none = detector_postprocess({k: v[:0] for k, v in det.items()}, (height, width), height, width, [1])
    assert none.pred_masks.shape == (0, height, width) and none.pred_masks.dtype == torch.bool


def reference_fusion(masks, scores, classes, seg, overlap, stuff_area, score_threshold, stuff_ids):
    """detectron2's fusion over full-image masks, in numpy (segments as (id, category, area))."""
    pan = np.zeros(seg.shape, np.int32)
    segments = []
    for k in sorted(range(len(scores)), key=lambda k: -scores[k]):
        if scores[k] < score_threshold:
            break
        area = int(masks[k].sum())
        free = masks[k] & (pan == 0)
        if area == 0 or free.sum() == 0 or (area - free.sum()) / area > overlap:
            continue
        pan[free] = len(segments) + 1
        segments.append((len(segments) + 1, int(classes[k]), int(free.sum())))
    for c in stuff_ids:
        region = (seg == c) & (pan == 0)
        if region.sum() >= stuff_area:
            pan[region] = len(segments) + 1
            segments.append((len(segments) + 1, c, int(region.sum())))
    return pan, segments


def test_fusion_of_crops_in_bands_equals_the_full_image_fusion(monkeypatch):
    import segdet.modeling.postprocess as postprocess

    monkeypatch.setattr(postprocess, "FUSION_ROWS", 7)  # several bands, the last one partial
    rng = np.random.default_rng(3)
    height, width = 45, 38
    seg = rng.integers(0, 4, (height, width))
    seg[20:, :] = 2  # a large stuff region
    masks = np.zeros((12, height, width), bool)
    for k in range(12):
        y, x = rng.integers(0, height - 5), rng.integers(0, width - 5)
        masks[k, y:y + rng.integers(2, 15), x:x + rng.integers(2, 15)] = rng.random() < 0.95
    scores = rng.random(12).astype(np.float32)
    classes = rng.integers(1, 3, 12)
    expected, segments = reference_fusion(masks, scores, classes, seg, 0.5, 30, 0.2, [0, 2, 3])
    for field, value in (("pred_masks", torch.from_numpy(masks)), ("pred_mask_crops", CroppedMasks.from_masks(masks))):
        instances = Instances((height, width), scores=torch.from_numpy(scores), pred_classes=torch.from_numpy(classes),
                              **{field: value})
        pan, info = combine_semantic_and_instances(instances, torch.from_numpy(seg), 0.5, 30, 0.2, [0, 2, 3])
        assert pan.dtype == torch.int32 and np.array_equal(pan.numpy(), expected), field
        assert [(s["id"], s["category_id"], s["area"]) for s in info] == segments
    assert sum(not s["isthing"] for s in info) >= 2 and sum(s["isthing"] for s in info) >= 4
