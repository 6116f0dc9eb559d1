"""SegdetSemSegFPNHead: detectron2's SemSegFPNHead with segdet's semantic losses.

The layers are detectron2's; the loss is segdet's `SemanticLoss` (MODEL.SEM_SEG_HEAD.LOSS_TYPE:
cross-entropy, focal, Dice or CE + Dice), each pixel weighted by the weight_image, with several
ignore classes (their pixels weigh 0; Dice leaves their channels out).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead

from segdet.d2.datasets import experiment_ignore_ids
from segdet.modeling.losses import SemanticLoss


@SEM_SEG_HEADS_REGISTRY.register()
class SegdetSemSegFPNHead(SemSegFPNHead):
    """forward(features, targets=None, weights=None): in training (None, {"loss_sem_seg": ...}); in
    inference (N x C x H x W logits at the input's resolution, {})."""

    @configurable
    def __init__(self, input_shape, *, loss: SemanticLoss, **kwargs):
        """
        Args:
            input_shape, kwargs: as detectron2's SemSegFPNHead (num_classes, conv_dims,
                common_stride, loss_weight, norm, ignore_value).
            loss: segdet's semantic loss; its ignore value must be the head's.
        """
        super().__init__(input_shape, **kwargs)
        if loss.ignore_value != self.ignore_value:
            raise ValueError(f"loss ignore value {loss.ignore_value} != head ignore value {self.ignore_value}")
        self.loss = loss

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["loss"] = SemanticLoss.from_config(cfg, experiment_ignore_ids(cfg))
        return ret

    def forward(self, features, targets: Optional[torch.Tensor] = None, weights: Optional[torch.Tensor] = None):
        x = self.layers(features)
        if self.training:
            return None, self.losses(x, targets, weights)
        return F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False), {}

    def losses(self, predictions: torch.Tensor, targets: torch.Tensor,
               weights: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """segdet's loss of logits at the features' stride against (N, H, W) targets (ignore pixels
        = the ignore value) and the (N, H, W) weight_image (None = weight 1 on every other pixel)."""
        logits = F.interpolate(predictions.float(), scale_factor=self.common_stride, mode="bilinear",
                               align_corners=False)
        return {"loss_sem_seg": self.loss(logits, targets, weights) * self.loss_weight}
