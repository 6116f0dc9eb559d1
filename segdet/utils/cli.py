"""Run a tool's main function so that expected errors print one clear line, not a traceback."""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from segdet.errors import SegdetError


def run_cli(main: Callable[[], Any]) -> Any:
    """Call `main()`; a SegdetError (bad config, data or model file) exits with status 2 and its
    message, a stop on a non-finite loss with status 1."""
    from segdet.engine.train_loop import NonFiniteLossError

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
