"""A progress line with rate and ETA for long loops, through `logging`."""
from __future__ import annotations

import datetime
import logging
import time


def format_seconds(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Progress:
    """Logs "<what>: i/N (rate, ETA h:mm:ss)" at most every `period` seconds.

    Usage:
        progress = Progress(len(items), "Predicting")
        for item in items:
            ...
            progress.step()
        progress.done()
    """

    def __init__(self, total: int, what: str, logger: logging.Logger | None = None,
                 period: float = 5.0, unit: str = "images"):
        self.total = total
        self.what = what
        self.unit = unit
        self.period = period
        self.logger = logger or logging.getLogger("segdet")
        self.count = 0
        self.start = time.perf_counter()
        self._last_log = self.start

    def step(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self._last_log >= self.period and self.count < self.total:
            self._last_log = now
            self.logger.info(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.count) / rate if rate > 0 else 0.0
        return (f"{self.what}: {self.count}/{self.total} ({rate:.2f} {self.unit}/s, "
                f"elapsed {format_seconds(elapsed)}, ETA {format_seconds(eta)})")

    def done(self) -> float:
        """Log the final line; returns the elapsed seconds."""
        elapsed = time.perf_counter() - self.start
        self.logger.info(f"{self.what}: done, {self.count} {self.unit} in {format_seconds(elapsed)}"
                         f" ({self.count / max(elapsed, 1e-9):.2f} {self.unit}/s)")
        return elapsed
