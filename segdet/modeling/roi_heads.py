"""torchvision's RoIHeads with two shortcuts that leave its results as they are, and its
detections decoded in float32 under TEST.AMP.

1. The test-time detections: torchvision runs NMS on every (proposal, class) pair above the
score threshold (1000 proposals x 80 classes at threshold 0), then keeps the best
`detections_per_img`. Greedy NMS decides each box from the higher-scoring boxes alone, so NMS on
the top-scoring prefix of the candidates keeps exactly the kept boxes that lie in that prefix;
once a prefix keeps enough, the rest cannot change the answer. `top_k_batched_nms` grows the
prefix until it does.
2. The feature maps the box and mask poolers read: roi_align has float32 NCHW kernels only, so
under TEST.AMP / MODEL.CHANNELS_LAST each pooler converted every level (twice: dtype, then
layout); they are converted once, in one pass.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from segdet.utils.precision import as_float32_nchw

# The first prefix holds this many candidates per detection kept (then it doubles).
_PREFIX_PER_DETECTION = 4


def _per_class_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                   iou_threshold: float) -> torch.Tensor:
    """Indices kept by NMS within each class, by decreasing score (one `nms` call per class,
    so no coordinate offsets that could round an IoU differently)."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for c in torch.unique(classes):
        members = torch.where(classes == c)[0]
        keep[members[box_ops.nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].argsort(descending=True, stable=True)]


def top_k_batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                      iou_threshold: float, k: int) -> torch.Tensor:
    """`torchvision.ops.batched_nms(boxes, scores, classes, iou_threshold)[:k]` (the same
    indices by decreasing score; boxes of exactly equal score aside, which batched_nms orders
    as its sort happens to), computed on as few of the highest-scoring boxes as it needs."""
    # Stable, as nms' own sort: boxes of equal score keep their order in the prefix too.
    order = scores.argsort(descending=True, stable=True)
    size = max(1, k) * _PREFIX_PER_DETECTION
    while True:
        prefix = order[:size]
        kept = prefix[_per_class_nms(boxes[prefix], scores[prefix], classes[prefix], iou_threshold)]
        if len(kept) >= k or size >= len(order):
            return kept[:k]
        size *= 2


class FastRoIHeads(RoIHeads):
    """torchvision's RoIHeads, its float32 results unchanged: the poolers' features converted
    once, `top_k_batched_nms` for the test-time detections, decoded in float32 under autocast."""

    def forward(self, features, proposals, image_shapes, targets=None):
        features = {name: as_float32_nchw(f) for name, f in features.items()}
        return super().forward(features, proposals, image_shapes, targets)

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        # Scores and boxes in float32 under TEST.AMP too: bfloat16 scores (8 bits) tie by the
        # hundred, and NMS would then pick among equal scores by chance.
        class_logits, box_regression = class_logits.float(), box_regression.float()
        proposals = [p.float() for p in proposals]
        counts = [len(p) for p in proposals]
        all_boxes = self.box_coder.decode(box_regression, proposals).split(counts)
        all_scores = F.softmax(class_logits, -1).split(counts)
        kept_boxes, kept_scores, kept_labels = [], [], []
        for boxes, scores, image_shape in zip(all_boxes, all_scores, image_shapes):
            # Every (proposal, class) pair but the background (column 0) is a candidate.
            labels = torch.arange(1, scores.shape[1], device=scores.device).expand(len(scores), -1).reshape(-1)
            scores = scores[:, 1:].reshape(-1)
            boxes = boxes[:, 1:].reshape(-1, 4)
            above = torch.where(scores > self.score_thresh)[0]
            boxes = box_ops.clip_boxes_to_image(boxes[above], image_shape)
            scores, labels = scores[above], labels[above]
            big_enough = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[big_enough], scores[big_enough], labels[big_enough]
            keep = top_k_batched_nms(boxes, scores, labels, self.nms_thresh, self.detections_per_img)
            kept_boxes.append(boxes[keep])
            kept_scores.append(scores[keep])
            kept_labels.append(labels[keep])
        return kept_boxes, kept_scores, kept_labels
