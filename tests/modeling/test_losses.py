import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segdet.config import load_config
from segdet.errors import ConfigError
from segdet.modeling.losses import (
    SemanticLoss,
    lovasz_softmax_loss,
    ohem_cross_entropy,
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


# Four pixels of 2 classes, all of true class 0, with logit gaps 3, 0, -1, 1: true-class
# probabilities sigmoid(gap) = 0.953, 0.5, 0.269, 0.731.
OHEM_GAPS = [3.0, 0.0, -1.0, 1.0]
OHEM_LOGITS = torch.tensor([[[OHEM_GAPS], [[0.0] * 4]]])
OHEM_TARGETS = torch.tensor([[[0, 0, 0, 0]]])


def test_ohem_keeps_the_pixels_below_the_threshold():
    # p < 0.7: pixels 1 and 2 only.
    expected = (ce(0, 0) + ce(-1, 0)) / 2
    got = ohem_cross_entropy(OHEM_LOGITS, OHEM_TARGETS, None, thresh=0.7, min_kept=0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_ohem_min_kept_takes_the_hardest_pixels_and_weights_them():
    # Only pixel 2 is below 0.4; min_kept 3 keeps pixels 2, 1, 3 (lowest p first), weighted 1, 2, 4.
    weights = torch.tensor([[[8.0, 2.0, 1.0, 4.0]]])
    expected = (1 * ce(-1, 0) + 2 * ce(0, 0) + 4 * ce(1, 0)) / (1 + 2 + 4)
    got = ohem_cross_entropy(OHEM_LOGITS, OHEM_TARGETS, weights, thresh=0.4, min_kept=3)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_ohem_never_keeps_ignore_pixels():
    targets = torch.tensor([[[0, 255, 255, 0]]])
    # min_kept 4 asks for more pixels than the 2 valid ones: both are kept, the ignored never.
    expected = (ce(3, 0) + ce(1, 0)) / 2
    got = ohem_cross_entropy(OHEM_LOGITS, targets, None, thresh=0.1, min_kept=4)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def _one_hot_logits(predicted: np.ndarray, num_classes: int) -> torch.Tensor:
    onehot = np.eye(num_classes, dtype=np.float32)[predicted]  # (N, H, W, C)
    return torch.from_numpy(onehot * 60.0 - 30.0).permute(0, 3, 1, 2)


def test_lovasz_at_one_hot_predictions_is_one_minus_iou():
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 4, size=(2, 5, 7))
    targets[0, 0, :4] = 255
    predicted = rng.integers(0, 4, size=(2, 5, 7))
    valid = targets != 255
    ious = []
    for c in np.unique(targets[valid]):
        t, p = (targets == c) & valid, (predicted == c) & valid
        ious.append((t & p).sum() / (t | p).sum())
    expected = 1.0 - np.mean(ious)
    got = lovasz_softmax_loss(_one_hot_logits(predicted, 4), torch.from_numpy(targets))
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_lovasz_of_a_perfect_prediction_is_zero_and_gradients_flow():
    targets = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    assert lovasz_softmax_loss(_one_hot_logits(targets.numpy(), 3), targets).item() == pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros(1, 3, 2, 3, requires_grad=True)
    loss = lovasz_softmax_loss(logits, targets)
    loss.backward()
    # Uniform probabilities 1/3: every error is 2/3 (true class) or 1/3, so the loss is positive.
    assert 0 < loss.item() < 1
    assert logits.grad.abs().sum() > 0


def test_lovasz_drops_ignore_class_channels_and_mixes_with_cross_entropy():
    torch.manual_seed(2)
    logits = torch.randn(1, 3, 4, 4)
    targets = torch.randint(0, 2, (1, 4, 4))  # class 2 is an ignore class: never a target
    loss = SemanticLoss("lovasz", ignore_class_ids=[2])(logits, targets, None)
    assert loss.item() == pytest.approx(lovasz_softmax_loss(logits[:, :2], targets).item(), rel=1e-6)
    mixed = SemanticLoss("cross_entropy_lovasz", lovasz_weight=0.25)(logits, targets, None)
    expected = 0.75 * weighted_cross_entropy(logits, targets, None) + 0.25 * lovasz_softmax_loss(logits, targets)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_settings_come_from_the_config_and_bad_ones_are_config_errors():
    cfg = load_config(opts=["MODEL.SEM_SEG_HEAD.LOSS_TYPE", "ohem_cross_entropy", "MODEL.SEM_SEG_HEAD.OHEM_THRESH",
                            "0.4", "MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT", "3"])
    loss = SemanticLoss.from_config(cfg, ())
    weights = torch.tensor([[[8.0, 2.0, 1.0, 4.0]]])
    assert loss(OHEM_LOGITS, OHEM_TARGETS, weights).item() == pytest.approx(
        ohem_cross_entropy(OHEM_LOGITS, OHEM_TARGETS, weights, thresh=0.4, min_kept=3).item(), rel=1e-6)
    for key, value in (("OHEM_THRESH", "0.0"), ("OHEM_MIN_KEPT", "-1"), ("LOVASZ_WEIGHT", "1.5")):
        with pytest.raises(ConfigError, match=key):
            load_config(opts=[f"MODEL.SEM_SEG_HEAD.{key}", value])
