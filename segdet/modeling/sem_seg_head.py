"""Panoptic FPN's semantic head: every FPN level brought to 1/4 scale, summed, classified."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from fvcore.common.registry import Registry
from torch import nn

from segdet.errors import ConfigError
from segdet.modeling.backbone import STEM, STEM_CHANNELS
from segdet.utils.precision import as_float32_nchw

SEM_SEG_HEAD_REGISTRY = Registry("SEM_SEG_HEAD")
SEM_SEG_HEAD_REGISTRY.__doc__ = "Semantic heads: a class with from_config(cfg, feature_strides, in_channels)."

_STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "GN":
        return nn.GroupNorm(32 if channels % 32 == 0 else 1, channels)
    if norm == "BN":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


@SEM_SEG_HEAD_REGISTRY.register()
class SemSegFPNHead(nn.Module):
    """Each input level gets (conv3x3 + norm + ReLU [+ 2x upsample]) blocks until it reaches
    `common_stride`; the levels are summed and a 1x1 conv predicts class logits, which are
    upsampled to the input resolution.

    With `project_features` ["stem"], the sum is refined at stride 2 first: upsampled to the
    stem's size, joined to the stem features projected to `project_channels` (1x1 conv + norm +
    ReLU), fused by a 3x3 conv to `conv_dims // 2` channels (+ norm + ReLU), and classified there.

    Returns logits of shape (N, num_classes, H, W) for an input batch of size HxW.
    """

    def __init__(self, in_features: list[str], in_channels: int, num_classes: int,
                 conv_dims: int = 128, common_stride: int = 4, norm: str = "GN",
                 project_features: list[str] = (), project_channels: list[int] = (32,)):
        super().__init__()
        unknown = [f for f in in_features if f not in _STRIDES]
        if unknown:
            raise ConfigError(f"MODEL.SEM_SEG_HEAD.IN_FEATURES has unknown features {unknown}; use p2..p6")
        if list(project_features) not in ([], [STEM]):
            raise ConfigError(f"MODEL.SEM_SEG_HEAD.PROJECT_FEATURES = {list(project_features)}; "
                              f"expected [] or [{STEM!r}] (the ResNet stem, stride 2)")
        if project_features and (len(project_channels) != 1 or project_channels[0] < 1):
            raise ConfigError(f"MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS = {list(project_channels)}; "
                              "expected one positive channel count for the one PROJECT_FEATURES entry")
        self.in_features = list(in_features)
        self.common_stride = common_stride
        self.scale_heads = nn.ModuleDict()
        for name in self.in_features:
            num_ups = max(1, (_STRIDES[name].bit_length() - common_stride.bit_length()))
            layers: list[nn.Module] = []
            for k in range(num_ups):
                layers += [
                    nn.Conv2d(in_channels if k == 0 else conv_dims, conv_dims, 3, padding=1, bias=not norm),
                    _norm(norm, conv_dims),
                    nn.ReLU(inplace=True),
                ]
                if _STRIDES[name] != common_stride:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads[name] = nn.Sequential(*layers)
        self.project, self.fuse, self.output_stride = None, None, common_stride
        predictor_dims = conv_dims
        if project_features:
            channels, predictor_dims, self.output_stride = project_channels[0], conv_dims // 2, 2
            self.project = nn.Sequential(nn.Conv2d(STEM_CHANNELS, channels, 1, bias=not norm),
                                         _norm(norm, channels), nn.ReLU(inplace=True))
            self.fuse = nn.Sequential(nn.Conv2d(conv_dims + channels, predictor_dims, 3, padding=1, bias=not norm),
                                      _norm(norm, predictor_dims), nn.ReLU(inplace=True))
        self.predictor = nn.Conv2d(predictor_dims, num_classes, kernel_size=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # Small initial logits: the loss starts near log(num_classes).
        nn.init.normal_(self.predictor.weight, std=0.001)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> "SemSegFPNHead":
        head = cfg.MODEL.SEM_SEG_HEAD
        return cls(list(head.IN_FEATURES), in_channels, head.NUM_CLASSES, head.CONVS_DIM,
                   head.COMMON_STRIDE, head.NORM, list(head.PROJECT_FEATURES), list(head.PROJECT_CHANNELS))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = None
        for name in self.in_features:
            y = self.scale_heads[name](features[name])
            x = y if x is None else x + y
        if self.project is not None:
            fine = features[STEM]
            x = F.interpolate(x, size=fine.shape[-2:], mode="bilinear", align_corners=False)
            x = self.fuse(torch.cat([x, self.project(fine)], dim=1))
        # Upsampled as float32 NCHW whatever the network ran in (TEST.AMP, MODEL.CHANNELS_LAST):
        # converting the full-size logits afterwards cost more than the upsampling itself (0.13 s
        # for 81 classes at 512x683, against 2 ms at a quarter of the size).
        logits = as_float32_nchw(self.predictor(x))
        return F.interpolate(logits, scale_factor=self.output_stride, mode="bilinear", align_corners=False)


def build_sem_seg_head(cfg, in_channels: int) -> nn.Module:
    name = cfg.MODEL.SEM_SEG_HEAD.NAME
    try:
        head_cls = SEM_SEG_HEAD_REGISTRY.get(name)
    except KeyError:
        raise ConfigError(f"MODEL.SEM_SEG_HEAD.NAME = {name!r} is not a registered semantic head") from None
    return head_cls.from_config(cfg, in_channels)
