"""MODEL.SEM_SEG_HEAD.PROJECT_FEATURES ["stem"]: the semantic head refined with the stride-2 stem."""
import pytest
import torch
import torch.nn.functional as F

from segdet.errors import ConfigError
from segdet.modeling import build_model
from segdet.modeling.backbone import ResNetFPN
from segdet.modeling.sem_seg_head import SemSegFPNHead
from tests.modeling.test_meta_arch import METADATA, tiny_cfg, train_input


def test_the_stem_feature_is_the_stems_output_and_leaves_the_fpn_levels_unchanged():
    torch.manual_seed(0)
    plain = ResNetFPN(depth=18, out_channels=32).eval()
    with_stem = ResNetFPN(depth=18, out_channels=32, stem_out=True).eval()
    with_stem.load_state_dict(plain.state_dict())  # the same parameters: nothing added
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        a, b = plain(x), with_stem(x)
        body = plain.body
        stem = torch.relu(body.bn1(body.conv1(x)))  # by hand: torchvision's stem before the max-pool
    assert list(a) == ["p2", "p3", "p4", "p5", "p6"]
    assert list(b) == ["p2", "p3", "p4", "p5", "p6", "stem"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    assert b["stem"].shape == (2, 64, 32, 48)
    torch.testing.assert_close(b["stem"], stem, rtol=0, atol=0)


def _features(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"p2": torch.randn(1, 8, 16, 16, generator=g), "p3": torch.randn(1, 8, 8, 8, generator=g),
            "stem": torch.randn(1, 64, 32, 32, generator=g)}


def test_the_refined_head_classifies_at_stride_2_and_sees_the_stem():
    torch.manual_seed(0)
    head = SemSegFPNHead(["p2", "p3"], 8, num_classes=3, conv_dims=16, norm="",
                         project_features=["stem"], project_channels=[4]).eval()
    features = _features()
    with torch.no_grad():
        logits = head(features)
        # By hand: the FPN sum at stride 4, upsampled to the stem, joined to the projected stem,
        # fused, classified at stride 2, upsampled x2.
        x = head.scale_heads["p2"](features["p2"]) + head.scale_heads["p3"](features["p3"])
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        x = head.fuse(torch.cat([x, head.project(features["stem"])], 1))
        expected = F.interpolate(head.predictor(x), scale_factor=2, mode="bilinear", align_corners=False)
        changed = dict(features, stem=features["stem"] + 1.0)
        logits_changed = head(changed)
    assert logits.shape == (1, 3, 64, 64)
    torch.testing.assert_close(logits, expected)
    assert head.predictor.in_channels == 8  # conv_dims // 2
    assert not torch.allclose(logits, logits_changed)  # the stem reaches the output


def test_without_project_features_the_head_ignores_a_stem():
    head = SemSegFPNHead(["p2", "p3"], 8, num_classes=3, conv_dims=16, norm="").eval()
    features = _features()
    with torch.no_grad():
        logits = head(features)
        again = head(dict(features, stem=features["stem"] + 1.0))
    assert logits.shape == (1, 3, 64, 64)
    torch.testing.assert_close(logits, again, rtol=0, atol=0)


@pytest.mark.parametrize("features, channels, key", [
    (["p2"], [32], "PROJECT_FEATURES"), (["stem", "stem"], [32, 32], "PROJECT_FEATURES"),
    (["stem"], [], "PROJECT_CHANNELS"), (["stem"], [0], "PROJECT_CHANNELS")])
def test_unsupported_project_settings_are_config_errors(features, channels, key):
    with pytest.raises(ConfigError, match=key):
        SemSegFPNHead(["p2"], 8, 3, project_features=features, project_channels=channels)


@pytest.mark.parametrize("mask_on", [False, True])
def test_models_with_the_refined_head_train_and_predict(mask_on):
    torch.manual_seed(0)
    cfg = tiny_cfg(mask_on=mask_on)
    cfg.MODEL.SEM_SEG_HEAD.PROJECT_FEATURES = ["stem"]
    cfg.MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS = [16]
    model = build_model(cfg, METADATA).train()
    losses = model([train_input(), train_input(40, 56)])
    sum(losses.values()).backward()
    assert model.sem_seg_head.project[0].weight.grad.abs().sum() > 0
    assert model.backbone.body.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8), "height": 80, "width": 112}])[0]
    assert out["segmentation_image"].shape == (80, 112)
    if mask_on:
        assert "instances" in out
