"""SegdetSemSegFPNHead: segdet's losses, checked against hand computations with a weight_image and
two ignore classes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.d2.conftest import SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY  # noqa: E402

from segdet.d2 import SegdetSemSegFPNHead  # noqa: E402
from segdet.modeling.losses import SemanticLoss  # noqa: E402

IGNORE = (3, 4)
LOSS_WEIGHT = 0.7


def _head(loss_type):
    loss = SemanticLoss(loss_type, ignore_value=255, ignore_class_ids=IGNORE)
    return SegdetSemSegFPNHead({"p2": ShapeSpec(channels=8, stride=4)}, num_classes=5, conv_dims=8, common_stride=4,
                               loss_weight=LOSS_WEIGHT, norm="", ignore_value=255, loss=loss)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    predictions = torch.randn(2, 5, 4, 4, generator=g)
    labels = torch.randint(0, 5, (2, 16, 16), generator=g)
    targets = torch.where((labels == 3) | (labels == 4), torch.full_like(labels, 255), labels)  # as the mapper
    class_weight = torch.tensor([0.5, 2.0, 3.0, 0.0, 0.0])
    weights = class_weight[torch.where(targets == 255, torch.zeros_like(targets), targets)]
    weights = weights * (targets != 255) * (1 + torch.rand(2, 16, 16, generator=g))  # any per-pixel weight_image
    return predictions, targets, weights


def _upsampled(predictions):
    return F.interpolate(predictions, scale_factor=4, mode="bilinear", align_corners=False).numpy().astype(np.float64)


def test_cross_entropy_is_the_weight_image_mean_over_non_ignored_pixels():
    predictions, targets, weights = _batch()
    loss = _head("cross_entropy").losses(predictions, targets, weights)["loss_sem_seg"]
    logits = _upsampled(predictions)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    t, w = targets.numpy(), weights.numpy().astype(np.float64)
    total = weight_sum = 0.0
    for n, y, x in zip(*np.nonzero(t != 255)):
        total += -w[n, y, x] * log_p[n, t[n, y, x], y, x]
        weight_sum += w[n, y, x]
    assert float(loss) == pytest.approx(LOSS_WEIGHT * total / weight_sum, rel=1e-5)


def test_dice_leaves_out_both_ignore_channels():
    predictions, targets, weights = _batch(1)
    loss = _head("dice").losses(predictions, targets, weights)["loss_sem_seg"]
    logits = _upsampled(predictions)[:, :3]  # softmax over the kept channels 0, 1, 2 only
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t, w = targets.numpy(), weights.numpy().astype(np.float64)
    w = w * (t != 255)
    dice = []
    for c in range(3):
        g = (t == c).astype(np.float64)
        dice.append((2 * (w * p[:, c] * g).sum() + 1) / ((w * p[:, c]).sum() + (w * g).sum() + 1))
    assert float(loss) == pytest.approx(LOSS_WEIGHT * (1 - np.mean(dice)), rel=1e-5)


def test_without_a_weight_image_every_non_ignored_pixel_weighs_one():
    predictions, targets, _ = _batch(2)
    head = _head("cross_entropy")
    ones = (targets != 255).float()
    assert float(head.losses(predictions, targets, None)["loss_sem_seg"]) == pytest.approx(
        float(head.losses(predictions, targets, ones)["loss_sem_seg"]), rel=1e-6)


def test_registered_and_inference_returns_logits_at_the_input_resolution():
    assert SEM_SEG_HEADS_REGISTRY.get("SegdetSemSegFPNHead") is SegdetSemSegFPNHead
    head = _head("cross_entropy").eval()
    logits, losses = head({"p2": torch.randn(1, 8, 6, 5)})
    assert tuple(logits.shape) == (1, 5, 24, 20) and losses == {}
