"""Semantic losses weighted per pixel by the weight_image.

Every loss averages over pixels in proportion to their weight: ignore pixels have
weight 0 and take no part, and class weights scale each class's pixels
(sum_i w_i * loss_i / sum_i w_i, as torch's weighted cross-entropy does).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from segdet.config.config import SEM_SEG_LOSS_TYPES as LOSS_TYPES


def _pixel_weights(targets: torch.Tensor, weights: torch.Tensor | None, ignore_value: int) -> torch.Tensor:
    valid = (targets != ignore_value).to(torch.float32)
    return valid if weights is None else weights.to(torch.float32) * valid


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # An all-ignored batch gives 0 loss (with a graph), not NaN.
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None,
                           ignore_value: int = 255) -> torch.Tensor:
    """Cross-entropy per pixel, averaged with the weight_image as weights.

    Args:
        logits: (N, C, H, W). targets: (N, H, W) class ids, ignore pixels = ignore_value.
        weights: (N, H, W) weight_image, or None for weight 1 on every non-ignored pixel.
    """
    w = _pixel_weights(targets, weights, ignore_value)
    safe_targets = torch.where(targets == ignore_value, torch.zeros_like(targets), targets)
    ce = F.cross_entropy(logits, safe_targets, reduction="none")
    return _weighted_mean(ce, w)


def weighted_focal_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None,
                        ignore_value: int = 255, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al.): cross-entropy scaled by (1 - p_target)^gamma, weighted like above."""
    w = _pixel_weights(targets, weights, ignore_value)
    safe_targets = torch.where(targets == ignore_value, torch.zeros_like(targets), targets)
    log_p = F.log_softmax(logits, dim=1).gather(1, safe_targets.unsqueeze(1)).squeeze(1)
    focal = -((1.0 - log_p.exp()) ** gamma) * log_p
    return _weighted_mean(focal, w)


