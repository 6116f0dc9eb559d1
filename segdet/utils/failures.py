"""Exceptions carried out of another process (a data loader worker, a spawned training process)
and raised again in this one, as themselves.

torch re-raises a loader worker's exception with the worker's traceback pasted into its
message, so a DataError would print a traceback where it should print one line; and
torch.multiprocessing wraps a spawned process's exception the same way. A `RemoteFailure`
keeps the exception object and the traceback apart: `reraise()` raises the original exception,
chained to the traceback text (`RemoteTraceback`), so that `run_cli` prints a SegdetError as
one line and any other exception with both tracebacks, as Python prints a chained exception.
"""
from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import NoReturn


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process (its text is the message)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class RemoteFailure:
    """An exception raised in `where` (e.g. "DataLoader worker process 0"), ready to be pickled."""

    exception: BaseException
    traceback_text: str
    where: str

    @classmethod
    def capture(cls, exception: BaseException, where: str) -> "RemoteFailure":
        """Call in an `except` block. An exception that cannot be pickled travels as a RuntimeError
        with its type and message."""
        text = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
        carried: BaseException = exception
        try:
            pickle.loads(pickle.dumps(exception))
        except Exception:
            carried = RuntimeError(f"{type(exception).__name__}: {exception}")
        # The traceback objects themselves cannot travel; the text does.
        carried.__traceback__ = None
        carried.__context__ = carried.__cause__ = None
        return cls(carried, f"\n{where}, {text}", where)

    def reraise(self) -> NoReturn:
        raise self.exception from RemoteTraceback(self.traceback_text)
