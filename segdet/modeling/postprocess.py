"""Turn raw model outputs into the output dict: scores, segmentation_image, confidence,
instances at the original size, and the panoptic fusion of instances and stuff."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import clip_boxes_to_image

from segdet.structures.instances import Instances


def sem_seg_postprocess(logits: torch.Tensor, image_size: tuple[int, int], output_height: int,
                        output_width: int) -> torch.Tensor:
    """Crop the padding off (C, Hpad, Wpad) logits and resize them to the original image size."""
    logits = logits[:, : image_size[0], : image_size[1]]
    if logits.shape[-2:] != (output_height, output_width):
        logits = F.interpolate(logits[None], size=(output_height, output_width), mode="bilinear",
                               align_corners=False)[0]
    return logits


def class_score_offsets(class_weights: torch.Tensor, correction: float) -> torch.Tensor | None:
    """(C, 1, 1) logit offsets of the class weight correction: correction x log(training class
    weight), so that subtracting them divides each class's score by its weight to that power.
    Classes of weight 0 (ignore classes) get 0. None when there is nothing to correct."""
    if correction == 0.0 or class_weights.numel() == 0:
        return None
    log_weights = torch.where(class_weights > 0, torch.log(class_weights.clamp(min=1e-12)),
                              torch.zeros_like(class_weights))
    return (correction * log_weights).to(torch.float32).view(-1, 1, 1)


def ignore_class_mask(num_classes: int, ignore_class_ids: list[int]) -> torch.Tensor:
    """(C, 1, 1) bool, True for the ignore classes."""
    mask = torch.zeros(num_classes, 1, 1, dtype=torch.bool)
    mask[list(ignore_class_ids)] = True
    return mask


def class_scores(logits: torch.Tensor, ignore_mask: torch.Tensor | None = None,
                 offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Class probabilities over dim -3 of (..., C, H, W) logits: the class weight correction's
    offsets subtracted, ignore classes at probability 0.

    The one place where logits become scores: the model's forward, tiled inference and the
    exported models all call it, so they agree.
    """
    if offsets is not None:
        logits = logits - offsets.to(logits.dtype)
    if ignore_mask is not None:
        logits = logits.masked_fill(ignore_mask, float("-inf"))
    return F.softmax(logits, dim=-3)


def segmentation_from_scores(scores: torch.Tensor, ignore_class_ids: list[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """segmentation_image (..., H, W int64) and segmentation_confidence (..., H, W float32) from
    (..., C, H, W) scores.

    A running maximum over the channels: each step reads one contiguous HxW plane, which
    is several times faster on a CPU than `argmax(dim=0)` (strided over channels).
    Ignore classes are skipped, so they are never chosen; ties keep the lower class id.
    """
    skip = set(ignore_class_ids)
    candidates = [c for c in range(scores.shape[-3]) if c not in skip]
    best = scores.select(-3, candidates[0]).clone()
    labels = torch.full(best.shape, candidates[0], dtype=torch.int64, device=scores.device)
    for c in candidates[1:]:
        plane = scores.select(-3, c)
        better = plane > best
        best = torch.where(better, plane, best)
        labels.masked_fill_(better, c)
    return labels, best.to(torch.float32)


def detector_postprocess(detections: dict[str, torch.Tensor], image_size: tuple[int, int], output_height: int,
                         output_width: int, thing_class_ids: list[int], mask_threshold: float = 0.5) -> Instances:
    """torchvision's detections of one image as `Instances` at the original size: boxes scaled
    from the network's input size and clipped, masks pasted there, torchvision's labels (1..K)
    turned into class ids."""
    scale_y = output_height / image_size[0]
    scale_x = output_width / image_size[1]
    boxes = detections["boxes"]
    boxes = boxes * torch.tensor([scale_x, scale_y, scale_x, scale_y], dtype=boxes.dtype, device=boxes.device)
    boxes = clip_boxes_to_image(boxes, (output_height, output_width))
    class_map = torch.tensor(thing_class_ids, dtype=torch.int64, device=boxes.device)
    labels = detections["labels"]
    result = Instances((output_height, output_width), pred_boxes=boxes, scores=detections["scores"],
                       pred_classes=class_map[labels - 1] if len(boxes) else labels)
    if "masks" in detections:
        if len(boxes):
            pasted = paste_masks_in_image(detections["masks"], boxes, (output_height, output_width), padding=1)
            result.set("pred_masks", pasted[:, 0] > mask_threshold)
        else:
            result.set("pred_masks", torch.zeros((0, output_height, output_width), dtype=torch.bool,
                                                 device=boxes.device))
    return result


def combine_semantic_and_instances(instances: Instances, segmentation_image: torch.Tensor, overlap_threshold: float,
                                   stuff_area_threshold: int, instances_score_threshold: float,
                                   stuff_class_ids: list[int]) -> tuple[torch.Tensor, list[dict]]:
    """Panoptic FPN's fusion (detectron2's `combine_semantic_and_instance_outputs`): instances
    first, by decreasing score, each keeping only the pixels not taken yet, and dropped when
    more than `overlap_threshold` of its pixels are already taken (or all are); then each stuff
    class of the semantic result fills free pixels if it covers at least `stuff_area_threshold`.

    Returns:
        panoptic_seg: (H, W) int32 segment ids, 0 = void; segments_info: one dict per segment.
    """
    panoptic_seg = torch.zeros_like(segmentation_image, dtype=torch.int32)
    segments_info: list[dict] = []
    next_id = 1
    masks = instances.get("pred_masks")
    if masks is not None and len(masks):
        order = torch.argsort(instances.scores, descending=True)
        for idx in order.tolist():
            score = float(instances.scores[idx])
            if score < instances_score_threshold:
                break
            mask = masks[idx]
            area = int(mask.sum())
            if area == 0:
                continue
            free = mask & (panoptic_seg == 0)
            free_area = int(free.sum())
            # detectron2's rule: drop an instance when the share of it already taken exceeds the threshold.
            if free_area == 0 or (area - free_area) / area > overlap_threshold:
                continue
            panoptic_seg[free] = next_id
            segments_info.append({"id": next_id, "isthing": True, "score": score,
                                  "category_id": int(instances.pred_classes[idx]),
                                  "instance_id": idx, "area": free_area})
            next_id += 1
    for class_id in stuff_class_ids:
        region = (segmentation_image == class_id) & (panoptic_seg == 0)
        area = int(region.sum())
        if area < stuff_area_threshold:
            continue
        panoptic_seg[region] = next_id
        segments_info.append({"id": next_id, "isthing": False, "category_id": int(class_id), "area": area})
        next_id += 1
    return panoptic_seg, segments_info
