"""Pictures a person can look at: class colors, overlays, instance outlines, legends, error maps,
titled panels (OpenCV), and plots of evaluations and training curves (matplotlib).

Conventions, so that a picture never hides a labeling problem:
- every class has the color its metadata gives (`Metadata.class_colors`), also in the legend;
- ignore classes are hatched (diagonal stripes of their color and black) and listed as
  "(ignored)" in the legend, so they cannot be mistaken for a class that is learned;
- values that are not class ids (>= num_classes, negative, or the ignore value 255) are a
  magenta/black checker board, listed as "not a class".

Modules: `primitives` (array checks, colors, patterns, text), `legend`, `instances` (outlines,
labels, annotation masks), `overlays` (one image), `panels` (images side by side), `plots`
and `confusion` (matplotlib figures). Names are imported on first use, so drawing does not
load matplotlib.
"""
from typing import Any

_EXPORTS = {
    "colorize": "primitives", "enlarge": "primitives", "display_scale": "primitives",
    "legend_entries": "legend", "draw_legend": "legend", "legend_image": "legend",
    "draw_instances": "instances", "annotation_masks": "instances",
    "draw_overlay": "overlays", "draw_ground_truth": "overlays", "error_map": "overlays", "error_rate": "overlays",
    "side_by_side": "panels", "ground_truth_panel": "panels", "prediction_panel": "panels",
    "plot_class_iou": "plots", "plot_evaluation": "plots", "plot_metrics": "plots",
    "plot_confusion_matrix": "confusion",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"segdet.visualization.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'segdet.visualization' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
