"""Collecting the warnings one segdet logger writes (segdet's loggers do not propagate to the
root logger, so pytest's caplog does not see them)."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def captured_warnings(logger_name: str) -> Iterator[list[str]]:
    """`with captured_warnings("segdet.data.build") as messages:` collects the messages of
    warnings and errors logged under that name while the block runs."""
    handler = _Messages()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
