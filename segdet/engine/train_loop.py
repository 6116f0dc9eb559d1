"""The training loop: hooks around `run_step`, and a SimpleTrainer whose step is one
forward/backward/update on one batch.

Stopping: with several processes every rank must stop at the same iteration, or the others
would wait forever for it in the next gradient all-reduce. So a SimpleTrainer stops only
where all ranks agree: once per iteration, after loading its batch and before the forward
pass, the ranks share whether any of them failed to load its batch or was asked to stop
(Ctrl-C, SIGTERM); then all of them stop there, with the same last completed iteration.
"""
from __future__ import annotations

import abc
import logging
import math
import time
import weakref
from typing import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from segdet.engine.events import EventStorage
from segdet.errors import NonFiniteLossError
from segdet.utils import comm
from segdet.utils.precision import autocast

logger = logging.getLogger("segdet.engine")


class HookBase:
    """Called around training; `self.trainer` is set when registered."""

    trainer: "TrainerBase"

    def before_train(self) -> None: ...

    def after_train(self) -> None: ...

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...


class TrainingStopped(Exception):
    """Ends training early and cleanly (e.g. on SIGTERM). Raise it on every rank at the same
    iteration (or set `trainer.stop_requested` and let the trainer stop where the ranks agree)."""


# What a rank tells the others at the stop agreement, as an index into this tuple.
_STATES = ("go", "SIGINT", "SIGTERM", "a stop request", "failed")


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
        # The exception that ended training on this rank, for the hooks' after_train.
        self.failure: BaseException | None = None
        # True when every rank is known to have ended at the same iteration (finished, or
        # stopped where they agreed): only then may after_train hooks talk to the other ranks.
        self.ended_together = False
        # False while the weights are being updated: they are then neither the last completed
        # iteration's nor the next one's, and must not be saved.
        self.weights_consistent = True
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
        self.failure, self.ended_together = None, False
        try:
            self.before_train()
            for self.iter in range(start_iter, max_iter):
                self.storage.iter = self.iter
                self.before_step()
                self.run_step()
                self.last_completed_iter = self.iter
                self.after_step()
            self.ended_together = True
        except TrainingStopped as stop:
            self.ended_together = True
            logger.info("Training stopped at iteration %d: %s", self.iter + 1, stop)
        except BaseException as e:  # (KeyboardInterrupt too: a second Ctrl-C must not save)
            self.failure = e
            raise
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
                 gradient_clipper: Callable[[list[torch.Tensor]], None] | None = None,
                 autocast_dtype: torch.dtype | None = None):
        """
        Args:
            model: returns a dict of losses in training mode.
            data_loader_factory: start_iter -> an iterator of batches starting at that iteration
                (so a resumed run sees the batches a straight run would).
            autocast_dtype: run the forward pass under autocast in this dtype (SOLVER.AMP); float16
                also scales the loss against underflow (torch.amp.GradScaler).
        """
        super().__init__()
        model.train()
        self.model = model
        self.data_loader_factory = data_loader_factory
        self.optimizer = optimizer
        self.gradient_clipper = gradient_clipper
        self.autocast_dtype = autocast_dtype
        device = next(model.parameters()).device
        self.grad_scaler = torch.amp.GradScaler(device.type) if autocast_dtype == torch.float16 else None
        self.data_loader: Iterable[list[dict]] | None = None
        self._data_iter: Iterator[list[dict]] | None = None

    def before_train(self) -> None:
        self.data_loader = self.data_loader_factory(self.start_iter)
        self._data_iter = iter(self.data_loader)
        super().before_train()

    def after_train(self) -> None:
        # Shut the loader's worker processes down now, whatever ended training: left to the
        # garbage collector, an exception's traceback would keep them alive until exit, and
        # the process would wait for them there.
        close = getattr(self._data_iter, "close", None)
        if close is not None:
            close()
        self._data_iter = None
        super().after_train()

    def run_step(self) -> None:
        start = time.perf_counter()
        failure: Exception | None = None
        batch: list[dict] = []  # (assigned, or _agree_on_stop raises)
        try:
            batch = next(self._data_iter)
        except Exception as e:
            failure = e
        self._agree_on_stop(failure)
        data_time = time.perf_counter() - start

        with autocast(self._device(), self.autocast_dtype):
            loss_dict = self.model(batch)
        # The losses in float32, whatever the forward pass ran in.
        loss_dict = {k: v.float() for k, v in loss_dict.items()}
        losses = sum(loss_dict.values())
        self._check_finite(losses, loss_dict)

        self.optimizer.zero_grad(set_to_none=True)
        scaler = self.grad_scaler
        (scaler.scale(losses) if scaler is not None else losses).backward()
        if scaler is not None:
            scaler.unscale_(self.optimizer)  # clipping sees the true gradients
        if self.gradient_clipper is not None:
            self.gradient_clipper([p for g in self.optimizer.param_groups for p in g["params"]])
        self.weights_consistent = False
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.weights_consistent = True

        self.storage.put_scalar("data_time", data_time)
        self.storage.put_scalar("total_loss", losses.item())
        self.storage.put_scalars(**{k: v.item() for k, v in loss_dict.items()})

    def _agree_on_stop(self, failure: Exception | None) -> None:
        """Called by every rank once per iteration, before the forward pass. Raises `failure` on
        the rank it happened on, and TrainingStopped on the others (and on every rank when one
        was asked to stop); returns when all of them go on."""
        if failure is not None:
            mine = "failed"
        elif self.stop_requested:
            mine = self.stop_requested if self.stop_requested in _STATES else "a stop request"
        else:
            mine = "go"
        world_size = comm.get_world_size()
        states = [mine]
        if world_size > 1:
            shared = torch.zeros(world_size, dtype=torch.int64, device=self._device())
            shared[comm.get_rank()] = _STATES.index(mine)
            dist.all_reduce(shared)
            states = [_STATES[i] for i in shared.tolist()]
        if failure is not None:
            self.ended_together = True
            raise failure
        if "failed" in states:
            raise TrainingStopped(f"process {states.index('failed')} failed to load its batch; "
                                  "every process stops here")
        stops = [(rank, state) for rank, state in enumerate(states) if state != "go"]
        if stops:
            rank, state = stops[0]
            raise TrainingStopped(f"{state} received" + (f" by process {rank}" if world_size > 1 else ""))

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check_finite(self, losses: torch.Tensor, loss_dict: dict[str, torch.Tensor]) -> None:
        total = losses.detach().clone()
        if comm.get_world_size() > 1:
            # Every rank must stop together, or the others would wait forever in backward.
            dist.all_reduce(total)
        if not math.isfinite(total.item()):
            self.ended_together = True  # every rank saw the same sum
            values = ", ".join(f"{k}={v.item():.4g}" for k, v in loss_dict.items())
            raise NonFiniteLossError(
                f"loss became {losses.item()} at iteration {self.iter + 1} ({values}). Training stopped "
                "before updating the weights; the checkpoints written so far are intact. Try a lower "
                "SOLVER.BASE_LR, longer SOLVER.WARMUP_ITERS or SOLVER.CLIP_GRADIENTS.ENABLED True."
            )
