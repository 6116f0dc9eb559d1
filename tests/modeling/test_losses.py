import math

import pytest
import torch
import torch.nn.functional as F

from segdet.modeling.losses import (
    SemanticLoss,
    weighted_cross_entropy,
    weighted_dice_loss,
    weighted_focal_loss,
)

# One image, 2 classes, 1x3 pixels. Pixel logits (class0, class1): (2, 0), (0, 1), (5, -5).
LOGITS = torch.tensor([[[[2.0, 0.0, 5.0]], [[0.0, 1.0, -5.0]]]])
TARGETS = torch.tensor([[[0, 1, 255]]])


def ce(logit_true, logit_other):
    return -logit_true + math.log(math.exp(logit_true) + math.exp(logit_other))


def test_cross_entropy_ignores_ignore_pixels_and_uses_weight_image():
    weights = torch.tensor([[[1.0, 3.0, 7.0]]])  # the ignore pixel's 7 must not count
    expected = (1 * ce(2, 0) + 3 * ce(1, 0)) / (1 + 3)
    got = weighted_cross_entropy(LOGITS, TARGETS, weights, ignore_value=255)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_without_weights_averages_non_ignored_pixels():
    expected = (ce(2, 0) + ce(1, 0)) / 2
    got = weighted_cross_entropy(LOGITS, TARGETS, None, ignore_value=255)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_class_weight_image_matches_torch_weighted_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    targets = torch.randint(0, 4, (2, 5, 6))
    targets[0, 0, :3] = 255
    class_weights = torch.tensor([1.0, 30.0, 75.0, 2.0])
    weight_image = class_weights[targets.clamp(max=3)] * (targets != 255)
    expected = F.cross_entropy(logits, targets, weight=class_weights, ignore_index=255)
    got = weighted_cross_entropy(logits, targets, weight_image, ignore_value=255)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    targets = torch.full((1, 2, 2), 255)
    loss = weighted_cross_entropy(logits, targets, None)
    assert loss.item() == 0.0
    loss.backward()


def test_focal_loss_hand_value_and_gamma_zero_is_cross_entropy():
    p0 = math.exp(2) / (math.exp(2) + 1)  # pixel 0, true class 0
    p1 = math.exp(1) / (math.exp(1) + 1)  # pixel 1, true class 1
    gamma = 2.0
    expected = ((1 - p0) ** gamma * -math.log(p0) + (1 - p1) ** gamma * -math.log(p1)) / 2
    got = weighted_focal_loss(LOGITS, TARGETS, None, gamma=gamma)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert weighted_focal_loss(LOGITS, TARGETS, None, gamma=0.0).item() == pytest.approx(
        weighted_cross_entropy(LOGITS, TARGETS, None).item(), rel=1e-6)


def test_dice_loss_hand_value():
    # probabilities of class 1 at the two valid pixels
    q0 = 1 / (1 + math.exp(2))
    q1 = math.exp(1) / (math.exp(1) + 1)
    p = [[1 - q0, 1 - q1], [q0, q1]]  # p[class][pixel]
    g = [[1, 0], [0, 1]]
    dices = []
    for c in range(2):
        inter = sum(p[c][i] * g[c][i] for i in range(2))
        card = sum(p[c]) + sum(g[c])
        dices.append((2 * inter + 1) / (card + 1))
    expected = 1 - sum(dices) / 2
    got = weighted_dice_loss(LOGITS, TARGETS, None, eps=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_dice_drops_ignore_class_channels():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 4, 4)
    targets = torch.randint(0, 2, (1, 4, 4))  # class 2 is an ignore class: never a target
    loss = SemanticLoss("dice", ignore_class_ids=[2])(logits, targets, None)
    expected = weighted_dice_loss(logits[:, :2], targets, None)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_cross_entropy_dice_mix():
    loss = SemanticLoss("cross_entropy_dice", dice_weight=0.25)(LOGITS, TARGETS, None)
    expected = 0.75 * weighted_cross_entropy(LOGITS, TARGETS, None) + 0.25 * weighted_dice_loss(LOGITS, TARGETS, None)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
