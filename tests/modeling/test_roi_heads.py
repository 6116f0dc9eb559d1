"""top_k_batched_nms and FastRoIHeads against torchvision's batched_nms and RoIHeads."""
import pytest
import torch
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign, batched_nms

from segdet.modeling.roi_heads import FastRoIHeads, top_k_batched_nms
from segdet.utils.precision import as_float32_nchw

LEVELS = ["p2", "p3"]


def _clustered_boxes(n, generator, size=200.0):
    """Boxes around a few centres, so that many overlap (NMS has work to do)."""
    centres = torch.rand(8, 2, generator=generator) * size
    c = centres[torch.randint(0, 8, (n,), generator=generator)] + torch.randn(n, 2, generator=generator) * 6
    wh = 10 + torch.rand(n, 2, generator=generator) * 30
    return torch.cat([c - wh / 2, c + wh / 2], dim=1)


@pytest.mark.parametrize("n, num_classes, k", [(3000, 80, 100), (500, 3, 100), (40, 2, 100), (2000, 5, 1),
                                               (0, 3, 100), (300, 1, 0)])
def test_top_k_batched_nms_keeps_what_batched_nms_keeps_first(n, num_classes, k):
    g = torch.Generator().manual_seed(n + num_classes + k)
    boxes = _clustered_boxes(n, g)
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, num_classes, (n,), generator=g)
    expected = batched_nms(boxes, scores, classes, 0.5)[:k]
    assert torch.equal(top_k_batched_nms(boxes, scores, classes, 0.5, k), expected)


def test_boxes_kept_late_in_the_score_order_are_found():
    # 60 tight clusters of 50 boxes of one class, a cluster's scores all below the previous
    # cluster's: NMS keeps one box per cluster, so 20 detections need the top 20 clusters (1000
    # boxes), far beyond the first prefix.
    g = torch.Generator().manual_seed(2)
    centres = (torch.arange(60, dtype=torch.float32) * 50).repeat_interleave(50)[:, None].expand(-1, 2)
    jitter = torch.rand(3000, 2, generator=g)
    boxes = torch.cat([centres + jitter, centres + 20 + jitter], dim=1)
    scores = 1 - torch.arange(3000, dtype=torch.float32) / 3000
    classes = torch.zeros(3000, dtype=torch.int64)
    kept = top_k_batched_nms(boxes, scores, classes, 0.5, 20)
    assert torch.equal(kept, torch.arange(20) * 50)
    assert torch.equal(kept, batched_nms(boxes, scores, classes, 0.5)[:20])


def _heads(cls, score_thresh, detections):
    return cls(box_roi_pool=None, box_head=None, box_predictor=None, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
               batch_size_per_image=512, positive_fraction=0.25, bbox_reg_weights=None,
               score_thresh=score_thresh, nms_thresh=0.5, detections_per_img=detections)


@pytest.mark.parametrize("score_thresh", [0.0, 0.05])
def test_roi_heads_detections_equal_torchvisions(score_thresh):
    # Two images of 1000 proposals, 81 classes (background first): what Panoptic FPN's box head
    # hands to the postprocessing.
    g = torch.Generator().manual_seed(1)
    proposals = [_clustered_boxes(1000, g, 400.0).clamp(0, 399), _clustered_boxes(700, g, 300.0).clamp(0, 299)]
    logits = torch.randn(1700, 81, generator=g) * 3
    deltas = torch.randn(1700, 81 * 4, generator=g) * 0.1
    shapes = [(400, 400), (300, 300)]
    ours = _heads(FastRoIHeads, score_thresh, 100).postprocess_detections(logits, deltas, proposals, shapes)
    theirs = _heads(RoIHeads, score_thresh, 100).postprocess_detections(logits, deltas, proposals, shapes)
    for mine, expected in zip(ours, theirs):
        for a, b in zip(mine, expected):
            assert len(a) == len(b) == 100
            assert torch.equal(a, b)


def _small_heads(cls):
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    torch.manual_seed(0)
    parts = dict(box_roi_pool=MultiScaleRoIAlign(LEVELS, 7, 0), box_head=TwoMLPHead(8 * 49, 32),
                 box_predictor=FastRCNNPredictor(32, 4), mask_roi_pool=MultiScaleRoIAlign(LEVELS, 14, 0),
                 mask_head=MaskRCNNHeads(8, (8, 8), 1), mask_predictor=MaskRCNNPredictor(8, 8, 4))
    return cls(fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512, positive_fraction=0.25,
               bbox_reg_weights=None, score_thresh=0.0, nms_thresh=0.5, detections_per_img=30, **parts).eval()


def _features(dtype):
    torch.manual_seed(1)
    features = {"p2": torch.randn(1, 8, 32, 32), "p3": torch.randn(1, 8, 16, 16)}
    return {k: v.to(dtype).contiguous(memory_format=torch.channels_last) for k, v in features.items()}


def test_forward_on_channels_last_features_equals_torchvisions():
    # 500 proposals x 3 classes: more than 1000 candidates, where batched_nms runs NMS class by
    # class as FastRoIHeads does (below, it offsets the boxes by class: other roundings).
    proposals = [_clustered_boxes(500, torch.Generator().manual_seed(3), 128.0).clamp(0, 127)]
    ours, theirs = (_small_heads(cls)(_features(torch.float32), proposals, [(128, 128)])[0][0]
                    for cls in (FastRoIHeads, RoIHeads))
    assert len(ours["boxes"]) == 30
    for key in ("boxes", "scores", "labels", "masks"):
        assert torch.equal(ours[key], theirs[key]), key


def test_features_converted_once_pool_as_autocast_converts_them():
    # Under bfloat16 autocast torchvision's roi_align casts each level to float32, makes it NCHW
    # itself and casts its result back to bfloat16; FastRoIHeads hands it float32 NCHW levels
    # and gets float32, which the box and mask heads' autocast casts to the same bfloat16
    # values.
    features = _features(torch.bfloat16)
    boxes = [_clustered_boxes(300, torch.Generator().manual_seed(4), 128.0).clamp(0, 127)]
    pooler = MultiScaleRoIAlign(LEVELS, 7, 0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        direct = pooler(features, boxes, [(128, 128)])
        converted = pooler({k: as_float32_nchw(v) for k, v in features.items()}, boxes, [(128, 128)])
    assert direct.dtype == torch.bfloat16 and converted.dtype == torch.float32
    assert torch.equal(direct, converted.to(torch.bfloat16))


def test_detections_under_bfloat16_autocast_are_decoded_in_float32():
    # torchvision's RoIHeads hands back bfloat16 scores under autocast (hundreds of them equal);
    # FastRoIHeads decodes the box head's outputs in float32.
    proposals = [_clustered_boxes(500, torch.Generator().manual_seed(5), 128.0).clamp(0, 127)]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ours = _small_heads(FastRoIHeads)(_features(torch.bfloat16), proposals, [(128, 128)])[0][0]
        theirs = _small_heads(RoIHeads)(_features(torch.bfloat16), proposals, [(128, 128)])[0][0]
    assert theirs["scores"].dtype == torch.bfloat16
    assert ours["scores"].dtype == ours["boxes"].dtype == torch.float32
    assert len(torch.unique(ours["scores"])) == len(ours["scores"]) == 30
