"""An exponential moving average of a model's weights (MODEL.EMA): often a better model than the
last weights of a run, for no training cost."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


class ModelEMA:
    """After every optimizer step, `update`: ema = d * ema + (1 - d) * weights, for every
    floating-point tensor of the state_dict (buffers too, e.g. BatchNorm's running statistics);
    integer buffers are copied. Starts from the model's weights. d = min(decay, (1 + n) / (10 + n))
    after n updates (TensorFlow's ExponentialMovingAverage with num_updates): without the ramp,
    decay 0.999 would still hold 0.999^600 = 55 % of the random initialization after 600 steps.
    A checkpointable: its state_dict goes into every checkpoint, and inference loads these
    weights (segdet.checkpoint)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay {decay}: must be in [0, 1)")
        self.decay = float(decay)
        self.updates = 0
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay of the next update: ramped up over the first updates, then `decay`."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for name, value in model.state_dict().items():
            average = self.weights[name]
            if average.dtype.is_floating_point:
                average.mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                average.copy_(value)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model with the averaged weights inside the block; its own weights after it."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.weights)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for name, value in state["weights"].items():
            self.weights[name].copy_(value)
