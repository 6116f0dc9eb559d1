"""Command-line helpers: run a tool's main function so that expected errors print one clear
line, not a traceback; argument types with a readable complaint."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable

from segdet.errors import NonFiniteLossError, SegdetError


def run_cli(main: Callable[[], Any]) -> Any:
    """Call `main()`; a SegdetError (bad config, data or model file) exits with status 2 and its
    message, a stop on a non-finite loss with status 1."""
    try:
        return main()
    except SegdetError as e:
        logging.shutdown()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLossError as e:
        logging.shutdown()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (argparse prints the complaint with the flag)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
