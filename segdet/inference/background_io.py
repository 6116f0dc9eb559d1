"""Decoding inputs ahead and writing outputs behind, in threads, while the model runs.

`predict_files` reads image files through an `OrderedReader` and hands each image's writing to an
`OrderedWriter`, so that on a CPU decoding, the model and encoding overlap instead of taking
turns (OpenCV's decoders and encoders release the GIL). Both keep the inputs' order and bound
memory: at most `ahead` images decoded in advance, at most `limit` outputs waiting to be written.
A job's exception is raised in the calling thread, unchanged, when its turn comes; `close()`
cancels what has not started and waits for what has (every file is written atomically, so a
stop leaves complete files or none). With `workers` 0 every job runs at once in the calling
thread: the serial path, in the same order as a plain loop.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

# Threads decoding and writing next to the model (predict_files, tools/predict.py --io-workers):
# see BENCHMARKS.md, "Fast inference on a CPU".
DEFAULT_IO_WORKERS = 1


class _Inline:
    """An executor that runs each job at once in the calling thread (workers 0)."""

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:  # handed over as a thread's would be; KeyboardInterrupt is not caught
            future.set_exception(e)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _executor(workers: int, name: str):
    if workers < 0:
        raise ValueError(f"io workers {workers}; must be >= 0")
    return ThreadPoolExecutor(workers, thread_name_prefix=name) if workers else _Inline()


class OrderedReader:
    """`read(item)` for each item, in order, up to `ahead` items in advance by `workers` threads.

    Iterating yields (item, future); `future.result()` is the read's value or raises its error.
    """

    def __init__(self, read: Callable[[Any], Any], items: Iterable, workers: int, ahead: int):
        self._read = read
        self._items = iter(items)
        self._executor = _executor(workers, "segdet-read")
        self._ahead = max(1, ahead) if workers else 0
        self._pending: deque[tuple[Any, Future]] = deque()

    def _submit_next(self) -> bool:
        item = next(self._items, _END)
        if item is _END:
            return False
        self._pending.append((item, self._executor.submit(self._read, item)))
        return True

    def __iter__(self) -> Iterator[tuple[Any, Future]]:
        while True:
            while len(self._pending) <= self._ahead and self._submit_next():
                pass
            if not self._pending:
                return
            yield self._pending.popleft()

    def close(self) -> None:
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


class OrderedWriter:
    """Runs `fn(*args)` jobs in `workers` threads, at most `limit` queued or running; each job's
    result goes to `done(result)` in the calling thread, in submission order. The first error of a
    job is raised by the `submit` or `finish` that collects it."""

    def __init__(self, done: Callable[[Any], None], workers: int, limit: int):
        self._done = done
        self._executor = _executor(workers, "segdet-write")
        self._limit = max(1, limit) if workers else 0
        self._pending: deque[Future] = deque()

    def _collect(self, keep: int) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) > keep):
            self._done(self._pending.popleft().result())

    def submit(self, fn: Callable, *args) -> None:
        self._pending.append(self._executor.submit(fn, *args))
        self._collect(self._limit)

    def finish(self) -> None:
        """Wait for every job; their results go to `done`."""
        self._collect(0)

    def close(self) -> None:
        """Cancel the jobs not started, wait for the running ones (after an error or Ctrl-C)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


_END = object()
