"""Inference on new images: Predictor, tiled (sliding-window) segmentation, output writers.

Names are imported on first use, so importing a writer does not load the model code.
"""
from typing import Any

_EXPORTS = {
    "Predictor": "segdet.inference.predictor",
    "TiledSegmenter": "segdet.inference.tiling",
    "tile_windows": "segdet.inference.tiling",
    "CocoResultsWriter": "segdet.inference.writers",
    "write_confidence": "segdet.inference.writers",
    "write_overlay": "segdet.inference.writers",
    "write_segmentation": "segdet.inference.writers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'segdet.inference' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
