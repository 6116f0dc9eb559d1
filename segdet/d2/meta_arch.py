"""SegdetPanopticFPN and SegdetSemanticSegmentor: detectron2's PanopticFPN and SemanticSegmentor
with segdet's semantic path.

Their outputs hold detectron2's keys and segdet's, all at the original image size:

    sem_seg                  C x H x W class scores: softmax of the logits with the class weight
                             correction, ignore classes at 0 (its argmax is segmentation_image)
    segmentation_image       H x W class ids, never an ignore class
    segmentation_confidence  H x W, the score of the chosen class
    instances                detectron2 Instances (pred_classes: thing indices)    (PanopticFPN)
    panoptic_seg             (H x W segment ids, segments_info) in detectron2's convention: thing
                             segments by thing index, stuff segments by class id  (PanopticFPN,
                             with MODEL.PANOPTIC_FPN.COMBINE.ENABLED)

The panoptic fusion is segdet's (`combine_semantic_and_instances`): stuff comes from the stuff
classes of segmentation_image (detectron2's own fusion treats semantic class 0 as "things",
COCO's panoptic-separated layout, which segdet's datasets do not have). In training the semantic
loss is weighted by each input's weight_image. The class weights of training are a buffer,
saved in the model file, for MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION at inference.
"""
from __future__ import annotations

from typing import Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, PanopticFPN, SemanticSegmentor
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import ImageList

from segdet.d2.datasets import segdet_metadata
from segdet.d2.sem_seg_head import SegdetSemSegFPNHead
from segdet.errors import ConfigError
from segdet.modeling.meta_arch import SemanticSegmentor as SegdetStandaloneSegmentor
from segdet.modeling.postprocess import combine_semantic_and_instances, ignore_class_mask
from segdet.structures.metadata import Metadata


def _check_head(head) -> None:
    if not isinstance(head, SegdetSemSegFPNHead):
        raise ConfigError(f"MODEL.SEM_SEG_HEAD.NAME: segdet's meta-architectures need SegdetSemSegFPNHead (or a "
                          f"subclass), which takes the weight_image; got {type(head).__name__}")


