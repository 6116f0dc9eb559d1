"""Hooks of the training loop: timing, LR schedule, checkpoints (periodic, best, and on an
early end), evaluation, skipped samples, writers, and a clean stop on Ctrl-C / SIGTERM."""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Sequence

from fvcore.common.checkpoint import PeriodicCheckpointer as _FvPeriodicCheckpointer

from segdet.checkpoint import SegdetCheckpointer, load_checkpoint_file, rng_state
from segdet.data.build import gather_skipped
from segdet.engine.events import flatten_results
from segdet.engine.train_loop import HookBase
from segdet.errors import CheckpointError
from segdet.utils import comm
from segdet.utils.files import write_json

logger = logging.getLogger("segdet.engine")


class EMAUpdate(HookBase):
    """Updates the exponential moving average of the weights after every step (MODEL.EMA); placed
    before the hooks that evaluate or save, so that they see this step's average."""

    def __init__(self, ema, model) -> None:
        self.ema = ema
        self.model = model

    def after_step(self) -> None:
        self.ema.update(self.model)


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
    (rank 0 only), each with the iteration and random states for an exact resume.

    `writers_first` (e.g. the metrics.json writer) write just before each save: a run resumed
    from a checkpoint never repeats the iterations before it, so their records must already be
    on disk when a kill comes after the save.
    """

    def __init__(self, checkpointer: SegdetCheckpointer, period: int, max_iter: int,
                 writers_first: Sequence[Any] = ()) -> None:
        self._periodic = _FvPeriodicCheckpointer(checkpointer, period, max_iter=max_iter)
        self.period = period
        self.max_iter = max_iter
        self.writers_first = list(writers_first)

    def after_step(self) -> None:
        if not comm.is_main_process():
            return
        next_iter = self.trainer.iter + 1
        if next_iter % self.period == 0 or next_iter >= self.max_iter:
            for writer in self.writers_first:
                writer.write(self.trainer.storage)
        self._periodic.step(self.trainer.iter, **_checkpoint_extras())


class EvalHook(HookBase):
    """Runs `eval_function() -> results dict` every `period` iterations and after the last one;
    the flattened scalars go into the event storage (e.g. `sem_seg/mean_iou`).

    Register it before the PeriodicCheckpointer: an iteration's checkpoint is then written
    after its evaluation, so a run killed while evaluating resumes before that iteration and
    evaluates it again, instead of never (the last evaluation included: it runs in the last
    iteration, before model_final.pth). A stopped run is not evaluated; it keeps its checkpoint.
    """

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
        if next_iter >= self.trainer.max_iter or (self.period > 0 and next_iter % self.period == 0):
            self._evaluate()


class BestCheckpointer(HookBase):
    """Saves `model_best.pth` when the validation metric improves, and `best_metric.json`.

    A resumed run starts from the best value saved so far, so a worse evaluation after a
    resume never replaces a better model. The value is in `best_metric.json` and also in
    `model_best.pth` itself, which is read when the JSON file is missing or older (a kill
    between writing the two).
    """

    MODEL_NAME = "model_best"
    RECORD_FILE = "best_metric.json"

    def __init__(self, checkpointer: SegdetCheckpointer, metric: str, mode: str = "max") -> None:
        self.checkpointer = checkpointer
        self.metric = metric
        self.mode = mode
        self.best_value: float | None = None
        self._last_seen_iter = -1

    def before_train(self) -> None:
        # A fresh run into the same folder starts anew; a resumed one keeps the best so far.
        self.best_value = self._saved_best() if self.trainer.start_iter > 0 and comm.is_main_process() else None
        if self.best_value is not None:
            logger.info("Best %s so far: %.4f (model_best.pth)", self.metric, self.best_value)

    def _saved_best(self) -> float | None:
        folder = self.checkpointer.save_dir
        model = os.path.join(folder, f"{self.MODEL_NAME}.pth")
        record_file = os.path.join(folder, self.RECORD_FILE)
        if not os.path.isfile(model):
            return None
        record = None
        if os.path.isfile(record_file) and os.stat(record_file).st_mtime_ns >= os.stat(model).st_mtime_ns:
            try:
                with open(record_file) as f:
                    record = json.load(f)
            except (OSError, ValueError) as e:
                logger.warning("%s is unreadable (%s); reading the best value from model_best.pth", record_file, e)
        if not isinstance(record, dict):
            try:
                record = load_checkpoint_file(model).get("best_metric")
            except CheckpointError as e:
                logger.warning("%s; the best model starts anew", e)
                return None
        if not isinstance(record, dict) or record.get("metric") != self.metric or \
                record.get("mode", self.mode) != self.mode or not isinstance(record.get("value"), (int, float)):
            logger.warning("model_best.pth was chosen by %s; this run chooses by %s (%s): the best model starts anew",
                           (record or {}).get("metric"), self.metric, self.mode)
            return None
        return float(record["value"])

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
            record = {"metric": self.metric, "mode": self.mode, "value": value, "iteration": it}
            # model_best must not become the file `--resume` continues from.
            self.checkpointer.save(self.MODEL_NAME, tag_last=False, iteration=it, best_metric=record,
                                   **_checkpoint_extras())
            write_json(record, os.path.join(self.checkpointer.save_dir, self.RECORD_FILE))

    def after_step(self) -> None:
        self._check()

    def after_train(self) -> None:
        self._check()


class StopCheckpointer(HookBase):
    """When training ends before MAX_ITER (a stop, or an error), saves the last completed
    iteration on rank 0 (unless it is saved already), so that --resume continues from there.

    Not after a second Ctrl-C (asked to stop at once), nor while the weights were being
    updated (they are then no iteration's).
    """

    def __init__(self, checkpointer: SegdetCheckpointer) -> None:
        self.checkpointer = checkpointer

    def after_train(self) -> None:
        trainer = self.trainer
        completed = trainer.last_completed_iter
        if completed + 1 >= trainer.max_iter or completed < trainer.start_iter or not comm.is_main_process():
            return
        if isinstance(trainer.failure, KeyboardInterrupt):
            return
        if not trainer.weights_consistent:
            logger.warning("Training failed while updating the weights: they are not saved")
            return
        if self.checkpointer.last_saved_iteration != completed:
            self.checkpointer.save(f"model_{completed:07d}", iteration=completed, **_checkpoint_extras())
        logger.info("Resume with --resume to continue from iteration %d", completed + 2)


class SkippedSamples(HookBase):
    """At the end of training: the training samples left out, by the dataset check before
    training and while loading (in every worker and on every rank), logged and stored as the
    scalar `skipped_training_samples` (so metrics.json has it)."""

    def __init__(self, left_out_by_check: Sequence[str] = ()) -> None:
        self.left_out_by_check = list(left_out_by_check)

    def after_train(self) -> None:
        trainer = self.trainer
        # Talking to the other ranks is safe only when they all ended here too.
        found = gather_skipped(trainer.data_loader, local=not trainer.ended_together)
        files = set(self.left_out_by_check) | set(found)
        trainer.storage.put_scalar("skipped_training_samples", len(files), smoothing_hint=False)
        if files and comm.is_main_process():
            logger.warning("%d training samples were left out: %d by the dataset check, %d found bad while "
                           "loading (drawn %d times): %s", len(files), len(self.left_out_by_check), len(found),
                           sum(found.values()), ", ".join(sorted(files)[:10]) + (" ..." if len(files) > 10 else ""))


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
    """On Ctrl-C or SIGTERM: ask the trainer to stop after the running iteration (every rank
    stops where they agree; `StopCheckpointer` saves). A second Ctrl-C stops at once; a repeated
    SIGTERM changes nothing (a launcher passes it on to processes that may have had it)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.trainer.stop_requested:
            if name == "SIGINT":
                raise KeyboardInterrupt(f"second {name}: stopping without saving")
            return
        self.trainer.stop_requested = name
        logger.warning("%s received: saving a checkpoint after this iteration, then stopping "
                       "(press Ctrl-C again to stop at once)", name)

    def before_train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def after_train(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
