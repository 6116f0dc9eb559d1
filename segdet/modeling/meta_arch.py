"""Meta-architectures: SemanticSegmentor (semantic path only) and PanopticFPN (plus Mask R-CNN).

`forward(batched_inputs)` takes a list of model input dicts (ARCHITECTURE.md) and returns a dict
of losses in training, and a list of output dicts (at the original image size) in inference.
"""
from __future__ import annotations

import torch
from fvcore.common.registry import Registry
from torch import nn
from torchvision.models.detection.image_list import ImageList

from segdet.modeling.backbone import fpn_levels
from segdet.modeling.losses import SemanticLoss
from segdet.modeling.postprocess import (
    class_score_offsets,
    class_scores,
    combine_semantic_and_instances,
    detector_postprocess,
    ignore_class_mask,
    sem_seg_postprocess,
    semantic_output,
)
from segdet.modeling.test_time_augmentation import SemanticTTA
from segdet.structures.instances import Instances
from segdet.utils.precision import as_float32_nchw, autocast


META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Meta-architectures, built by name from MODEL.META_ARCHITECTURE: classes with
`from_config(cfg, metadata)` and `has_instances` (whether MODEL.MASK_ON must be True)."""


def padded_size(size, divisibility: int):
    """The size the model pads an image side to (its `pad_and_stack`): a multiple of
    `divisibility`, at least twice it.

    Written without comparisons, max(n, 2) == n + 1 // n for n >= 1, and as d * ceil(size / d),
    so that torch.export keeps it one expression for every size (and can tell that it is a
    multiple of d, so the FPN levels line up) and torch.jit.trace records it instead of a constant.
    """
    n = (size + divisibility - 1) // divisibility
    return (n + 1 // n) * divisibility


def pad_and_stack(tensors: list[torch.Tensor], size_divisibility: int, pad_value: float = 0.0) -> torch.Tensor:
    """Stack (..., H, W) tensors into one batch padded at the bottom/right to `padded_size`: a
    multiple of size_divisibility and at least twice it (at one step the coarsest features would
    be 1x1, which normalization layers cannot handle)."""
    max_h = padded_size(max(t.shape[-2] for t in tensors), size_divisibility)
    max_w = padded_size(max(t.shape[-1] for t in tensors), size_divisibility)
    batch = tensors[0].new_full((len(tensors),) + tensors[0].shape[:-2] + (max_h, max_w), pad_value)
    for out, t in zip(batch, tensors):
        out[..., : t.shape[-2], : t.shape[-1]].copy_(t)
    return batch


@META_ARCH_REGISTRY.register()
class SemanticSegmentor(nn.Module):
    """Backbone + semantic head. Outputs `sem_seg`, `segmentation_image`, `segmentation_confidence`."""

    has_instances = False

    def __init__(self, backbone: nn.Module, sem_seg_head: nn.Module, sem_seg_loss: SemanticLoss,
                 pixel_mean: list[float], pixel_std: list[float], num_classes: int, ignore_class_ids: list[int],
                 sem_seg_loss_weight: float = 1.0, class_weight_correction: float = 0.0,
                 channels_last: bool = False, test_time_augmentation: SemanticTTA | None = None):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.sem_seg_loss = sem_seg_loss
        self.sem_seg_loss_weight = sem_seg_loss_weight
        self.ignore_class_ids = list(ignore_class_ids)
        self.ignore_value = sem_seg_loss.ignore_value
        self.size_divisibility = getattr(backbone, "size_divisibility", 32)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        # The class weights the model was trained with (saved with it; set by the trainer), for
        # `class_weight_correction` at inference.
        self.class_weight_correction = float(class_weight_correction)
        self.register_buffer("training_class_weights", torch.ones(num_classes))
        self.register_buffer("ignore_mask", ignore_class_mask(num_classes, self.ignore_class_ids), persistent=False)
        # Images in channels-last memory format (MODEL.CHANNELS_LAST; build_model converts the weights).
        self.channels_last = bool(channels_last)
        # The autocast dtype of the network in inference (TEST.AMP, set by build_model); None = float32.
        self.inference_dtype: torch.dtype | None = None
        # TEST.AUG: carried by the model, so that evaluation, Predictor and tiles all average the same variants.
        self.test_time_augmentation = test_time_augmentation
        # Another runtime for the logits step at inference (TEST.ENGINE, `inference.onnx_engine`):
        # a callable of the padded batch; None = PyTorch.
        self.logits_engine = None

    @staticmethod
    def semantic_kwargs(cfg, metadata, backbone: nn.Module) -> dict:
        """Constructor arguments of the semantic path, from the config and the dataset metadata."""
        from segdet.modeling.sem_seg_head import build_sem_seg_head

        return dict(
            backbone=backbone,
            sem_seg_head=build_sem_seg_head(cfg, backbone.out_channels),
            sem_seg_loss=SemanticLoss.from_config(cfg, metadata.ignore_class_ids),
            pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
            pixel_std=list(cfg.MODEL.PIXEL_STD),
            num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            ignore_class_ids=metadata.ignore_class_ids,
            sem_seg_loss_weight=cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT,
            class_weight_correction=cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION,
            channels_last=cfg.MODEL.CHANNELS_LAST,
            test_time_augmentation=SemanticTTA.from_config(cfg),
        )

    @classmethod
    def from_config(cls, cfg, metadata) -> "SemanticSegmentor":
        from segdet.modeling.backbone import build_backbone

        return cls(**cls.semantic_kwargs(cfg, metadata, build_backbone(cfg)))

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalize and pad the images into one batch."""
        images = [(x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        sizes = [tuple(im.shape[-2:]) for im in images]
        batch = pad_and_stack(images, self.size_divisibility)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return ImageList(batch, sizes)

    def semantic_loss(self, logits: torch.Tensor, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        targets = pad_and_stack([x["sem_seg"].to(self.device) for x in batched_inputs], self.size_divisibility,
                                self.ignore_value)
        weights = None
        if all("weight" in x for x in batched_inputs):
            weights = pad_and_stack([x["weight"].to(self.device) for x in batched_inputs], self.size_divisibility, 0.0)
        # In float32 also when the forward pass ran under autocast (SOLVER.AMP).
        loss = self.sem_seg_loss(logits.float(), targets, weights)
        return {"loss_sem_seg": loss * self.sem_seg_loss_weight}

    def set_training_class_weights(self, class_weights) -> None:
        """Record the class weights of the training loss (one per class; ignore classes 0)."""
        weights = torch.as_tensor(class_weights, dtype=torch.float32)
        if weights.shape != self.training_class_weights.shape:
            raise ValueError(f"{len(weights)} class weights for a model with {len(self.training_class_weights)} classes")
        self.training_class_weights.copy_(weights)

    def class_score_offsets(self) -> torch.Tensor | None:
        """The logit offsets of MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION (see `postprocess.class_scores`)."""
        return class_score_offsets(self.training_class_weights, self.class_weight_correction)

    def inference_autocast(self):
        """Autocast of the network in inference (TEST.AMP); in training the trainer's (SOLVER.AMP) applies."""
        return autocast(self.device, None if self.training else self.inference_dtype)

    def semantic_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) class logits of a normalized, padded (N, 3, H, W) batch; float32 in inference.
        In inference by `logits_engine` when one is set (TEST.ENGINE), else by the backbone and head in
        PyTorch under TEST.AMP's autocast: the one step an engine replaces, the rest (preprocessing,
        scores, tiles) stays the model's own."""
        if self.training:
            return self.sem_seg_head(self.backbone(images))
        if self.logits_engine is not None:
            return self.logits_engine(images)
        with self.inference_autocast():
            logits = self.sem_seg_head(self.backbone(images))
        return as_float32_nchw(logits)

    def semantic_scores(self, logits: torch.Tensor, image_size: tuple[int, int], height: int,
                        width: int) -> torch.Tensor:
        """(C, height, width) class probabilities of one image from its padded (C, Hpad, Wpad) logits:
        the padding cropped off, resized, class weight correction applied, ignore classes at 0.
        What whole-image and tiled inference both use."""
        logits = sem_seg_postprocess(logits, image_size, height, width)
        return class_scores(logits, self.ignore_mask, self.class_score_offsets())

    def semantic_result(self, logits: torch.Tensor, image_size: tuple[int, int], height: int, width: int) -> dict:
        """The semantic part of an output dict, at (height, width)."""
        return semantic_output(self.semantic_scores(logits, image_size, height, width), self.ignore_class_ids)

    def batch_scores(self, batched_inputs: list[dict], images: ImageList | None = None,
                     logits: torch.Tensor | None = None,
                     whole_sizes: list[tuple[int, int]] | None = None) -> list[torch.Tensor]:
        """(C, height, width) class scores of each input at its output size (its `height` and
        `width`, default its image's size): with TEST.AUG the mean over the variants
        (`test_time_augmentation`), else of the one pass. What `forward` and tiled inference call.

        Args:
            images, logits: the un-augmented pass of `batched_inputs` when the caller ran it
                (PanopticFPN does, for its detections); run here otherwise.
            whole_sizes: the size of the image each input is a part of (tiles, for the scales
                of TEST.AUG); default the output size.
        """
        if self.test_time_augmentation is not None:
            return self.test_time_augmentation.scores(self, batched_inputs, whole_sizes, images, logits)
        if logits is None:
            images = self.preprocess_image(batched_inputs)
            logits = self.semantic_logits(images.tensors)
        return [self.semantic_scores(logits[i], size, *self.output_size(x, size))
                for i, (x, size) in enumerate(zip(batched_inputs, images.image_sizes))]

    @staticmethod
    def output_size(x: dict, image_size: tuple[int, int]) -> tuple[int, int]:
        return int(x.get("height", image_size[0])), int(x.get("width", image_size[1]))

    def forward(self, batched_inputs: list[dict]):
        if self.training:
            images = self.preprocess_image(batched_inputs)
            return self.semantic_loss(self.semantic_logits(images.tensors), batched_inputs)
        return [semantic_output(scores, self.ignore_class_ids) for scores in self.batch_scores(batched_inputs)]


@META_ARCH_REGISTRY.register()
class PanopticFPN(SemanticSegmentor):
    """SemanticSegmentor plus a Mask R-CNN branch on the same FPN, trained jointly.

    Outputs additionally `instances` and, with fusion enabled, `panoptic_seg`.
    """

    has_instances = True

    def __init__(self, *, rpn: nn.Module, roi_heads: nn.Module, thing_class_ids: list[int],
                 stuff_class_ids: list[int], instance_loss_weight: float = 1.0, combine_on: bool = True,
                 combine_overlap_threshold: float = 0.5, combine_stuff_area_threshold: int = 4096,
                 combine_instances_score_threshold: float = 0.5, **semantic_kwargs):
        super().__init__(**semantic_kwargs)
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.thing_class_ids = list(thing_class_ids)
        self.stuff_class_ids = list(stuff_class_ids)
        self.instance_loss_weight = instance_loss_weight
        self.combine_on = combine_on
        self.combine_overlap_threshold = combine_overlap_threshold
        self.combine_stuff_area_threshold = combine_stuff_area_threshold
        self.combine_instances_score_threshold = combine_instances_score_threshold
        # class id -> torchvision label (1..K); 0 for classes that are not things.
        lookup = torch.zeros(256, dtype=torch.int64)
        lookup[torch.tensor(self.thing_class_ids, dtype=torch.int64)] = torch.arange(1, len(thing_class_ids) + 1)
        self.register_buffer("class_to_label", lookup, persistent=False)

    @classmethod
    def from_config(cls, cfg, metadata) -> "PanopticFPN":
        from segdet.modeling.backbone import build_backbone
        from segdet.modeling.instance_heads import build_roi_heads, build_rpn

        backbone = build_backbone(cfg)
        combine = cfg.MODEL.PANOPTIC_FPN.COMBINE
        return cls(
            rpn=build_rpn(cfg, backbone.out_channels),
            roi_heads=build_roi_heads(cfg, backbone.out_channels, mask_on=True),
            thing_class_ids=metadata.thing_class_ids,
            stuff_class_ids=metadata.stuff_class_ids,
            instance_loss_weight=cfg.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT,
            combine_on=combine.ENABLED,
            combine_overlap_threshold=combine.OVERLAP_THRESH,
            combine_stuff_area_threshold=combine.STUFF_AREA_LIMIT,
            combine_instances_score_threshold=combine.INSTANCES_CONFIDENCE_THRESH,
            **cls.semantic_kwargs(cfg, metadata, backbone),
        )

    def _instance_targets(self, batched_inputs: list[dict]) -> list[dict[str, torch.Tensor]]:
        """Each input's `instances` as torchvision's detection targets (labels 1..K)."""
        targets = []
        for x in batched_inputs:
            inst = x["instances"]
            h, w = x["image"].shape[-2:]
            masks = inst.gt_masks.to(self.device)
            targets.append({
                "boxes": inst.gt_boxes.to(self.device, torch.float32).reshape(-1, 4),
                "labels": self.class_to_label[inst.gt_classes.to(self.device)],
                "masks": masks if len(masks) else masks.new_zeros((0, h, w)),
            })
        return targets

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        if self.training:
            features = self.backbone(images.tensors)
            logits = self.sem_seg_head(features)
            features = fpn_levels(features)
            targets = self._instance_targets(batched_inputs)
            proposals, rpn_losses = self.rpn(images, features, targets)
            _, roi_losses = self.roi_heads(features, proposals, images.image_sizes, targets)
            losses = self.semantic_loss(logits, batched_inputs)
            for name, value in {**rpn_losses, **roi_losses}.items():
                losses[name] = value * self.instance_loss_weight
            return losses

        logits, detections = self.logits_and_detections(images)
        # Instances from the un-augmented pass; the semantic scores with TEST.AUG's variants.
        scores = self.batch_scores(batched_inputs, images, logits)
        results = []
        for i, (x, size) in enumerate(zip(batched_inputs, images.image_sizes)):
            height, width = self.output_size(x, size)
            result = semantic_output(scores[i], self.ignore_class_ids)
            result["instances"] = self.instances_result(detections[i], size, height, width)
            if self.combine_on:
                result["panoptic_seg"] = self.panoptic_result(result["instances"], result["segmentation_image"])
            results.append(result)
        return results

    def detect(self, images: ImageList, features: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """torchvision's detections (boxes, labels 1..K, scores, mask probabilities) of a batch,
        in network-input pixels, from its FPN features."""
        features = fpn_levels(features)
        proposals, _ = self.rpn(images, features)
        detections, _ = self.roi_heads(features, proposals, images.image_sizes)
        return detections

    def logits_and_detections(self, images: ImageList) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Class logits and detections of a preprocessed batch in inference, the backbone run once
        for both (what tiled inference runs on each tile); float32, whatever TEST.AMP ran the network in."""
        with self.inference_autocast():
            features = self.backbone(images.tensors)
            logits, detections = self.sem_seg_head(features), self.detect(images, features)
        return as_float32_nchw(logits), [{k: v.float() if v.is_floating_point() else v for k, v in d.items()}
                                         for d in detections]

    def instances_result(self, detections: dict[str, torch.Tensor], image_size: tuple[int, int], height: int,
                         width: int, cropped: bool = False) -> Instances:
        """One image's detections as `Instances` at (height, width); `cropped`: masks as crops."""
        return detector_postprocess(detections, image_size, height, width, self.thing_class_ids, cropped=cropped)

    def panoptic_result(self, instances: Instances, segmentation_image: torch.Tensor) -> tuple[torch.Tensor, list]:
        """`panoptic_seg` of the instances and the segmentation_image, with the model's fusion settings."""
        return combine_semantic_and_instances(
            instances, segmentation_image, self.combine_overlap_threshold, self.combine_stuff_area_threshold,
            self.combine_instances_score_threshold, self.stuff_class_ids,
        )
