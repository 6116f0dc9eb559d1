"""ResNet + FPN backbone from torchvision, returning features p2..p6 (strides 4..64)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from fvcore.common.registry import Registry
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d

from segdet.errors import ConfigError

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = "Backbones: a function (cfg) -> nn.Module returning a dict of features with `out_channels`."

_RESNETS = {18: resnet.resnet18, 34: resnet.resnet34, 50: resnet.resnet50, 101: resnet.resnet101, 152: resnet.resnet152}
_STAGES = ["res2", "res3", "res4", "res5"]


def norm_layer_factory(norm: str) -> Callable[[int], nn.Module]:
    """A constructor of the normalization layer named by MODEL.RESNETS.NORM."""
    if norm == "BN":
        return nn.BatchNorm2d
    if norm == "SyncBN":
        return nn.SyncBatchNorm
    if norm == "FrozenBN":
        return FrozenBatchNorm2d
    if norm == "GN":
        return lambda channels: nn.GroupNorm(32, channels)
    raise ConfigError(f"unknown norm {norm!r}; expected BN, SyncBN, FrozenBN or GN")


# The output of a ResNet's stem (conv1, norm, ReLU), before the max-pool: stride 2, 64 channels.
STEM = "stem"
STEM_CHANNELS = 64


def fpn_levels(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The FPN levels of a backbone's features, without the stem (what the RPN and RoI heads take)."""
    return features if STEM not in features else {k: v for k, v in features.items() if k != STEM}


class ResNetFPN(BackboneWithFPN):
    """torchvision's BackboneWithFPN; parameter names match torchvision's detection models
    (`body.*`, `fpn.*`), so their state_dicts load as they are. Outputs p2..p5 and p6 (max-pooled),
    and with `stem_out` also the stem's output as "stem"."""

    def __init__(self, depth: int = 50, norm: str = "BN", out_channels: int = 256, freeze_at: int = 0,
                 stem_out: bool = False):
        if depth not in _RESNETS:
            raise ConfigError(f"MODEL.RESNETS.DEPTH = {depth}; expected one of {sorted(_RESNETS)}")
        body = _RESNETS[depth](weights=None, norm_layer=norm_layer_factory(norm))
        stage_channels = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
        return_layers = {f"layer{i + 1}": f"p{i + 2}" for i in range(4)}
        if stem_out:
            return_layers["relu"] = STEM  # torchvision's ResNet uses this ReLU module in its stem only
        super().__init__(body, return_layers, stage_channels, out_channels)
        self.size_divisibility = 32
        self._freeze(freeze_at)

    def _freeze(self, freeze_at: int) -> None:
        # freeze_at: 1 = stem, 2 = stem + layer1, ... (detectron2's FREEZE_AT).
        frozen = [["conv1", "bn1"]] + [[f"layer{i}"] for i in range(1, 5)]
        for names in frozen[:freeze_at]:
            for name in names:
                for p in getattr(self.body, name).parameters():
                    p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.body(x)
        stem = features.pop(STEM, None)
        out = OrderedDict((("p6" if k == "pool" else k), v) for k, v in self.fpn(features).items())
        if stem is not None:
            out[STEM] = stem
        return out


@BACKBONE_REGISTRY.register()
def build_resnet_fpn_backbone(cfg) -> ResNetFPN:
    return ResNetFPN(
        depth=cfg.MODEL.RESNETS.DEPTH,
        norm=cfg.MODEL.RESNETS.NORM,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        stem_out=STEM in cfg.MODEL.SEM_SEG_HEAD.PROJECT_FEATURES,
    )


def build_backbone(cfg) -> nn.Module:
    name = cfg.MODEL.BACKBONE.NAME
    try:
        builder = BACKBONE_REGISTRY.get(name)
    except KeyError:
        raise ConfigError(f"MODEL.BACKBONE.NAME = {name!r} is not a registered backbone") from None
    return builder(cfg)
