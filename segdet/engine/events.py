"""Training metrics: a storage of scalar histories, and writers for the console, metrics.json
and TensorBoard."""
from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

from fvcore.common.history_buffer import HistoryBuffer

from segdet.utils.files import atomic_write_text

logger = logging.getLogger("segdet.engine")


class EventStorage:
    """Scalars by name, each with its history (fvcore HistoryBuffer) and the iteration it was set at."""

    def __init__(self, start_iter: int = 0):
        self.iter = start_iter
        self._history: dict[str, HistoryBuffer] = {}
        self._smoothing: dict[str, bool] = {}
        self._latest: dict[str, tuple[float, int]] = {}

    def put_scalar(self, name: str, value: float, smoothing_hint: bool = True) -> None:
        value = float(value)
        self._history.setdefault(name, HistoryBuffer()).update(value, self.iter)
        self._smoothing.setdefault(name, smoothing_hint)
        self._latest[name] = (value, self.iter)

    def put_scalars(self, smoothing_hint: bool = True, **values: float) -> None:
        for name, value in values.items():
            self.put_scalar(name, value, smoothing_hint)

    def history(self, name: str) -> HistoryBuffer:
        if name not in self._history:
            raise KeyError(f"no scalar named {name} has been stored")
        return self._history[name]

    def has(self, name: str) -> bool:
        return name in self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        return dict(self._latest)

    def latest_smoothed(self, window: int = 20) -> dict[str, tuple[float, int]]:
        """Latest values; those with a smoothing hint as the median over `window` iterations."""
        out = {}
        for name, (value, it) in self._latest.items():
            out[name] = (self._history[name].median(window) if self._smoothing[name] else value, it)
        return out


class _NewScalars:
    """The (name, smoothed value, iteration) of scalars set since the previous call, per name:
    a value stored late for an iteration already written (e.g. an evaluation) is not lost."""

    def __init__(self, window: int, start_iter: int = 0):
        self.window = window
        self._last: dict[str, int] = {}
        self._start = start_iter - 1

    def __call__(self, storage: EventStorage) -> list[tuple[str, float, int]]:
        new = []
        for name, (value, it) in storage.latest_smoothed(self.window).items():
            if it > self._last.get(name, self._start):
                self._last[name] = it
                new.append((name, value, it))
        return new


def read_metrics_lines(path: str) -> list[tuple[str, dict[str, Any]]]:
    """The (line, record) pairs of a metrics.json. A line that is not a JSON object (the last one,
    cut short by a kill during its write) is skipped with a warning."""
    pairs = []
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                logger.warning("%s: line %d is not a JSON record (cut short?); skipped", path, number)
                continue
            pairs.append((line if line.endswith("\n") else line + "\n", record))
    return pairs


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a metrics.json (see `read_metrics_lines`)."""
    return [record for _, record in read_metrics_lines(path)]


class JSONWriter:
    """Appends one JSON object per line to metrics.json: `iteration` plus the scalars set since
    the last write. Each write is flushed to disk, so a crash loses nothing already written;
    a kill during a write can cut its last line short, and the next run (--resume) drops it."""

    def __init__(self, path: str, window: int = 20, start_iter: int = 0):
        self.path = path
        self._new = _NewScalars(window, start_iter)
        if os.path.isfile(path):
            self._drop_lines_from(start_iter)

    def _drop_lines_from(self, start_iter: int) -> None:
        # A resumed run repeats the iterations after its checkpoint, and a fresh run (start 0)
        # into the same folder replaces the old one: keep one record of each iteration.
        kept = [line for line, record in read_metrics_lines(self.path) if record.get("iteration", -1) < start_iter]
        atomic_write_text("".join(kept), self.path)

    def write(self, storage: EventStorage) -> None:
        by_iter: dict[int, dict[str, float]] = {}
        for name, value, it in self._new(storage):
            by_iter.setdefault(it, {})[name] = value
        if not by_iter:
            return
        text = "".join(json.dumps({"iteration": it, **by_iter[it]}, sort_keys=True) + "\n" for it in sorted(by_iter))
        with open(self.path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        pass


class TensorboardWriter:
    """Scalars to TensorBoard event files in the output folder."""

    def __init__(self, log_dir: str, window: int = 20):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir)
        self._new = _NewScalars(window)

    def write(self, storage: EventStorage) -> None:
        for name, value, it in self._new(storage):
            self._writer.add_scalar(name, value, it)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class ConsoleWriter:
    """One log line per period: iteration, ETA, losses, learning rate, seconds per iteration."""

    def __init__(self, max_iter: int, window: int = 20):
        self.max_iter = max_iter
        self.window = window

    def write(self, storage: EventStorage) -> None:
        it = storage.iter
        parts = [f"iter: {it + 1}/{self.max_iter}"]
        if storage.has("time"):
            seconds = storage.history("time").median(self.window)
            eta = datetime.timedelta(seconds=int(seconds * (self.max_iter - it - 1)))
            parts = [f"eta: {eta}"] + parts + [f"time: {seconds:.3f} s/it"]
        losses = {k: v for k, (v, _) in storage.latest_smoothed(self.window).items() if "loss" in k}
        parts += [f"{k}: {v:.4g}" for k, v in sorted(losses.items())]
        if storage.has("lr"):
            parts.append(f"lr: {storage.history('lr').latest():.5g}")
        logger.info("  ".join(parts))

    def close(self) -> None:
        pass


def flatten_results(results: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """{"sem_seg": {"mean_iou": 0.8}} -> {"sem_seg/mean_iou": 0.8}; scalars only."""
    flat: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_results(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def make_writers(output_dir: str, max_iter: int, start_iter: int = 0) -> list:
    """Console, metrics.json and TensorBoard writers for a training run."""
    os.makedirs(output_dir, exist_ok=True)
    return [ConsoleWriter(max_iter), JSONWriter(os.path.join(output_dir, "metrics.json"), start_iter=start_iter),
            TensorboardWriter(output_dir)]
