"""Hooks of the training loop: timing, LR schedule, checkpoints, evaluation, best model,
writers, and a clean stop on Ctrl-C / SIGTERM."""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from typing import Any, Callable

from fvcore.common.checkpoint import PeriodicCheckpointer as _FvPeriodicCheckpointer

from segdet.checkpoint import SegdetCheckpointer, rng_state
from segdet.utils.files import atomic_write_text
from segdet.engine.events import flatten_results
from segdet.engine.train_loop import HookBase, TrainingStopped
from segdet.utils import comm

logger = logging.getLogger("segdet.engine")


class IterationTimer(HookBase):
    """Seconds per iteration (hooks included) as the scalar `time`."""

    def __init__(self) -> None:
        self._start = 0.0
        self._train_start = 0.0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()

    def before_step(self) -> None:
        self._start = time.perf_counter()

    def after_step(self) -> None:
        self.trainer.storage.put_scalar("time", time.perf_counter() - self._start)

    def after_train(self) -> None:
        done = self.trainer.last_completed_iter + 1 - self.trainer.start_iter
        total = time.perf_counter() - self._train_start
        if done > 0:
            logger.info("Trained %d iterations in %.1f s (%.3f s/it)", done, total, total / done)


class LRScheduler(HookBase):
    """Records the learning rate used by this iteration, then advances the schedule."""

    def __init__(self, optimizer, scheduler) -> None:
        self.optimizer = optimizer
        self.scheduler = scheduler

    def after_step(self) -> None:
        self.trainer.storage.put_scalar("lr", self.optimizer.param_groups[0]["lr"], smoothing_hint=False)
        self.scheduler.step()


def _checkpoint_extras() -> dict[str, Any]:
    return {"rng_state": rng_state()}


class PeriodicCheckpointer(HookBase):
    """Saves `model_<iter>.pth` every `period` iterations and `model_final.pth` at the end
    (rank 0 only), each with the iteration and random states for an exact resume."""

    def __init__(self, checkpointer: SegdetCheckpointer, period: int, max_iter: int) -> None:
        self._periodic = _FvPeriodicCheckpointer(checkpointer, period, max_iter=max_iter)

    def after_step(self) -> None:
        if comm.is_main_process():
            self._periodic.step(self.trainer.iter, **_checkpoint_extras())


class EvalHook(HookBase):
    """Runs `eval_function() -> results dict` every `period` iterations and after the last one;
    the flattened scalars go into the event storage (e.g. `sem_seg/mean_iou`)."""

    def __init__(self, period: int, eval_function: Callable[[], dict]) -> None:
        self.period = period
        self.eval_function = eval_function
        self.latest_results: dict = {}

    def _evaluate(self) -> None:
        results = self.eval_function() or {}
        self.latest_results = results
        flat = flatten_results(results)
        if flat:
            self.trainer.storage.put_scalars(smoothing_hint=False, **flat)
        comm.synchronize()

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if self.period > 0 and next_iter % self.period == 0 and next_iter != self.trainer.max_iter:
            self._evaluate()

    def after_train(self) -> None:
        # Only a completed run is evaluated at the end; a stopped one keeps its checkpoint.
        if self.trainer.last_completed_iter + 1 >= self.trainer.max_iter:
            self._evaluate()


class BestCheckpointer(HookBase):
    """Saves `model_best.pth` when the validation metric improves, and `best_metric.json`."""

    def __init__(self, checkpointer: SegdetCheckpointer, metric: str, mode: str = "max") -> None:
        self.checkpointer = checkpointer
        self.metric = metric
        self.mode = mode
        self.best_value: float | None = None
        self._last_seen_iter = -1

    def _check(self) -> None:
        storage = self.trainer.storage
        if not storage.has(self.metric):
            return
        value, it = storage.latest()[self.metric]
        if it == self._last_seen_iter or not math.isfinite(value):
            return
        self._last_seen_iter = it
        better = (self.best_value is None or (value > self.best_value if self.mode == "max" else value < self.best_value))
        if better and comm.is_main_process():
            self.best_value = value
            logger.info("New best %s = %.4f at iteration %d: saving model_best.pth", self.metric, value, it + 1)
            # model_best must not become the file `--resume` continues from.
            self.checkpointer.save("model_best", tag_last=False, iteration=it, **_checkpoint_extras())
            atomic_write_text(json.dumps({"metric": self.metric, "value": value, "iteration": it}, indent=2),
                              os.path.join(self.checkpointer.save_dir, "best_metric.json"))

    def after_step(self) -> None:
        self._check()

    def after_train(self) -> None:
        self._check()


class PeriodicWriter(HookBase):
    """Writes the event storage with each writer every `period` iterations and at the end."""

    def __init__(self, writers: list, period: int = 20) -> None:
        self.writers = writers
        self.period = period

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if next_iter % self.period == 0 or next_iter == self.trainer.max_iter:
            for writer in self.writers:
                writer.write(self.trainer.storage)

    def after_train(self) -> None:
        for writer in self.writers:
            writer.write(self.trainer.storage)
            writer.close()


class GracefulStop(HookBase):
    """On Ctrl-C or SIGTERM: finish the running iteration, save a checkpoint that `--resume`
    continues from, and stop. A second Ctrl-C stops at once."""

    def __init__(self, checkpointer: SegdetCheckpointer) -> None:
        self.checkpointer = checkpointer
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.trainer.stop_requested:
            raise KeyboardInterrupt(f"second {name}: stopping without saving")
        self.trainer.stop_requested = name
        logger.warning("%s received: saving a checkpoint after this iteration, then stopping "
                       "(press Ctrl-C again to stop at once)", name)

    def before_train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def after_step(self) -> None:
        if self.trainer.stop_requested:
            raise TrainingStopped(f"{self.trainer.stop_requested} received")

    def after_train(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        completed = self.trainer.last_completed_iter
        if self.trainer.stop_requested and completed >= self.trainer.start_iter and comm.is_main_process():
            self.checkpointer.save(f"model_{completed:07d}", iteration=completed, **_checkpoint_extras())
            logger.info("Resume with --resume to continue from iteration %d", completed + 2)
