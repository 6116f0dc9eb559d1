"""segdet: semantic segmentation with optional instance masks.

`segdet.Predictor` is imported on first use, so `import segdet` stays light (no torch).
"""
import os
from typing import Any

# OpenMP threads that wait by spinning (libgomp's default) starve each other when other
# processes share the cores: a ResNet-18 forward pass took 650 ms instead of 45 ms on a loaded
# 2-core machine (BENCHMARKS.md, "Threads under load"). Sleeping waits need the setting before
# torch is first imported, so it is made here (segdet's modules import torch after this); a
# value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from segdet.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'segdet' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