class SegdetSemanticPath:
    """What segdet adds to a detectron2 meta-architecture that has a backbone and a semantic head:
    the experiment's classes, the training class weights and segdet's semantic outputs."""

    def init_segdet(self, metadata: Metadata, class_weight_correction: float) -> None:
        _check_head(self.sem_seg_head)
        self.metadata = metadata
        self.ignore_class_ids = list(metadata.ignore_class_ids)
        self.class_weight_correction = float(class_weight_correction)
        self.register_buffer("training_class_weights", torch.ones(metadata.num_classes))
        self.register_buffer("ignore_mask", ignore_class_mask(metadata.num_classes, self.ignore_class_ids),
                             persistent=False)

    # segdet's semantic inference is one path: these are the very functions of segdet's own models
    # (logits -> class weight correction -> scores -> segmentation_image / confidence), which read
    # only `training_class_weights`, `class_weight_correction`, `ignore_mask` and `ignore_class_ids`.
    set_training_class_weights = SegdetStandaloneSegmentor.set_training_class_weights
    class_score_offsets = SegdetStandaloneSegmentor.class_score_offsets
    semantic_scores = SegdetStandaloneSegmentor.semantic_scores
    semantic_result = SegdetStandaloneSegmentor.semantic_result
    output_size = staticmethod(SegdetStandaloneSegmentor.output_size)

    @staticmethod
    def segdet_kwargs(cfg, metadata: Optional[Metadata]) -> dict:
        return {"metadata": metadata if metadata is not None else segdet_metadata(cfg),
                "class_weight_correction": cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION}

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalize and pad the images into one batch (detectron2's way)."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(images, self.backbone.size_divisibility,
                                      padding_constraints=self.backbone.padding_constraints)

    def _pad(self, tensors: list[torch.Tensor], value: float) -> torch.Tensor:
        return ImageList.from_tensors([t.to(self.device) for t in tensors], self.backbone.size_divisibility,
                                      value, self.backbone.padding_constraints).tensor

    def semantic_losses(self, features: dict, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """The head's loss against each input's `sem_seg`, weighted by its `weight` (weight_image)."""
        targets = self._pad([x["sem_seg"] for x in batched_inputs], self.sem_seg_head.ignore_value)
        weights = None
        if all("weight" in x for x in batched_inputs):
            weights = self._pad([x["weight"] for x in batched_inputs], 0.0)
        return self.sem_seg_head(features, targets, weights)[1]

    def semantic_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) logits of a normalized, padded batch (what tiled inference calls)."""
        return self.sem_seg_head(self.backbone(images))[0]


@META_ARCH_REGISTRY.register()
class SegdetSemanticSegmentor(SegdetSemanticPath, SemanticSegmentor):
    """detectron2's SemanticSegmentor with segdet's loss inputs and outputs (MODEL.MASK_ON False)."""

    @configurable
    def __init__(self, *, metadata: Metadata, class_weight_correction: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.init_segdet(metadata, class_weight_correction)

    @classmethod
    def from_config(cls, cfg, metadata: Optional[Metadata] = None):
        """`metadata`: the experiment's classes (a model file's); None = `segdet_metadata(cfg)`."""
        return {**SemanticSegmentor.from_config(cfg), **cls.segdet_kwargs(cfg, metadata)}

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        if self.training:
            return self.semantic_losses(features, batched_inputs)
        logits = self.sem_seg_head(features)[0]
        return [self.semantic_result(logits[i], size, *self.output_size(x, size))
                for i, (x, size) in enumerate(zip(batched_inputs, images.image_sizes))]


@META_ARCH_REGISTRY.register()
class SegdetPanopticFPN(SegdetSemanticPath, PanopticFPN):
    """detectron2's PanopticFPN with segdet's loss inputs, outputs and panoptic fusion (MODEL.MASK_ON True)."""

    @configurable
    def __init__(self, *, metadata: Metadata, class_weight_correction: float = 0.0, combine_on: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.init_segdet(metadata, class_weight_correction)
        self.combine_on = combine_on
        self.stuff_class_ids = list(metadata.stuff_class_ids)

    @classmethod
    def from_config(cls, cfg, metadata: Optional[Metadata] = None):
        """`metadata`: the experiment's classes (a model file's); None = `segdet_metadata(cfg)`."""
        return {**PanopticFPN.from_config(cfg), **cls.segdet_kwargs(cfg, metadata),
                "combine_on": cfg.MODEL.PANOPTIC_FPN.COMBINE.ENABLED}

    def forward(self, batched_inputs: list[dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        losses = self.semantic_losses(features, batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        return {**losses, **proposal_losses, **detector_losses}

    def inference(self, batched_inputs: list[dict], do_postprocess: bool = True):
        """Output dicts at the original size; without `do_postprocess`, detectron2's raw
        (detections, semantic logits)."""
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        logits = self.sem_seg_head(features)[0]
        proposals, _ = self.proposal_generator(images, features, None)
        detections, _ = self.roi_heads(images, features, proposals, None)
        if not do_postprocess:
            return detections, logits
        results = []
        for i, (x, size) in enumerate(zip(batched_inputs, images.image_sizes)):
            height, width = self.output_size(x, size)
            out = self.semantic_result(logits[i], size, height, width)
            out["instances"] = detector_postprocess(detections[i], height, width)
            if self.combine_on:
                # Thing segments take the instances' pred_classes (thing indices): detectron2's convention.
                out["panoptic_seg"] = combine_semantic_and_instances(
                    out["instances"], out["segmentation_image"], self.combine_overlap_thresh,
                    self.combine_stuff_area_thresh, self.combine_instances_score_thresh, self.stuff_class_ids)
            results.append(out)
        return results
