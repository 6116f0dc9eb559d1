"""build_model(cfg, metadata): the model named by MODEL.META_ARCHITECTURE, on MODEL.DEVICE."""
from __future__ import annotations

import torch
from torch import nn

from segdet.data.metadata import Metadata
from segdet.data.resolve import check_config_matches, instances_enabled
from segdet.errors import ConfigError
from segdet.modeling.meta_arch import META_ARCH_REGISTRY


def resolve_device(name: str) -> torch.device:
    """MODEL.DEVICE: "auto" = cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"MODEL.DEVICE = {name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(name)


def build_model(cfg, metadata: Metadata) -> nn.Module:
    """Build the model for these classes. With MODEL.MASK_ON False, PanopticFPN becomes the
    semantic path alone (no detection cost). The metadata is kept as `model.metadata`
    so that checkpoints carry it."""
    check_config_matches(cfg, metadata)
    name = "PanopticFPN" if instances_enabled(cfg) else "SemanticSegmentor"
    model = META_ARCH_REGISTRY.get(name).from_config(cfg, metadata)
    model.metadata = metadata
    return model.to(resolve_device(cfg.MODEL.DEVICE))
