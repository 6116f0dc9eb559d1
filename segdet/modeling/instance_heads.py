"""The Mask R-CNN instance branch, assembled from torchvision's detection components."""
from __future__ import annotations

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign

from segdet.errors import ConfigError
from segdet.modeling.roi_heads import FastRoIHeads

# FPN levels the RoI poolers read (p6 only feeds the RPN, as in Mask R-CNN).
ROI_FEATURES = ["p2", "p3", "p4", "p5"]


def build_rpn(cfg, in_channels: int, num_levels: int = 5) -> RegionProposalNetwork:
    """torchvision's RPN with detectron2's config keys."""
    sizes = [tuple(s) for s in cfg.MODEL.ANCHOR_GENERATOR.SIZES]
    ratios = [tuple(r) for r in cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS]
    if len(sizes) != num_levels:
        raise ConfigError(f"MODEL.ANCHOR_GENERATOR.SIZES needs one list per FPN level ({num_levels}), got {len(sizes)}")
    if len(ratios) == 1:
        ratios = ratios * num_levels
    if len(ratios) != num_levels or len({len(s) * len(r) for s, r in zip(sizes, ratios)}) != 1:
        raise ConfigError("MODEL.ANCHOR_GENERATOR: every FPN level needs the same number of anchors")
    anchors = AnchorGenerator(tuple(sizes), tuple(ratios))
    rpn = cfg.MODEL.RPN
    bg_thresh, fg_thresh = rpn.IOU_THRESHOLDS
    return RegionProposalNetwork(
        anchors,
        RPNHead(in_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=fg_thresh,
        bg_iou_thresh=bg_thresh,
        batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        positive_fraction=rpn.POSITIVE_FRACTION,
        pre_nms_top_n={"training": rpn.PRE_NMS_TOPK_TRAIN, "testing": rpn.PRE_NMS_TOPK_TEST},
        post_nms_top_n={"training": rpn.POST_NMS_TOPK_TRAIN, "testing": rpn.POST_NMS_TOPK_TEST},
        nms_thresh=rpn.NMS_THRESH,
    )


def build_roi_heads(cfg, in_channels: int, mask_on: bool = True) -> FastRoIHeads:
    """torchvision's RoIHeads (box head + optional mask head) for ROI_HEADS.NUM_CLASSES thing
    classes (`FastRoIHeads`: the same results, faster on a CPU)."""
    roi, box, mask = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_MASK_HEAD
    num_classes = roi.NUM_CLASSES + 1  # torchvision counts the background as class 0
    box_pool = MultiScaleRoIAlign(ROI_FEATURES, box.POOLER_RESOLUTION, box.POOLER_SAMPLING_RATIO)
    box_head = TwoMLPHead(in_channels * box.POOLER_RESOLUTION ** 2, box.FC_DIM)
    heads = dict(
        box_roi_pool=box_pool,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(box.FC_DIM, num_classes),
        fg_iou_thresh=roi.IOU_THRESHOLDS[-1],
        bg_iou_thresh=roi.IOU_THRESHOLDS[0],
        batch_size_per_image=roi.BATCH_SIZE_PER_IMAGE,
        positive_fraction=roi.POSITIVE_FRACTION,
        bbox_reg_weights=None,
        score_thresh=roi.SCORE_THRESH_TEST,
        nms_thresh=roi.NMS_THRESH_TEST,
        detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
    )
    if mask_on:
        layers = (mask.CONV_DIM,) * mask.NUM_CONV
        heads.update(
            mask_roi_pool=MultiScaleRoIAlign(ROI_FEATURES, mask.POOLER_RESOLUTION, mask.POOLER_SAMPLING_RATIO),
            mask_head=MaskRCNNHeads(in_channels, layers, dilation=1),
            mask_predictor=MaskRCNNPredictor(mask.CONV_DIM, mask.CONV_DIM, num_classes),
        )
    return FastRoIHeads(**heads)
