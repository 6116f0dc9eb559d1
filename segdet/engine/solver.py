"""Optimizer, learning-rate schedule (fvcore param schedulers) and gradient clipping from SOLVER.*."""
from __future__ import annotations

from typing import Callable

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)
from torch import nn

_NORM_TYPES = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW; normalization parameters get SOLVER.WEIGHT_DECAY_NORM."""
    solver = cfg.SOLVER
    decay, no_decay = [], []
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if not param.requires_grad:
                continue
            (no_decay if isinstance(module, _NORM_TYPES) else decay).append(param)
    groups = [{"params": decay, "weight_decay": solver.WEIGHT_DECAY},
              {"params": no_decay, "weight_decay": solver.WEIGHT_DECAY_NORM}]
    groups = [g for g in groups if g["params"]]
    if solver.OPTIMIZER == "ADAMW":
        return torch.optim.AdamW(groups, lr=solver.BASE_LR)
    return torch.optim.SGD(groups, lr=solver.BASE_LR, momentum=solver.MOMENTUM, nesterov=solver.NESTEROV)


def build_lr_multiplier(cfg) -> ParamScheduler:
    """LR multiplier over training progress in [0, 1): warmup, then multi-step or cosine."""
    solver = cfg.SOLVER
    max_iter = solver.MAX_ITER
    if solver.LR_SCHEDULER_NAME == "WarmupCosineLR":
        main = CosineParamScheduler(1.0, solver.BASE_LR_END / solver.BASE_LR if solver.BASE_LR else 0.0)
    else:
        steps = [s for s in solver.STEPS if s < max_iter]
        main = MultiStepParamScheduler([solver.GAMMA ** k for k in range(len(steps) + 1)],
                                       milestones=steps, num_updates=max_iter)
    warmup = min(solver.WARMUP_ITERS, max_iter) / max_iter
    if warmup <= 0:
        return main
    start = solver.WARMUP_FACTOR
    warm = (LinearParamScheduler(start, main(warmup)) if solver.WARMUP_METHOD == "linear"
            else ConstantParamScheduler(start))
    # "rescaled" for warmup (its own 0..1), "fixed" for the main schedule (global progress).
    return CompositeParamScheduler([warm, main], lengths=[warmup, 1 - warmup],
                                   interval_scaling=["rescaled", "fixed"])


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """lr = base_lr * multiplier(iteration / max_iter). Its state is only the iteration count,
    so it saves and loads as plain numbers."""

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, max_iter: int,
                 last_iter: int = -1):
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict:
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        factor = self._multiplier(min(self.last_epoch / self._max_iter, 1.0 - 1e-9))
        return [base * factor for base in self.base_lrs]


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> LRMultiplier:
    return LRMultiplier(optimizer, build_lr_multiplier(cfg), cfg.SOLVER.MAX_ITER)


def build_gradient_clipper(cfg) -> Callable[[list[torch.Tensor]], None] | None:
    """A function clipping gradients in place, or None when SOLVER.CLIP_GRADIENTS is off."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED:
        return None
    if clip.CLIP_TYPE == "value":
        return lambda params: nn.utils.clip_grad_value_(params, clip.CLIP_VALUE)
    return lambda params: nn.utils.clip_grad_norm_(params, clip.CLIP_VALUE, clip.NORM_TYPE)
