"""Set up `logging` for segdet's tools: console, and a log file in the output folder."""
from __future__ import annotations

import logging
import os
import sys


def setup_logger(output_dir: str | None = None, rank: int = 0, name: str = "segdet") -> logging.Logger:
    """Console handler on rank 0 (warnings only on other ranks) and `log.txt` (`log.txt.rankN`).

    Calling it again replaces the handlers it installed before.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_segdet", False):
            logger.removeHandler(handler)
    fmt = logging.Formatter("[%(asctime)s %(name)s] %(levelname)s %(message)s", datefmt="%m/%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    console._segdet = True  # type: ignore[attr-defined]
    logger.addHandler(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "log.txt" if rank == 0 else f"log.txt.rank{rank}")
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(fmt)
        file_handler._segdet = True  # type: ignore[attr-defined]
        logger.addHandler(file_handler)
    return logger
