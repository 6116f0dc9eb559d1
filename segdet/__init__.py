"""segdet: semantic segmentation with optional instance masks.

`segdet.Predictor` is imported on first use, so `import segdet` stays light (no torch).
"""
from typing import Any

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from segdet.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'segdet' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
