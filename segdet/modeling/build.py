"""build_model(cfg, metadata): the model named by MODEL.META_ARCHITECTURE, on MODEL.DEVICE."""
from __future__ import annotations

import difflib

import torch
from torch import nn

from segdet.config.experiment import check_config_matches, instances_enabled
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError
from segdet.modeling.meta_arch import META_ARCH_REGISTRY
from segdet.utils.precision import autocast_dtype


def resolve_device(name: str) -> torch.device:
    """MODEL.DEVICE: "auto" = cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"MODEL.DEVICE = {name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(name)


def meta_architecture(cfg) -> type:
    """The registered class MODEL.META_ARCHITECTURE names, checked against MODEL.MASK_ON."""
    name = cfg.MODEL.META_ARCHITECTURE
    known = sorted(n for n, _ in META_ARCH_REGISTRY)
    if name not in META_ARCH_REGISTRY:
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"MODEL.META_ARCHITECTURE = {name!r} is not a registered meta-architecture{hint}; "
                          f"registered: {', '.join(known)}")
    cls = META_ARCH_REGISTRY.get(name)
    has_instances = bool(getattr(cls, "has_instances", False))
    if has_instances != instances_enabled(cfg):
        if has_instances:
            fix = "set MODEL.MASK_ON True, or MODEL.META_ARCHITECTURE SemanticSegmentor for semantic segmentation only"
        else:
            fix = "set MODEL.MASK_ON False, or MODEL.META_ARCHITECTURE PanopticFPN for instance masks too"
        raise ConfigError(f"MODEL.META_ARCHITECTURE = {name!r} {'has an' if has_instances else 'has no'} instance "
                          f"branch but MODEL.MASK_ON is {cfg.MODEL.MASK_ON}: {fix}")
    return cls


def build_model(cfg, metadata: Metadata) -> nn.Module:
    """Build the model MODEL.META_ARCHITECTURE names (any class in META_ARCH_REGISTRY with
    `from_config(cfg, metadata)`) for these classes, on MODEL.DEVICE. The metadata is kept as
    `model.metadata` so that checkpoints carry it."""
    cls = meta_architecture(cfg)
    check_config_matches(cfg, metadata)
    model = cls.from_config(cfg, metadata)
    model.metadata = metadata
    device = resolve_device(cfg.MODEL.DEVICE)
    model = model.to(device)
    model.inference_dtype = autocast_dtype(cfg.TEST.AMP.ENABLED, cfg.TEST.AMP.DTYPE, device)
    if cfg.MODEL.CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last)
    return model
