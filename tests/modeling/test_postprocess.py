import math

import torch

from segdet.structures.instances import Instances
from segdet.modeling.postprocess import (
    class_score_offsets,
    class_scores,
    combine_semantic_and_instances,
    detector_postprocess,
    ignore_class_mask,
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


def test_scores_are_probabilities_with_zero_for_ignore_classes():
    logits = torch.tensor([[[1.0]], [[2.0]], [[9.0]]])
    scores = class_scores(logits, ignore_class_mask(3, [2]))
    e1, e2 = torch.exp(torch.tensor(1.0)), torch.exp(torch.tensor(2.0))
    assert torch.allclose(scores[:, 0, 0], torch.stack([e1 / (e1 + e2), e2 / (e1 + e2), torch.tensor(0.0)]))
    labels, conf = segmentation_from_scores(scores, [2])
    assert labels.item() == 1 and abs(conf.item() - (e2 / (e1 + e2)).item()) < 1e-6


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
