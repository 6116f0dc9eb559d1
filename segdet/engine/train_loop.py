"""The training loop: hooks around `run_step`, and a SimpleTrainer whose step is one
forward/backward/update on one batch."""
from __future__ import annotations

import abc
import logging
import math
import time
import weakref
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from segdet.engine.events import EventStorage
from segdet.errors import NonFiniteLossError
from segdet.utils import comm

logger = logging.getLogger("segdet.engine")


class HookBase:
    """Called around training; `self.trainer` is set when registered."""

    trainer: "TrainerBase"

    def before_train(self) -> None: ...

    def after_train(self) -> None: ...

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...


class TrainingStopped(Exception):
    """Raised by a hook to end training early and cleanly (e.g. on SIGTERM)."""


class TrainerBase(abc.ABC):
    """Runs `run_step` from start_iter to max_iter with hooks. `self.iter` is the iteration running."""

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.last_completed_iter = -1
        # Set (to the signal's name) when a clean stop was asked for.
        self.stop_requested: str | None = None
        self.storage = EventStorage()

    def register_hooks(self, hooks: list[HookBase | None]) -> None:
        for hook in hooks:
            if hook is None:
                continue
            # A weak reference: hooks must not keep the trainer alive.
            hook.trainer = weakref.proxy(self)
            self._hooks.append(hook)

    def train(self, start_iter: int, max_iter: int) -> None:
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self.last_completed_iter = start_iter - 1
        self.storage = EventStorage(start_iter)
        try:
            self.before_train()
            for self.iter in range(start_iter, max_iter):
                self.storage.iter = self.iter
                self.before_step()
                self.run_step()
                self.last_completed_iter = self.iter
                self.after_step()
        except TrainingStopped as stop:
            logger.info("Training stopped at iteration %d: %s", self.iter + 1, stop)
        finally:
            self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    @abc.abstractmethod
    def run_step(self) -> None:
        """One training iteration."""


class SimpleTrainer(TrainerBase):
    """One step = next batch, sum of the model's losses, backward, optional clipping, update."""

    def __init__(self, model: nn.Module, data_loader_factory: Callable[[int], Iterator[list[dict]]],
                 optimizer: torch.optim.Optimizer,
                 gradient_clipper: Callable[[list[torch.Tensor]], None] | None = None):
        """
        Args:
            model: returns a dict of losses in training mode.
            data_loader_factory: start_iter -> an iterator of batches starting at that iteration
                (so a resumed run sees the batches a straight run would).
        """
        super().__init__()
        model.train()
        self.model = model
        self.data_loader_factory = data_loader_factory
        self.optimizer = optimizer
        self.gradient_clipper = gradient_clipper
        self._data_iter: Iterator[list[dict]] | None = None

    def before_train(self) -> None:
        self._data_iter = iter(self.data_loader_factory(self.start_iter))
        super().before_train()

    def after_train(self) -> None:
        # Shut the loader's worker processes down now, not at interpreter exit (they ignore
        # SIGTERM, so exit-time termination would wait on them forever).
        self._data_iter = None
        super().after_train()

    def run_step(self) -> None:
        start = time.perf_counter()
        try:
            batch = next(self._data_iter)
        except Exception:
            # Ctrl-C also reaches the loader's worker processes; then their failure is the stop.
            if self.stop_requested:
                raise TrainingStopped(f"{self.stop_requested} received while loading data") from None
            raise
        data_time = time.perf_counter() - start

        loss_dict = self.model(batch)
        losses = sum(loss_dict.values())
        self._check_finite(losses, loss_dict)

        self.optimizer.zero_grad(set_to_none=True)
        losses.backward()
        if self.gradient_clipper is not None:
            self.gradient_clipper([p for g in self.optimizer.param_groups for p in g["params"]])
        self.optimizer.step()

        self.storage.put_scalar("data_time", data_time)
        self.storage.put_scalar("total_loss", losses.item())
        self.storage.put_scalars(**{k: v.item() for k, v in loss_dict.items()})

    def _check_finite(self, losses: torch.Tensor, loss_dict: dict[str, torch.Tensor]) -> None:
        total = losses.detach().clone()
        if comm.get_world_size() > 1:
            # Every rank must stop together, or the others would wait forever in backward.
            dist.all_reduce(total)
        if not math.isfinite(total.item()):
            values = ", ".join(f"{k}={v.item():.4g}" for k, v in loss_dict.items())
            raise NonFiniteLossError(
                f"loss became {losses.item()} at iteration {self.iter + 1} ({values}). Training stopped "
                "before updating the weights; the checkpoints written so far are intact. Try a lower "
                "SOLVER.BASE_LR, longer SOLVER.WARMUP_ITERS or SOLVER.CLIP_GRADIENTS.ENABLED True."
            )