def weighted_dice_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None,
                       ignore_value: int = 255, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss, 1 - mean over classes of (2*sum(w p g) + eps) / (sum(w p) + sum(w g) + eps).

    Pixels weigh by the weight_image (ignore pixels: 0). Classes that neither occur in the
    targets nor get predicted mass contribute (eps / eps) = 1, i.e. no loss.
    """
    w = _pixel_weights(targets, weights, ignore_value).unsqueeze(1)
    num_classes = logits.shape[1]
    probs = F.softmax(logits, dim=1)
    safe_targets = torch.where(targets == ignore_value, torch.zeros_like(targets), targets)
    onehot = F.one_hot(safe_targets, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (w * probs * onehot).sum(dims)
    cardinality = (w * probs).sum(dims) + (w * onehot).sum(dims)
    dice = (2 * intersection + eps) / (cardinality + eps)
    return 1.0 - dice.mean()


def ohem_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None,
                       ignore_value: int = 255, thresh: float = 0.7, min_kept: int = 100000) -> torch.Tensor:
    """Cross-entropy over the hard pixels only (online hard example mining, as MMSegmentation's
    OHEM pixel sampler): the pixels whose probability of their true class is below `thresh`; when
    fewer than `min_kept` are, the `min_kept` pixels with the lowest such probability. The kept
    pixels are averaged with the weight_image as weights, like `weighted_cross_entropy`.
    """
    w = _pixel_weights(targets, weights, ignore_value)
    safe_targets = torch.where(targets == ignore_value, torch.zeros_like(targets), targets)
    ce = F.cross_entropy(logits, safe_targets, reduction="none")
    with torch.no_grad():
        p_true = torch.exp(-ce).flatten()
        valid = (targets != ignore_value).flatten()
        hard = valid & (p_true < thresh)
        if int(hard.sum()) < min_kept:
            # The easiest valid pixels sort last: ignore pixels get a probability above 1.
            ranked = torch.where(valid, p_true, torch.full_like(p_true, 2.0))
            k = min(min_kept, int(valid.sum()))
            hard = torch.zeros_like(valid)
            hard[ranked.topk(k, largest=False).indices] = True
    return _weighted_mean(ce, w * hard.view_as(w))


def _lovasz_gradient(foreground_sorted: torch.Tensor) -> torch.Tensor:
    """The Lovasz extension's weights for errors sorted in decreasing order: entry k is the
    change of the Jaccard loss when the k-th error pixel joins the mistakes (Berman et al. 2018)."""
    total = foreground_sorted.sum()
    intersection = total - foreground_sorted.cumsum(0)
    union = total + (1.0 - foreground_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_value: int = 255) -> torch.Tensor:
    """Lovasz-softmax (Berman et al. 2018): a convex surrogate of 1 - IoU, averaged over the
    classes present in the batch's targets. At one-hot probabilities it equals 1 - IoU exactly.

    It optimizes IoU per class, so it is balanced by construction: the weight_image's class
    weights do not apply (ignore pixels are left out).
    """
    valid = targets != ignore_value
    probs = F.softmax(logits, dim=1).permute(0, 2, 3, 1)[valid]  # (pixels, classes)
    labels = targets[valid]
    if labels.numel() == 0:
        return logits.sum() * 0.0
    per_class = []
    for c in labels.unique().tolist():
        foreground = (labels == c).to(probs.dtype)
        errors = (foreground - probs[:, c]).abs()
        errors_sorted, order = errors.sort(descending=True)
        per_class.append(errors_sorted @ _lovasz_gradient(foreground[order]))
    return torch.stack(per_class).mean()


class SemanticLoss:
    """The semantic loss chosen by MODEL.SEM_SEG_HEAD.LOSS_TYPE."""

    def __init__(self, loss_type: str = "cross_entropy", ignore_value: int = 255, focal_gamma: float = 2.0,
                 dice_weight: float = 0.5, ignore_class_ids: list[int] | tuple[int, ...] = (),
                 ohem_thresh: float = 0.7, ohem_min_kept: int = 100000, lovasz_weight: float = 0.5):
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"unknown loss type {loss_type!r}; expected one of {LOSS_TYPES}")
        self.loss_type = loss_type
        self.ignore_value = ignore_value
        self.focal_gamma = focal_gamma
        self.dice_weight = dice_weight
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        self.lovasz_weight = lovasz_weight
        # Ignore classes are never targets; Dice and Lovasz must not average over their channels.
        self.ignore_class_ids = list(ignore_class_ids)

    @classmethod
    def from_config(cls, cfg, ignore_class_ids) -> "SemanticLoss":
        head = cfg.MODEL.SEM_SEG_HEAD
        return cls(head.LOSS_TYPE, head.IGNORE_VALUE, head.FOCAL_GAMMA, head.DICE_WEIGHT, ignore_class_ids,
                   head.OHEM_THRESH, head.OHEM_MIN_KEPT, head.LOVASZ_WEIGHT)

    def _without_ignore_channels(self, logits, targets):
        keep = [c for c in range(logits.shape[1]) if c not in self.ignore_class_ids]
        if len(keep) == logits.shape[1]:
            return logits, targets
        # Drop ignore channels and renumber the targets to the kept channels.
        remap = torch.full((256,), self.ignore_value, dtype=targets.dtype, device=targets.device)
        remap[torch.tensor(keep, device=targets.device)] = torch.arange(len(keep), device=targets.device,
                                                                      dtype=targets.dtype)
        return logits[:, keep], remap[targets.clamp(0, 255)]

    def _dice(self, logits, targets, weights):
        logits, targets = self._without_ignore_channels(logits, targets)
        return weighted_dice_loss(logits, targets, weights, self.ignore_value)

    def _lovasz(self, logits, targets):
        logits, targets = self._without_ignore_channels(logits, targets)
        return lovasz_softmax_loss(logits, targets, self.ignore_value)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        if self.loss_type == "cross_entropy":
            return weighted_cross_entropy(logits, targets, weights, self.ignore_value)
        if self.loss_type == "focal":
            return weighted_focal_loss(logits, targets, weights, self.ignore_value, self.focal_gamma)
        if self.loss_type == "dice":
            return self._dice(logits, targets, weights)
        if self.loss_type == "ohem_cross_entropy":
            return ohem_cross_entropy(logits, targets, weights, self.ignore_value, self.ohem_thresh, self.ohem_min_kept)
        if self.loss_type == "lovasz":
            return self._lovasz(logits, targets)
        if self.loss_type == "cross_entropy_lovasz":
            ce = weighted_cross_entropy(logits, targets, weights, self.ignore_value)
            return (1.0 - self.lovasz_weight) * ce + self.lovasz_weight * self._lovasz(logits, targets)
        ce = weighted_cross_entropy(logits, targets, weights, self.ignore_value)
        return (1.0 - self.dice_weight) * ce + self.dice_weight * self._dice(logits, targets, weights)
